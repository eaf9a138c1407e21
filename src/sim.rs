//! A deterministic, in-memory network of complete nodes with a virtual clock
//! and seeded faults.
//!
//! Every node is a [`NodeCore`] on one shared Ethernet segment, plane 0;
//! [`SimNet::add_plane`] gives every node a further bearer on a further
//! segment (plane 1, 2), for parallel links, and [`SimNet::cut_plane`]
//! takes a plane down for a while. The
//! simulator repeatedly delivers the earliest pending frame or fires the
//! earliest node timer; frames pass through one [`FaultInjector`] per
//! directed pair of nodes (loss, duplication, reordering by delay,
//! corruption) and through partitions with heal times. One seed decides
//! everything, so a failing seed is a complete bug report; every frame a
//! node sends or receives can be written to a pcap file.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::path::Path;

use bytes::Bytes;
use tipc_link::{BearerSettings, LinkConfig};
use tipc_wire::pcap::PcapSink;
use tipc_wire::{Duration, EthFrame, Instant, MacAddr, NodeId};

use crate::core::{CoreEvent, NodeCore};
use crate::fault::{FaultConfig, FaultInjector, Rng};

/// Index of a node in the simulation.
pub type NodeIx = usize;

struct SimNode {
    core: NodeCore,
    /// Its MAC on each plane (index: plane = bearer id).
    macs: Vec<MacAddr>,
    /// Its MTU on each plane: a longer message is lost, as on a real
    /// segment.
    mtus: Vec<usize>,
    /// When the node's transmitter and its switch port towards it are free
    /// (only with a bandwidth set).
    tx_free: Instant,
    rx_free: Instant,
    alive: bool,
    events: VecDeque<(Instant, CoreEvent)>,
    pcap: Option<PcapSink<Vec<u8>>>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: NodeIx,
    plane: u8,
    src: MacAddr,
    frame: Bytes,
}

/// A partition: while active, frames between `a` and `b` (on `plane`, or
/// on every plane) are lost.
#[derive(Clone, Debug)]
struct Partition {
    a: Vec<NodeIx>,
    b: Vec<NodeIx>,
    plane: Option<u8>,
    from: Instant,
    until: Instant,
}

/// The simulated network.
pub struct SimNet {
    seed: u64,
    now: Instant,
    nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    faults: FaultConfig,
    injectors: BTreeMap<(NodeIx, NodeIx, u8), FaultInjector>,
    /// The settings of planes 1 and 2 (media address and name are each
    /// node's own).
    planes: Vec<BearerSettings>,
    /// Frames lost for being longer than their plane's MTU.
    oversized: u64,
    latency: Duration,
    partitions: Vec<Partition>,
    rng: Rng,
    frames: u64,
    pcap: bool,
    bandwidth: Option<u64>,
}

impl std::fmt::Debug for SimNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimNet(seed={}, now={:?}, nodes={})", self.seed, self.now, self.nodes.len())
    }
}

