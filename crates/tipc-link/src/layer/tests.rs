//! Unit tests of the link layer: nodes wired to one simulated segment,
//! time in the test's hands.

use super::*;
use crate::config::caps;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn mac(i: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, i])
}

/// Node `i`: fixed address 1.1.i, its own MAC, identity and seed.
fn cfg(i: u8) -> LinkConfig {
    let mut c = LinkConfig::new(NodeId::from_mac(mac(i)), mac(i), 1500);
    c.addr_mode = AddrMode::Fixed(addr(i));
    c.seed = u64::from(i);
    c
}

fn addr(i: u8) -> NodeAddr {
    NodeAddr(0x0100_1000 + u32::from(i))
}

/// Layers on one segment: frames to the broadcast MAC reach every other
/// layer, others the layer with that MAC; `drop` may lose frames.
struct Seg {
    nodes: Vec<LinkLayer>,
    now: Instant,
    /// Frames sent, in order, with sender index.
    log: Vec<(usize, Transmit)>,
    drop: Box<dyn FnMut(usize, usize, &Transmit) -> bool>,
}

impl Seg {
    fn new(n: u8) -> Seg {
        let now = Instant::ZERO;
        Seg {
            nodes: (1..=n).map(|i| LinkLayer::new(cfg(i), now)).collect(),
            now,
            log: Vec::new(),
            drop: Box::new(|_, _, _| false),
        }
    }

    /// Delivers every queued frame, repeatedly, until none is left.
    fn flush(&mut self) {
        for _ in 0..10_000 {
            let mut any = false;
            for i in 0..self.nodes.len() {
                while let Some(t) = self.nodes[i].poll_transmit() {
                    any = true;
                    self.log.push((i, t.clone()));
                    let src = self.nodes[i].config().mac;
                    for j in 0..self.nodes.len() {
                        if j != i
                            && (t.dst.is_broadcast() || t.dst == self.nodes[j].config().mac)
                            && !(self.drop)(i, j, &t)
                        {
                            self.nodes[j].handle_frame(self.now, src, t.msg.clone());
                        }
                    }
                }
            }
            if !any {
                return;
            }
        }
        panic!("frames never stop");
    }

