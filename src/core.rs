//! `NodeCore`: everything one node does, still sans-IO — the link layer
//! plus the socket-level port table. The runtime and the simulator drive it
//! the same way.

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;
use tipc_link::{LinkConfig, LinkEvent, LinkLayer, Transmit};
use tipc_wire::{
    DataMsg, DataType, ErrorCode, Flags, Importance, Instant, MacAddr, Msg, NodeAddr, PortId, Scope, User,
};

use crate::error::Error;

/// A message delivered to a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMessage {
    /// The receiving port.
    pub port: PortId,
    /// Sender's node.
    pub from_node: NodeAddr,
    /// Sender's port.
    pub from_port: PortId,
    /// The data.
    pub data: Bytes,
    /// Error code, when the message came back undeliverable.
    pub err: ErrorCode,
}

/// What the core reports to its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreEvent {
    /// Our address is confirmed.
    AddressConfirmed(NodeAddr),
    /// A node came up.
    NodeUp(NodeAddr),
    /// A node went down.
    NodeDown(NodeAddr),
    /// Data for a local port.
    Message(PortMessage),
    /// A link drained: blocked senders may retry.
    Uncongested(NodeAddr),
    /// A conflict (address or identity) seen on the network.
    Conflict(String),
}

/// Counters of the core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Messages for ports that do not exist (dropped or returned).
    pub no_port: u64,
    /// Delivered messages that could not be parsed.
    pub malformed: u64,
}

/// One node's protocol state.
#[derive(Debug)]
pub struct NodeCore {
    link: LinkLayer,
    ports: BTreeSet<PortId>,
    next_port: u32,
    events: VecDeque<CoreEvent>,
    stats: CoreStats,
}

impl NodeCore {
    /// A node starting at `now`.
    pub fn new(cfg: LinkConfig, now: Instant) -> NodeCore {
        let seed = cfg.seed;
        NodeCore {
            link: LinkLayer::new(cfg, now),
            ports: BTreeSet::new(),
            next_port: (seed as u32 | 0x4000_0000) & 0x7fff_ffff,
            events: VecDeque::new(),
            stats: CoreStats::default(),
        }
    }

    /// The link layer (statistics, peers).
    pub fn link(&self) -> &LinkLayer {
        &self.link
    }
    /// Our address, once confirmed.
    pub fn address(&self) -> Option<NodeAddr> {
        self.link.address()
    }
    /// Our bearer MAC.
    pub fn mac(&self) -> MacAddr {
        self.link.config().mac
    }
    /// Counters.
    pub fn stats(&self) -> CoreStats {
        self.stats
    }

    /// Opens a port (socket) and returns its id.
    pub fn open_port(&mut self) -> PortId {
        loop {
            self.next_port = self.next_port.wrapping_mul(1_103_515_245).wrapping_add(12_345) & 0x7fff_ffff;
            let p = PortId(self.next_port | 1);
            if self.ports.insert(p) {
                return p;
            }
        }
    }
    /// Closes a port.
    pub fn close_port(&mut self, p: PortId) {
        self.ports.remove(&p);
    }

    /// Sends `data` from local port `from` to the socket `(node, port)`.
    /// `returnable` clears dest-droppable (the message comes back with
    /// NO_PORT if nobody is there).
    #[allow(clippy::too_many_arguments)]
    pub fn send_direct(
        &mut self,
        now: Instant,
        from: PortId,
        node: NodeAddr,
        port: PortId,
        data: Bytes,
        importance: Importance,
        returnable: bool,
    ) -> Result<(), Error> {
        let own = self.address().ok_or(Error::NotReady)?;
        if !self.ports.contains(&from) {
            return Err(Error::NoSuchPort(from));
        }
        if data.len() > tipc_wire::MAX_USER_MSG_SIZE {
            return Err(Error::TooLarge(data.len()));
        }
        let mut m = DataMsg::new(DataType::Direct, data);
        m.importance = importance;
        m.flags = Flags { d: !returnable, ..Flags::default() };
        m.scope = Scope::None;
        m.prev_node = own;
        m.orig_node = own;
        m.dest_node = if node.0 == 0 { own } else { node };
        m.orig_port = from;
        m.dest_port = port;
        if m.dest_node == own {
            self.deliver_local(m);
            return Ok(());
        }
        let bytes = Msg::Data(m).to_bytes().map_err(|e| Error::Wire(e.to_string()))?;
        self.link.send(now, node, bytes).map_err(Error::from)
    }

