//! The test harness of the link layer's unit tests: layers wired to one
//! simulated Ethernet segment, time in the test's hands, and builders of
//! the frames the tests feed them.

pub(crate) use bytes::Bytes;
pub(crate) use tipc_wire::{
    DiscoveryMsg, DiscoveryType, Duration, Flags, Header, Instant, LinkProtoType, MacAddr, MediaAddr, Msg, NodeAddr,
    NodeId, UncheckedHeader,
};

pub(crate) use crate::config::{AddrMode, LinkConfig, caps};
pub(crate) use crate::event::{LinkEvent, Transmit, TxDest};
pub(crate) use crate::layer::LinkLayer;
pub(crate) use crate::link::{BcCtx, Outcome};
pub(crate) use crate::node::DownReason;

pub(crate) const MS: fn(u64) -> Duration = Duration::from_millis;

pub(crate) fn mac(i: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, i])
}

/// Node `i`: fixed address 1.1.i, its own MAC, identity and seed.
pub(crate) fn cfg(i: u8) -> LinkConfig {
    let mut c = LinkConfig::new(NodeId::from_mac(mac(i)), mac(i), 1500);
    c.addr_mode = AddrMode::Fixed(addr(i));
    c.seed = u64::from(i);
    c
}

/// Node `i` on a UDP bearer: as [`cfg`], at 10.0.0.`i`:6118.
pub(crate) fn udp_cfg(i: u8) -> LinkConfig {
    let mut c = cfg(i);
    c.media = MediaAddr::Udp(udp(i));
    c.mtu = 14_000;
    c
}

/// The UDP address of node `i`.
pub(crate) fn udp(i: u8) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([10, 0, 0, i], 6118))
}

pub(crate) fn addr(i: u8) -> NodeAddr {
    NodeAddr(0x0100_1000 + u32::from(i))
}

/// Decides whether the frame from node index `from` to `to` is lost.
pub(crate) type DropFn = Box<dyn FnMut(usize, usize, &Transmit) -> bool>;

/// Layers on one segment: frames to the broadcast MAC reach every other
/// layer, others the layer with that MAC; `drop` may lose frames.
pub(crate) struct Seg {
    pub(crate) nodes: Vec<LinkLayer>,
    pub(crate) now: Instant,
    /// Frames sent, in order, with sender index.
    pub(crate) log: Vec<(usize, Transmit)>,
    /// When each frame of `log` was sent.
    pub(crate) times: Vec<Instant>,
    pub(crate) drop: DropFn,
}

impl Seg {
    pub(crate) fn new(n: u8) -> Seg {
        Seg::with((1..=n).map(cfg).collect())
    }

    /// Layers with the given configurations (their media addresses decide
    /// who receives a unicast frame).
    pub(crate) fn with(cfgs: Vec<LinkConfig>) -> Seg {
        let now = Instant::ZERO;
        Seg {
            nodes: cfgs.into_iter().map(|c| LinkLayer::new(c, now)).collect(),
            now,
            log: Vec::new(),
            times: Vec::new(),
            drop: Box::new(|_, _, _| false),
        }
    }

    /// Delivers every queued frame, repeatedly, until none is left.
    pub(crate) fn flush(&mut self) {
        for _ in 0..10_000 {
            let mut any = false;
            for i in 0..self.nodes.len() {
                while let Some(t) = self.nodes[i].poll_transmit() {
                    any = true;
                    self.log.push((i, t.clone()));
                    self.times.push(self.now);
                    let src = self.nodes[i].config().media;
                    for j in 0..self.nodes.len() {
                        if j != i
                            && (t.dst.is_broadcast() || t.dst == TxDest::Unicast(self.nodes[j].config().media))
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
    pub(crate) fn run(&mut self, d: Duration) {
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

    pub(crate) fn events(&mut self, i: usize) -> Vec<LinkEvent> {
        std::iter::from_fn(|| self.nodes[i].poll_event()).collect()
    }

    /// Runs until every pair of nodes is linked.
    pub(crate) fn up(n: u8) -> Seg {
        let mut s = Seg::new(n);
        s.run(MS(3000));
        for l in &s.nodes {
            assert_eq!(l.up_nodes().len(), usize::from(n) - 1, "links up");
        }
        s
    }
}

/// A discovery request from `prev` with identity `id` at `media`:
/// signature 1, our capabilities, our cluster, for any node.
pub(crate) fn disc_msg(prev: NodeAddr, id: NodeId, media: MediaAddr) -> DiscoveryMsg {
    DiscoveryMsg {
        msg_type: DiscoveryType::Req,
        flags: Flags { non_seq: true, ..Flags::default() },
        capabilities: caps::OURS,
        signature: 1,
        dest_domain: NodeAddr(0),
        prev_node: prev,
        net_id: 4711,
        media,
        peer_net_hash: 0,
        suggested: NodeAddr(0),
        node_id: Some(id),
    }
}

pub(crate) fn enc(d: DiscoveryMsg) -> Bytes {
    Msg::Discovery(d).to_bytes().expect("discovery")
}

/// A discovery request from node `n` (a made-up identity) to `l`.
pub(crate) fn fake_discovery(l: &mut LinkLayer, now: Instant, n: u32) {
    let m = mac_of(n);
    l.handle_frame(now, m, enc(disc_msg(NodeAddr(0x0200_0000 + n), NodeId::from_mac(m), MediaAddr::Eth(m))));
}

pub(crate) fn mac_of(n: u32) -> MacAddr {
    let b = n.to_be_bytes();
    MacAddr([6, 0, b[0], b[1], b[2], b[3]])
}

/// A broadcast data message numbered `i`.
pub(crate) fn bmsg(i: u8) -> Bytes {
    let mut d = tipc_wire::DataMsg::new(tipc_wire::DataType::Mcast, Bytes::from(vec![i; 100]));
    d.orig_node = addr(1);
    Msg::Data(d).to_bytes().expect("data")
}

pub(crate) fn sent(l: &mut LinkLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| l.poll_transmit()).collect()
}

/// A unicast data message from node `from` to node `to`, numbered `i`.
pub(crate) fn umsg(from: u8, to: u8, i: u8, len: usize) -> Bytes {
    let mut d = tipc_wire::DataMsg::new(tipc_wire::DataType::Direct, Bytes::from(vec![i; len]));
    d.orig_node = addr(from);
    d.dest_node = addr(to);
    Msg::Data(d).to_bytes().expect("data")
}

pub(crate) fn delivered(s: &mut Seg, i: usize) -> Vec<(NodeAddr, bool, Bytes)> {
    s.events(i)
        .into_iter()
        .filter_map(|e| match e {
            LinkEvent::Deliver { from, bcast, msg } => Some((from, bcast, msg)),
            _ => None,
        })
        .collect()
}

/// `frame` with the header fields `f` sets.
pub(crate) fn edited(frame: &[u8], f: impl FnOnce(&mut UncheckedHeader<bytes::BytesMut>)) -> Bytes {
    let mut h = UncheckedHeader::new(bytes::BytesMut::from(frame));
    f(&mut h);
    h.into_inner().freeze()
}
