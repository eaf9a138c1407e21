//! Communication groups in the simulator: membership events, the four
#![allow(clippy::needless_range_loop)]
//! modes, ordering, flow control and many-to-one.

use std::collections::BTreeMap;

use bytes::Bytes;
use tipc_rs::fault::FaultConfig;
use tipc_rs::sim::SimNet;
use tipc_rs::wire::{Duration, Instance, MemberId, PortId, ServiceType};
use tipc_rs::{CoreEvent, Dest, Error, GroupEvent, GroupSpec, Mode, Scope, SendOpts};

fn seed() -> u64 {
    std::env::var("TIPC_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_0006)
}

const G: ServiceType = ServiceType(4711);

struct Net {
    net: SimNet,
    socks: Vec<(usize, PortId)>,
    got: BTreeMap<(usize, PortId), Vec<GroupEvent>>,
}

impl Net {
    fn new(nodes: usize, faults: FaultConfig) -> Net {
        let mut net = SimNet::new(seed());
        let ix = net.add_nodes(nodes);
        let ok = net.run_while(Duration::from_secs(20), |net| {
            ix.iter().any(|&i| net.core(i).link().up_nodes().len() + 1 < nodes)
        });
        assert!(ok, "seed {}: links", net.seed());
        net.set_faults(faults);
        Net { net, socks: Vec::new(), got: BTreeMap::new() }
    }
    fn join(&mut self, node: usize, inst: u32, loopback: bool) -> MemberId {
        let port = self.net.with(node, |c, _| c.open_port());
        let spec =
            GroupSpec { stype: G, instance: Instance(inst), scope: Scope::Cluster, loopback, member_events: true };
        self.net.with(node, |c, _| c.group_join(port, spec)).expect("join");
        self.socks.push((node, port));
        MemberId { node: self.net.core(node).address().expect("addr"), port }
    }
    /// Runs for `d`, collecting group events and reading (consuming) every message.
    fn run(&mut self, d: Duration) {
        let end = self.net.now() + d;
        while self.net.now() < end {
            let t = self.net.now() + Duration::from_millis(1);
            self.net.run_until(t.min(end));
            self.collect();
        }
    }
    fn collect(&mut self) {
        for node in 0..self.net.len() {
            for (_, ev) in self.net.take_events(node) {
                if let CoreEvent::Group { port, event } = ev {
                    if let GroupEvent::Message { from, data, .. } = &event {
                        let (f, l) = (*from, data.len());
                        self.net.with(node, |c, _| c.group_consumed(port, f, l));
                    }
                    self.got.entry((node, port)).or_default().push(event);
                }
            }
        }
    }
    fn send(&mut self, node: usize, port: PortId, mode: Mode, to: Option<MemberId>, inst: u32, data: &str) {
        let end = self.net.now() + Duration::from_secs(30);
        loop {
            let d = Bytes::from(data.to_string());
            match self.net.with(node, |c, now| {
                c.send(now, port, Dest::group(mode, to, Instance(inst)).expect("member"), d, SendOpts::default())
            }) {
                Ok(()) => return,
                Err(Error::WouldBlock(_)) => {
                    assert!(self.net.now() < end, "seed {}: blocked forever", self.net.seed());
                    self.run(Duration::from_millis(1));
                }
                Err(e) => panic!("seed {}: {mode:?} {e}", self.net.seed()),
            }
        }
    }
    fn msgs(&self, node: usize, port: PortId) -> Vec<(MemberId, Mode, String)> {
        self.got
            .get(&(node, port))
            .map(|v| {
                v.iter()
                    .filter_map(|e| match e {
                        GroupEvent::Message { from, mode, data, .. } => {
                            Some((*from, *mode, String::from_utf8_lossy(data).to_string()))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[test]
fn members_see_each_other_join_and_every_mode_works() {
    let mut n = Net::new(4, FaultConfig::none());
    let ids: Vec<MemberId> = (0..4).map(|i| n.join(i, (i % 2) as u32 + 1, false)).collect();
    n.run(Duration::from_secs(1));
    for (k, &(node, port)) in n.socks.clone().iter().enumerate() {
        let ups = n.got[&(node, port)].iter().filter(|e| matches!(e, GroupEvent::MemberUp { .. })).count();
        assert_eq!(ups, 3, "seed {}: member {k} saw {ups} joins", n.net.seed());
    }
    let (n0, p0) = n.socks[0];
    n.send(n0, p0, Mode::Broadcast, None, 0, "bcast");
    n.send(n0, p0, Mode::Multicast, None, 2, "mcast-2");
    n.send(n0, p0, Mode::Anycast, None, 2, "any-1");
    n.send(n0, p0, Mode::Anycast, None, 2, "any-2");
    n.send(n0, p0, Mode::Unicast, Some(ids[2]), 0, "uni");
    n.run(Duration::from_secs(1));
    let m1 = n.msgs(n.socks[1].0, n.socks[1].1);
    let m2 = n.msgs(n.socks[2].0, n.socks[2].1);
    let m3 = n.msgs(n.socks[3].0, n.socks[3].1);
    assert_eq!(m2.first().map(|m| m.2.as_str()), Some("bcast"));
    assert!(m1.iter().any(|m| m.2 == "mcast-2") && m3.iter().any(|m| m.2 == "mcast-2"));
    assert!(!m2.iter().any(|m| m.2 == "mcast-2"), "instance 1 does not get multicasts for 2");
    let any: Vec<&str> = m1.iter().chain(m3.iter()).filter(|m| m.2.starts_with("any")).map(|m| m.2.as_str()).collect();
    assert_eq!(any.len(), 2, "each anycast reaches one member");
    assert!(
        m1.iter().any(|m| m.2.starts_with("any")) && m3.iter().any(|m| m.2.starts_with("any")),
        "anycast alternates"
    );
    assert_eq!(m2.last().map(|m| (m.1, m.2.as_str())), Some((Mode::Unicast, "uni")));
    // leave: LEFT after the last message
    let (n1, p1) = n.socks[1];
    n.send(n1, p1, Mode::Broadcast, None, 0, "last-words");
    n.net.with(n1, |c, _| c.group_leave(p1)).expect("leave");
    n.run(Duration::from_secs(1));
    for &(node, port) in &n.socks.clone()[2..] {
        let ev = &n.got[&(node, port)];
        let last = ev
            .iter()
            .rposition(|e| matches!(e, GroupEvent::Message { data, .. } if &data[..] == b"last-words"))
            .expect("last words");
        let left = ev
            .iter()
            .position(|e| matches!(e, GroupEvent::MemberDown { member, .. } if *member == ids[1]))
            .expect("LEFT");
        assert!(left > last, "LEFT after the member's last message");
    }
}

#[test]
fn order_holds_across_modes_under_loss_and_many_to_one_is_flow_controlled() {
    let mut n = Net::new(
        5,
        FaultConfig {
            drop: 0.05,
            duplicate: 0.02,
            reorder: 0.05,
            reorder_delay: Duration::from_micros(200),
            ..FaultConfig::default()
        },
    );
    let ids: Vec<MemberId> = (0..5).map(|i| n.join(i, i as u32, false)).collect();
    n.run(Duration::from_secs(2));
    // everyone sends a mixed stream to member 0: unicast, broadcast, anycast, multicast
    let per = 400;
    for k in 0..per {
        for s in 1..5 {
            let (node, port) = n.socks[s];
            let mode = [Mode::Unicast, Mode::Broadcast, Mode::Anycast, Mode::Multicast][k % 4];
            n.send(node, port, mode, Some(ids[0]), 0, &format!("{s}:{k}:{}", "x".repeat(900)));
        }
    }
    n.run(Duration::from_secs(5));
    let got = n.msgs(n.socks[0].0, n.socks[0].1);
    for s in 1..5 {
        let seq: Vec<usize> = got
            .iter()
            .filter(|m| m.0 == ids[s])
            .map(|m| m.2.split(':').nth(1).and_then(|x| x.parse().ok()).expect("seq"))
            .collect();
        assert_eq!(
            seq,
            (0..per).collect::<Vec<_>>(),
            "seed {}: sender {s}: exactly once, in order across modes",
            n.net.seed()
        );
    }
}

/// Broadcast-link packets look as the kernel's do (capture 05): the
/// non-sequenced bit set and no destination node (word 7 zero), whatever
/// the message carried before it went on the broadcast link.
#[test]
fn broadcast_link_packets_carry_no_destination_node() {
    let mut n = Net::new(3, FaultConfig::none());
    n.net.record_pcap(true);
    for i in 0..3 {
        n.join(i, i as u32, false);
    }
    n.run(Duration::from_millis(500));
    let (node, port) = n.socks[0];
    n.net.with(node, |c, _| c.set_mcast_method(port, tipc_rs::McastMethod::Broadcast));
    for k in 0..20 {
        n.send(node, port, Mode::Broadcast, None, 0, &format!("broadcast {k}"));
        n.run(Duration::from_millis(2));
    }
    n.run(Duration::from_millis(200));
    let mut seen = 0;
    for e in n.net.take_frames(1).expect("recording") {
        let Ok(h) = tipc_rs::wire::Header::new_checked(e.payload) else { continue };
        if e.dst.is_broadcast() && h.user().is_data() {
            assert!(h.flags().non_seq, "a broadcast-link data packet is non-sequenced");
            assert_eq!(h.dest_node(), tipc_rs::wire::NodeAddr(0), "and carries no destination node");
            seen += 1;
        }
    }
    assert!(seen >= 10, "the broadcasts went on the broadcast link: {seen} packets");
}

/// A member on the sender's own node gets broadcasts and multicasts like
/// any other member, delivered on the node instead of over a link; the
/// sender itself gets them only with LOOPBACK.
#[test]
fn members_on_the_senders_own_node_get_broadcasts_and_multicasts() {
    let mut n = Net::new(2, FaultConfig::none());
    let a = n.join(0, 1, false);
    let b = n.join(0, 2, false);
    let c = n.join(1, 2, false);
    n.run(Duration::from_secs(1));
    n.send(0, a.port, Mode::Broadcast, None, 0, "all");
    n.send(0, a.port, Mode::Multicast, None, 2, "two");
    n.run(Duration::from_secs(1));
    let texts = |n: &Net, node: usize, m: MemberId| -> Vec<String> {
        n.msgs(node, m.port).into_iter().filter(|x| x.0 == a).map(|x| x.2).collect()
    };
    assert_eq!(texts(&n, 0, b), ["all", "two"], "seed {}: the member on the same node", n.net.seed());
    assert_eq!(texts(&n, 1, c), ["all", "two"], "seed {}: the member on the other node", n.net.seed());
    assert!(n.msgs(0, a.port).is_empty(), "no loopback asked for");
    // and when every other member is on the same node
    let mut n = Net::new(2, FaultConfig::none());
    let a = n.join(0, 1, false);
    let b = n.join(0, 2, false);
    n.run(Duration::from_secs(1));
    n.send(0, a.port, Mode::Broadcast, None, 0, "here");
    n.run(Duration::from_secs(1));
    let got: Vec<String> = n.msgs(0, b.port).into_iter().filter(|x| x.0 == a).map(|x| x.2).collect();
    assert_eq!(got, ["here"], "seed {}: only members on the sender's node", n.net.seed());
}