impl SimNet {
    /// An empty network. `seed` decides every random choice.
    pub fn new(seed: u64) -> SimNet {
        SimNet {
            seed,
            now: Instant::ZERO,
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            faults: FaultConfig::none(),
            injectors: BTreeMap::new(),
            planes: Vec::new(),
            oversized: 0,
            latency: Duration::from_micros(20),
            partitions: Vec::new(),
            rng: Rng::new(seed),
            frames: 0,
            pcap: false,
            bandwidth: None,
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// Frames carried so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
    /// Frames lost so far for being longer than their plane's MTU (a node
    /// sending what its bearer cannot carry: a bug).
    pub fn oversized(&self) -> u64 {
        self.oversized
    }
    /// Records every frame per node, for [`SimNet::write_pcap`].
    pub fn record_pcap(&mut self, on: bool) {
        self.pcap = on;
        for n in &mut self.nodes {
            if on && n.pcap.is_none() {
                n.pcap = PcapSink::new(Vec::new()).ok();
            }
        }
    }
    /// One-way latency of the segment.
    pub fn set_latency(&mut self, d: Duration) {
        self.latency = d;
    }
    /// Gives every node a port of `bits_per_sec` on a switch: a node sends
    /// one frame after another at that rate, and frames to one node queue
    /// at its switch port (`None`, the default: no bandwidth limit, only
    /// latency).
    pub fn set_bandwidth(&mut self, bits_per_sec: Option<u64>) {
        self.bandwidth = bits_per_sec;
    }
    /// Faults applied to every frame from now on.
    pub fn set_faults(&mut self, f: FaultConfig) {
        self.faults = f;
        for inj in self.injectors.values_mut() {
            inj.set_config(f);
        }
    }

    /// Adds a node named `name` (its identity), configured by `tweak`.
    pub fn add_node(&mut self, name: &str, tweak: impl FnOnce(&mut LinkConfig)) -> NodeIx {
        let ix = self.nodes.len();
        let mac = plane_mac(0, ix);
        let mut cfg = LinkConfig::new(NodeId::from_text(name).unwrap_or_default(), mac, 1500);
        cfg.seed = self.rng.next_u64();
        cfg.if_name = format!("sim{ix}");
        tweak(&mut cfg);
        let mut mtus = vec![cfg.mtu];
        let mut core = NodeCore::new(cfg, self.now);
        let mut macs = vec![mac];
        for (k, template) in self.planes.iter().enumerate() {
            let b = plane_bearer(template, k as u8 + 1, ix);
            mtus.push(b.mtu);
            macs.push(plane_mac(k as u8 + 1, ix));
            let _ = core.enable_bearer(self.now, b);
        }
        let pcap = if self.pcap { PcapSink::new(Vec::new()).ok() } else { None };
        self.nodes.push(SimNode {
            core,
            macs,
            mtus,
            tx_free: Instant::ZERO,
            rx_free: Instant::ZERO,
            alive: true,
            events: VecDeque::new(),
            pcap,
        });
        ix
    }

    /// Adds a plane (a further segment, up to three): every node, present
    /// and future, gets a bearer on it (bearer id = plane), with the
    /// settings `tweak` makes of the defaults. Returns the plane.
    ///
    /// # Panics
    /// On a fourth plane (a node runs at most three bearers).
    pub fn add_plane(&mut self, tweak: impl FnOnce(&mut BearerSettings)) -> u8 {
        let plane = self.planes.len() as u8 + 1;
        assert!(usize::from(plane) < tipc_link::MAX_BEARERS, "at most {} planes", tipc_link::MAX_BEARERS);
        let mut template = BearerSettings::new(plane_mac(plane, 0), "", 1500);
        tweak(&mut template);
        self.planes.push(template.clone());
        let now = self.now;
        for (ix, n) in self.nodes.iter_mut().enumerate() {
            let b = plane_bearer(&template, plane, ix);
            n.mtus.push(b.mtu);
            n.macs.push(plane_mac(plane, ix));
            let _ = n.core.enable_bearer(now, b);
        }
        for i in 0..self.nodes.len() {
            self.drain(i);
        }
        plane
    }

    /// Loses every frame on `plane` from `from` until `until` (a cable or
    /// switch down).
    pub fn cut_plane(&mut self, plane: u8, from: Instant, until: Instant) {
        let all: Vec<NodeIx> = (0..self.nodes.len()).collect();
        self.partitions.push(Partition { a: all.clone(), b: all, plane: Some(plane), from, until });
    }

    /// Adds `n` nodes named `node-0`…
    pub fn add_nodes(&mut self, n: usize) -> Vec<NodeIx> {
        (0..n).map(|i| self.add_node(&format!("node-{i}"), |_| {})).collect()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The core of node `i`.
    pub fn core(&mut self, i: NodeIx) -> &mut NodeCore {
        &mut self.nodes[i].core
    }
    /// Events of node `i` since the last call, with their times.
    pub fn take_events(&mut self, i: NodeIx) -> Vec<(Instant, CoreEvent)> {
        self.nodes[i].events.drain(..).collect()
    }

    /// Loses every frame between `a` and `b` from `from` until `until`.
    pub fn partition(&mut self, a: &[NodeIx], b: &[NodeIx], from: Instant, until: Instant) {
        self.partitions.push(Partition { a: a.to_vec(), b: b.to_vec(), plane: None, from, until });
    }

    /// Stops node `i` dead (no goodbye), as a crash.
    pub fn crash(&mut self, i: NodeIx) {
        self.nodes[i].alive = false;
    }
    /// Restarts a crashed node as a fresh process with the same identity.
    pub fn restart(&mut self, i: NodeIx, tweak: impl FnOnce(&mut LinkConfig)) {
        let old = self.nodes[i].core.link().config().clone();
        let mut cfg = old;
        cfg.seed = self.rng.next_u64();
        tweak(&mut cfg);
        let bearers = self.nodes[i].core.link().bearers();
        let mut core = NodeCore::new(cfg, self.now);
        for (_, b) in bearers.into_iter().skip(1) {
            let _ = core.enable_bearer(self.now, b);
        }
        self.nodes[i].core = core;
        self.nodes[i].alive = true;
    }
    /// Whether node `i` runs.
    pub fn alive(&self, i: NodeIx) -> bool {
        self.nodes[i].alive
    }

    fn partitioned(&self, x: NodeIx, y: NodeIx, plane: u8, t: Instant) -> bool {
        self.partitions.iter().any(|p| {
            p.plane.is_none_or(|q| q == plane)
                && t >= p.from
                && t < p.until
                && ((p.a.contains(&x) && p.b.contains(&y)) || (p.a.contains(&y) && p.b.contains(&x)))
        })
    }

    fn drain(&mut self, i: NodeIx) {
        while let Some(ev) = self.nodes[i].core.poll_event() {
            let now = self.now;
            self.nodes[i].events.push_back((now, ev));
        }
        while let Some(t) = self.nodes[i].core.poll_transmit() {
            let plane = t.bearer;
            let Some(&src) = self.nodes[i].macs.get(usize::from(plane)) else { continue };
            if self.nodes[i].mtus.get(usize::from(plane)).is_some_and(|&m| t.msg.len() > m) {
                // longer than the segment carries
                self.oversized += 1;
                continue;
            }
            // the simulated segment is Ethernet
            let Some(dst) = t.dst.mac() else { continue };
            let frame = Bytes::from(EthFrame::build(dst, src, &t.msg));
            if let Some(p) = self.nodes[i].pcap.as_mut() {
                let _ = p.write_frame(Duration::from_micros(self.now.as_micros()), &frame);
            }
            // on the wire: preamble, header, payload, FCS and gap
            let ser = self
                .bandwidth
                .map_or(Duration::ZERO, |b| Duration::from_micros(((frame.len() as u64 + 24) * 8_000_000).div_ceil(b)));
            let depart = self.now.max(self.nodes[i].tx_free) + ser;
            self.nodes[i].tx_free = depart;
            let on_plane = |n: &SimNode| n.macs.len() > usize::from(plane);
            let targets: Vec<NodeIx> = if t.dst.is_broadcast() {
                (0..self.nodes.len()).filter(|&j| j != i && on_plane(&self.nodes[j])).collect()
            } else {
                self.nodes.iter().position(|n| n.macs.get(usize::from(plane)) == Some(&dst)).into_iter().collect()
            };
            for j in targets {
                if self.partitioned(i, j, plane, self.now) {
                    continue;
                }
                let f = self.faults;
                let seed = self.seed ^ ((i as u64) << 32) ^ (j as u64) ^ (u64::from(plane) << 48) ^ 0x5eed;
                let verdict =
                    self.injectors.entry((i, j, plane)).or_insert_with(|| FaultInjector::new(f, seed)).decide();
                let arrive = (depart + self.latency).max(self.nodes[j].rx_free + ser);
                // (without a bandwidth the port never queues: a latency
                // changed mid-run must not hold frames behind older ones)
                if self.bandwidth.is_some() {
                    self.nodes[j].rx_free = arrive;
                }
                for c in verdict.copies {
                    let mut fr = frame.clone();
                    if let Some((idx, x)) = c.corrupt {
                        let mut v = fr.to_vec();
                        let span = v.len() - 14;
                        if span > 0 {
                            v[14 + idx % span] ^= x;
                        }
                        fr = Bytes::from(v);
                    }
                    self.seq += 1;
                    self.queue.push(Reverse(InFlight {
                        at: arrive + c.delay,
                        seq: self.seq,
                        to: j,
                        plane,
                        src,
                        frame: fr,
                    }));
                }
            }
        }
    }

    /// Runs one step: the earliest frame delivery or timer, if it is due
    /// no later than `limit`. Returns false when nothing is due by then.
    pub fn step(&mut self, limit: Instant) -> bool {
        let next_frame = self.queue.peek().map(|Reverse(f)| f.at);
        let next_timer = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.alive)
            .filter_map(|(i, n)| n.core.poll_timeout().map(|t| (t, i)))
            .min();
        let frame_first = match (next_frame, next_timer) {
            (Some(f), Some((t, _))) => f <= t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return false,
        };
        if frame_first {
            let at = next_frame.unwrap_or(limit);
            if at > limit {
                return false;
            }
            let Some(Reverse(f)) = self.queue.pop() else { return false };
            self.now = self.now.max(f.at);
            if !self.nodes[f.to].alive {
                return true;
            }
            self.frames += 1;
            if let Some(p) = self.nodes[f.to].pcap.as_mut() {
                let _ = p.write_frame(Duration::from_micros(self.now.as_micros()), &f.frame);
            }
            if let Ok(eth) = EthFrame::parse_tipc(f.frame) {
                let now = self.now;
                self.nodes[f.to].core.handle_frame_on(now, f.plane, f.src, eth.payload);
            }
            self.drain(f.to);
        } else if let Some((t, i)) = next_timer {
            if t > limit {
                return false;
            }
            self.now = self.now.max(t);
            let now = self.now;
            self.nodes[i].core.handle_timeout(now);
            self.drain(i);
        }
        true
    }

    /// Runs until virtual time `t`.
    pub fn run_until(&mut self, t: Instant) {
        while self.step(t) {}
        self.now = self.now.max(t);
    }
    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }
    /// Runs until `cond` holds or `max` of virtual time passes; returns whether it held.
    pub fn run_while(&mut self, max: Duration, mut cond: impl FnMut(&mut SimNet) -> bool) -> bool {
        let end = self.now + max;
        loop {
            if !cond(self) {
                return true;
            }
            if !self.step(end) {
                return !cond(self);
            }
        }
    }

    /// Lets the application act on node `i` (send, open ports), then
    /// collects what that produced.
    pub fn with<R>(&mut self, i: NodeIx, f: impl FnOnce(&mut NodeCore, Instant) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[i].core, now);
        self.drain(i);
        r
    }