    fn deliver_local(&mut self, m: DataMsg) {
        if self.ports.contains(&m.dest_port) {
            self.events.push_back(CoreEvent::Message(PortMessage {
                port: m.dest_port,
                from_node: m.origin(),
                from_port: m.orig_port,
                data: m.payload,
                err: m.err,
            }));
        } else {
            self.stats.no_port += 1;
        }
    }

    /// Handles a received frame.
    pub fn handle_frame(&mut self, now: Instant, src: MacAddr, msg: Bytes) {
        self.link.handle_frame(now, src, msg);
        self.pump(now);
    }
    /// Handles timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.handle_timeout(now);
        self.pump(now);
    }
    /// When to call [`NodeCore::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.link.poll_timeout()
    }
    /// Like [`NodeCore::poll_timeout`], leaving out fast-probe deadlines.
    #[must_use]
    pub fn poll_timeout_except_fast_probe(&self) -> Option<Instant> {
        self.link.poll_timeout_except_fast_probe()
    }
    /// The next frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.link.poll_transmit()
    }
    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<CoreEvent> {
        self.events.pop_front()
    }
    /// Whether everything sent has been acknowledged.
    pub fn all_acked(&self) -> bool {
        self.link.all_acked()
    }
    /// Leaves the network cleanly (peer-stopping RESETs).
    pub fn shutdown(&mut self, now: Instant) {
        self.link.shutdown(now);
    }

    fn pump(&mut self, now: Instant) {
        while let Some(ev) = self.link.poll_event() {
            match ev {
                LinkEvent::AddressConfirmed(a) => self.events.push_back(CoreEvent::AddressConfirmed(a)),
                LinkEvent::NodeUp { addr, .. } => self.events.push_back(CoreEvent::NodeUp(addr)),
                LinkEvent::NodeDown { addr } => self.events.push_back(CoreEvent::NodeDown(addr)),
                LinkEvent::Uncongested { node } => self.events.push_back(CoreEvent::Uncongested(node)),
                LinkEvent::Conflict { what, .. } => self.events.push_back(CoreEvent::Conflict(what)),
                LinkEvent::Deliver { from, msg, .. } => self.deliver(now, from, msg),
            }
        }
    }

    fn deliver(&mut self, now: Instant, from: NodeAddr, msg: Bytes) {
        let user = User::from(tipc_wire::field::bits(&msg, 0, 25, 4) as u8);
        if !user.is_data() {
            // names, groups and connections come with later layers
            return;
        }
        let Ok(Msg::Data(m)) = Msg::parse(msg) else {
            self.stats.malformed += 1;
            return;
        };
        match m.msg_type {
            DataType::Direct | DataType::Conn => {
                if self.ports.contains(&m.dest_port) {
                    self.deliver_local(m);
                } else {
                    self.stats.no_port += 1;
                    if !m.flags.d && m.err == ErrorCode::Ok {
                        self.reject(now, from, m);
                    }
                }
            }
            _ => {}
        }
    }

    /// Returns an undeliverable message to its sender with NO_PORT.
    fn reject(&mut self, now: Instant, from: NodeAddr, m: DataMsg) {
        let Some(own) = self.address() else { return };
        let mut r = m;
        r.err = ErrorCode::NoPort;
        std::mem::swap(&mut r.orig_port, &mut r.dest_port);
        r.dest_node = r.origin();
        r.orig_node = own;
        r.prev_node = own;
        if r.hsize < 32 {
            r.hsize = 32;
        }
        r.payload = r.payload.slice(..r.payload.len().min(1024));
        if let Ok(b) = Msg::Data(r).to_bytes() {
            let _ = self.link.send(now, from, b);
        }
    }
}