    /// Runs timers and frames until `d` has passed.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.flush();
            let next = self.nodes.iter().filter_map(LinkLayer::poll_timeout).min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    for l in &mut self.nodes {
                        if l.poll_timeout().is_some_and(|t| t <= now) {
                            l.handle_timeout(now);
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn events(&mut self, i: usize) -> Vec<LinkEvent> {
        std::iter::from_fn(|| self.nodes[i].poll_event()).collect()
    }

    /// Runs until every pair of nodes is linked.
    fn up(n: u8) -> Seg {
        let mut s = Seg::new(n);
        s.run(MS(3000));
        for l in &s.nodes {
            assert_eq!(l.up_nodes().len(), usize::from(n) - 1, "links up");
        }
        s
    }
}

/// The generator is SplitMix64: its reference outputs for seed 0.
#[test]
fn the_generator_is_splitmix64() {
    let mut r = Rng(0);
    assert_eq!([r.next(), r.next(), r.next()], [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]);
}

/// Two nodes find each other and link up; each knows the other's
/// capabilities; nodes never heard of are neither up nor known.
#[test]
fn two_nodes_link_up_and_know_each_others_capabilities() {
    let mut s = Seg::new(2);
    assert!(!s.nodes[0].is_up(addr(2)));
    s.run(MS(3000));
    assert!(s.nodes[0].is_up(addr(2)) && s.nodes[1].is_up(addr(1)));
    assert!(!s.nodes[0].is_up(addr(9)));
    assert_eq!(s.nodes[0].peer_caps(addr(2)), Some(caps::OURS));
    assert_eq!(s.nodes[0].peer_caps(addr(9)), None);
    let ev = s.events(0);
    assert!(
        ev.iter().any(|e| matches!(e, LinkEvent::NodeUp { addr: a, caps: c, .. } if *a == addr(2) && *c == caps::OURS))
    );
}

/// A discovery request from node `n` (a made-up identity) to `l`.
fn fake_discovery(l: &mut LinkLayer, now: Instant, n: u32) {
    let m = mac_of(n);
    let d = DiscoveryMsg {
        msg_type: DiscoveryType::Req,
        flags: Flags { non_seq: true, ..Flags::default() },
        capabilities: caps::OURS,
        signature: 1,
        dest_domain: NodeAddr(0),
        prev_node: NodeAddr(0x0200_0000 + n),
        net_id: 4711,
        media: MediaAddr::Eth(m),
        peer_net_hash: 0,
        suggested: NodeAddr(0),
        node_id: Some(NodeId::from_mac(m)),
    };
    l.handle_frame(now, m, Msg::Discovery(d).to_bytes().expect("discovery"));
}

fn mac_of(n: u32) -> MacAddr {
    let b = n.to_be_bytes();
    MacAddr([6, 0, b[0], b[1], b[2], b[3]])
}

/// With the peer table full, a newcomer takes the place of the node
/// silent longest among those whose link is down; a linked node is
/// never evicted, however long since it was heard.
#[test]
fn a_full_peer_table_evicts_the_longest_silent_down_node_only() {
    let mut s = Seg::up(2);
    let t0 = s.now + MS(1);
    for n in 0..(MAX_PEERS as u32 - 1) {
        fake_discovery(&mut s.nodes[0], t0 + Duration::from_micros(u64::from(n)), n);
    }
    assert_eq!(s.nodes[0].links().len(), MAX_PEERS);
    let before = s.nodes[0].stats().peers_forgotten;
    fake_discovery(&mut s.nodes[0], t0 + MS(100), 1_000_000);
    assert_eq!(s.nodes[0].stats().peers_forgotten, before + 1, "the newcomer got a place");
    let known: Vec<NodeAddr> = s.nodes[0].links().iter().map(|l| l.peer).collect();
    assert!(known.contains(&addr(2)), "the linked node stays");
    assert!(known.contains(&NodeAddr(0x0200_0000 + 1_000_000)));
    assert!(!known.contains(&NodeAddr(0x0200_0000)), "the longest silent went");
    assert!(s.nodes[0].is_up(addr(2)));
}

/// A node whose link never came up is forgotten a PEER_EXPIRY after it
/// was last heard; a linked node is not.
#[test]
fn silent_unlinked_nodes_expire() {
    let mut s = Seg::up(2);
    let t0 = s.now;
    fake_discovery(&mut s.nodes[0], t0, 7);
    assert_eq!(s.nodes[0].links().len(), 2);
    s.run(PEER_EXPIRY - MS(500));
    assert_eq!(s.nodes[0].links().len(), 2);
    s.run(MS(1000));
    let known: Vec<NodeAddr> = s.nodes[0].links().iter().map(|l| l.peer).collect();
    assert_eq!(known, [addr(2)]);
    assert!(s.nodes[0].stats().peers_forgotten >= 1);
}

/// A broadcast data message numbered `i`.
fn bmsg(i: u8) -> Bytes {
    let mut d = tipc_wire::DataMsg::new(tipc_wire::DataType::Mcast, Bytes::from(vec![i; 100]));
    d.orig_node = addr(1);
    Msg::Data(d).to_bytes().expect("data")
}

/// The broadcast gap (STATE word 8) that node `from` reported to the
/// others in the frames logged since `since`.
fn bcast_gaps(s: &Seg, from: usize, since: usize) -> Vec<u16> {
    s.log[since..]
        .iter()
        .filter(|(i, _)| *i == from)
        .filter_map(|(_, t)| match Msg::parse(t.msg.clone()) {
            Ok(Msg::LinkProto(m)) if m.msg_type == LinkProtoType::State => Some(m.bcast_gap),
            _ => None,
        })
        .collect()
}

/// A receiver that missed a broadcast packet reports the gap in its
/// STATE messages until it is repaired, then reports none; every
/// broadcast is delivered once, in order.
#[test]
fn broadcast_gaps_are_reported_until_repaired() {
    let mut s = Seg::up(2);
    s.events(1);
    let mut lost = false;
    s.drop = Box::new(move |from, to, t| {
        let second = tipc_wire::field::bits(&t.msg, 2, 0, 16) == 2 && tipc_wire::field::bits(&t.msg, 0, 25, 4) == 0;
        if from == 0 && to == 1 && t.dst.is_broadcast() && second && !lost {
            lost = true;
            return true;
        }
        false
    });
    let since = s.log.len();
    for i in 0..4 {
        s.nodes[0].broadcast(s.now, bmsg(i)).expect("sent");
    }
    s.run(MS(3000));
    let got: Vec<u8> = s
        .events(1)
        .into_iter()
        .filter_map(|e| match e {
            LinkEvent::Deliver { bcast: true, msg, .. } => msg.last().copied(),
            _ => None,
        })
        .collect();
    assert_eq!(got, [0, 1, 2, 3]);
    let gaps = bcast_gaps(&s, 1, since);
    assert!(gaps.contains(&1), "the missing packet was reported: {gaps:?}");
    assert_eq!(gaps.last(), Some(&0), "and no gap once repaired: {gaps:?}");
    assert!(s.nodes[0].bcast_stats().1 >= 1, "retransmitted");
}