    /// Writes node `i`'s frames so far (sent and received) to a pcap file;
    /// recording goes on into a fresh buffer.
    pub fn write_pcap(&mut self, i: NodeIx, path: impl AsRef<Path>) -> std::io::Result<()> {
        let bytes =
            self.take_pcap(i).ok_or_else(|| std::io::Error::other("pcap recording is off (record_pcap(true))"))?;
        std::fs::write(path, bytes)
    }

    /// Takes node `i`'s recorded TIPC frames (sent and received, in order),
    /// parsed; recording restarts empty. Empty while recording is off.
    ///
    /// # Errors
    /// [`tipc_wire::WireError`] if the recording cannot be read back (a
    /// bug of the recorder: it writes the pcap itself).
    pub fn take_frames(&mut self, i: NodeIx) -> Result<Vec<EthFrame>, tipc_wire::WireError> {
        let Some(bytes) = self.take_pcap(i) else { return Ok(Vec::new()) };
        let frames = tipc_wire::pcap::read_pcap(&bytes[..])?;
        Ok(frames.into_iter().filter_map(|f| EthFrame::parse_tipc(f.data).ok()).collect())
    }

    /// Takes node `i`'s recorded pcap bytes (recording restarts empty).
    pub fn take_pcap(&mut self, i: NodeIx) -> Option<Vec<u8>> {
        let sink = self.nodes[i].pcap.take()?;
        if self.pcap {
            self.nodes[i].pcap = PcapSink::new(Vec::new()).ok();
        }
        Some(sink.into_inner())
    }
}

/// Node `ix`'s bearer on `plane`: the plane's settings with the node's MAC
/// and name.
fn plane_bearer(template: &BearerSettings, plane: u8, ix: NodeIx) -> BearerSettings {
    BearerSettings { media: plane_mac(plane, ix).into(), name: format!("sim{ix}p{plane}"), ..template.clone() }
}

/// The MAC of node `ix` on `plane`.
fn plane_mac(plane: u8, ix: NodeIx) -> MacAddr {
    MacAddr([0x02, 0x54, 0x49, 0x50, 0x43 + plane * 0x10, ix as u8 + 1])
}
