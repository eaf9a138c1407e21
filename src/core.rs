//! `NodeCore`: everything one node does, still sans-IO — the link layer,
//! the name table and its distribution, group membership, and the
//! socket-level port table. The runtime and the simulator drive it the same
//! way.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use tipc_group::{
    DataMsgOrProto, Group, GroupError, GroupEvent, GroupOut, GroupSpec, NameDistr, NameTable, Publication,
};
use tipc_link::{LinkConfig, LinkEvent, LinkLayer, Transmit};
use tipc_wire::{
    DataMsg, DataType, ErrorCode, Flags, Importance, Instant, MacAddr, MemberId, Msg, NameDistrType, NodeAddr, PortId,
    PublItem, Scope, ServiceRange, ServiceType, User,
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
    /// The service it was sent to (named and multicast messages).
    pub dest: Option<ServiceRange>,
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
    /// Something for a group socket.
    Group {
        /// The socket.
        port: PortId,
        /// What happened.
        event: GroupEvent,
    },
    /// A link or group window opened: blocked senders may retry.
    Uncongested(NodeAddr),
    /// A conflict (address or identity) seen on the network.
    Conflict(String),
    /// A binding appeared (`true`) or went away in the name table.
    Name(bool, Publication),
}

/// Counters of the core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Messages for ports that do not exist (dropped or returned).
    pub no_port: u64,
    /// Delivered messages that could not be parsed.
    pub malformed: u64,
    /// Name updates for nodes without a link, duplicate publications, or
    /// withdrawals of unknown bindings.
    pub bad_names: u64,
    /// Publications refused because their node already holds
    /// [`tipc_group::MAX_PUBL_PER_NODE`] bindings.
    pub names_refused: u64,
    /// Group messages for sockets that are not members.
    pub not_member: u64,
    /// Multicasts sent on the broadcast link.
    pub bcast_sends: u64,
    /// Multicast copies sent by replicast.
    pub replicast_copies: u64,
    /// Data messages that reached port or group dispatch.
    pub data_in: u64,
    /// NAME_DISTRIBUTOR messages that reached name distribution.
    pub names_in: u64,
    /// GROUP_PROTOCOL messages that reached the group layer.
    pub group_proto_in: u64,
}

/// A multicast is replicated over unicast links when it reaches at most
/// `1 + peers × REPLICAST_RATIO / 100` nodes (the kernel's default rule).
pub const REPLICAST_RATIO: usize = 10;

/// How multicasts of a socket travel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum McastMethod {
    /// The kernel's rule: replicast to few nodes, the broadcast link to many.
    #[default]
    Auto,
    /// Always one copy per destination node over unicast links.
    Replicast,
    /// Always the broadcast link.
    Broadcast,
}

/// How long a multicast method sticks before the automatic rule may change it.
pub const METHOD_EXPIRE: tipc_wire::Duration = tipc_wire::Duration::from_secs(5);

/// One node's protocol state.
#[derive(Debug)]
pub struct NodeCore {
    link: LinkLayer,
    ports: BTreeSet<PortId>,
    next_port: u32,
    names: NameTable,
    distr: NameDistr,
    own_pubs: BTreeMap<u32, Publication>,
    next_key: u32,
    groups: BTreeMap<PortId, Group>,
    pending: BTreeMap<NodeAddr, VecDeque<Bytes>>,
    pending_bcast: VecDeque<Bytes>,
    methods: BTreeMap<PortId, McastMethod>,
    /// Per sending port: whether its last automatic choice was replicast, and when it changed.
    auto_choice: BTreeMap<PortId, (bool, Instant)>,
    events: VecDeque<CoreEvent>,
    stats: CoreStats,
    now: Instant,
}

fn own_scope_matches(group_scope: Scope, p: &Publication) -> bool {
    if group_scope == Scope::Node { p.scope == Scope::Node } else { p.scope != Scope::Node }
}

impl NodeCore {
    /// A node starting at `now`.
    pub fn new(cfg: LinkConfig, now: Instant) -> NodeCore {
        let seed = cfg.seed;
        NodeCore {
            link: LinkLayer::new(cfg, now),
            ports: BTreeSet::new(),
            next_port: (seed as u32 | 0x4000_0000) & 0x7fff_ffff,
            names: NameTable::new(),
            distr: NameDistr::new(),
            own_pubs: BTreeMap::new(),
            next_key: 1,
            groups: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_bcast: VecDeque::new(),
            methods: BTreeMap::new(),
            auto_choice: BTreeMap::new(),
            events: VecDeque::new(),
            stats: CoreStats::default(),
            now,
        }
    }

    /// The link layer (statistics, peers).
    pub fn link(&self) -> &LinkLayer {
        &self.link
    }
    /// The name table.
    pub fn names(&self) -> &NameTable {
        &self.names
    }
    /// A group socket's state.
    pub fn group(&self, port: PortId) -> Option<&Group> {
        self.groups.get(&port)
    }
    /// Our address, once confirmed.
    pub fn address(&self) -> Option<NodeAddr> {
        self.link.address()
    }
    fn own(&self) -> NodeAddr {
        self.link.address().unwrap_or_default()
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
    /// Closes a port: leaves its group and withdraws its bindings.
    pub fn close_port(&mut self, p: PortId) {
        if self.groups.contains_key(&p) {
            let _ = self.group_leave(p);
        }
        let keys: Vec<u32> = self.own_pubs.iter().filter(|(_, q)| q.port == p).map(|(k, _)| *k).collect();
        for k in keys {
            self.withdraw_key(k);
        }
        self.ports.remove(&p);
        self.methods.remove(&p);
        self.auto_choice.remove(&p);
    }

    // ---------------------------------------------------------------- names

    /// Binds `range` to local port `port` with `scope` (node or cluster).
    pub fn bind(&mut self, port: PortId, range: ServiceRange, scope: Scope) -> Result<(), Error> {
        if !self.ports.contains(&port) {
            return Err(Error::NoSuchPort(port));
        }
        if range.stype.is_reserved() {
            return Err(Error::ReservedType(range.stype.0));
        }
        if range.lower > range.upper {
            return Err(Error::Config(format!("bad range {range}")));
        }
        let own = self.address().ok_or(Error::NotReady)?;
        if self.names.count_of(own) >= tipc_group::MAX_PUBL_PER_NODE {
            return Err(Error::TooManyBindings(tipc_group::MAX_PUBL_PER_NODE));
        }
        // a key unique among our bindings (the node-state one included)
        let key = loop {
            let k = port.0.wrapping_add(self.next_key);
            self.next_key = self.next_key.wrapping_add(1);
            if !self.own_pubs.contains_key(&k) {
                break k;
            }
        };
        let scope = if scope == Scope::Node { Scope::Node } else { Scope::Cluster };
        let p = Publication { range, scope, node: own, port, key };
        self.own_pubs.insert(key, p);
        self.names.insert(p);
        if scope == Scope::Cluster {
            let m = self.distr.update(own, NameDistrType::Publication, item_of(&p));
            self.distribute(m);
        }
        self.publication_added(&p);
        Ok(())
    }

    /// Sends an already encoded TIPC message to `node` over its link as it
    /// is — no port, name or group checks. For tools and tests that speak
    /// for a node (e.g. a misbehaving one); applications use the socket calls.
    pub fn send_raw(&mut self, now: Instant, node: NodeAddr, msg: Bytes) -> Result<(), Error> {
        self.now = now;
        match self.link.send(now, node, msg) {
            Ok(()) => Ok(()),
            Err(tipc_link::LinkError::Congested(n)) => Err(Error::WouldBlock(n)),
            Err(tipc_link::LinkError::BadMessage(e)) => Err(Error::Wire(e.to_string())),
            Err(_) => Err(Error::NoLink(node)),
        }
    }

    /// Withdraws every binding of `port` for `range`.
    pub fn unbind(&mut self, port: PortId, range: ServiceRange) {
        let keys: Vec<u32> =
            self.own_pubs.iter().filter(|(_, q)| q.port == port && q.range == range).map(|(k, _)| *k).collect();
        for k in keys {
            self.withdraw_key(k);
        }
    }

    fn withdraw_key(&mut self, key: u32) {
        let Some(p) = self.own_pubs.remove(&key) else { return };
        self.names.remove(p.range, p.node, p.port, p.key);
        if p.scope == Scope::Cluster {
            let m = self.distr.update(p.node, NameDistrType::Withdrawal, item_of(&p));
            self.distribute(m);
        }
        self.publication_removed(&p, false);
    }

    fn distribute(&mut self, m: tipc_wire::NameDistrMsg) {
        for n in self.link.up_nodes() {
            let mut c = m.clone();
            c.hdr.dest_node = n;
            if let Ok(b) = Msg::NameDistr(c).to_bytes() {
                self.xmit_keep(n, b);
            }
        }
    }

    fn publication_added(&mut self, p: &Publication) {
        self.events.push_back(CoreEvent::Name(true, *p));
        let own = self.own();
        for g in self.groups.values_mut() {
            if g.spec().stype == p.range.stype
                && p.port != g.own().port
                && own_scope_matches(g.spec().scope, p)
                && (p.scope != Scope::Node || p.node == own)
            {
                g.member_published(p.member(), p.range.lower);
            }
        }
        self.pump_groups();
    }

    fn publication_removed(&mut self, p: &Publication, node_down: bool) {
        self.events.push_back(CoreEvent::Name(false, *p));
        for g in self.groups.values_mut() {
            if g.spec().stype == p.range.stype && own_scope_matches(g.spec().scope, p) {
                g.member_withdrawn(p.member(), node_down);
            }
        }
        self.pump_groups();
    }

    // ---------------------------------------------------------------- sends

    /// Queues a message to a node, keeping order behind anything already
    /// waiting for that link (a congested link delays, never drops).
    fn xmit_keep(&mut self, node: NodeAddr, b: Bytes) {
        let empty = self.pending.get(&node).is_none_or(VecDeque::is_empty);
        if empty {
            match self.link.send(self.now, node, b.clone()) {
                Ok(()) => return,
                Err(tipc_link::LinkError::Congested(_)) => {}
                Err(_) => return,
            }
        }
        self.pending.entry(node).or_default().push_back(b);
    }

    fn flush_pending(&mut self) {
        let nodes: Vec<NodeAddr> = self.pending.keys().copied().collect();
        for n in nodes {
            while let Some(b) = self.pending.get_mut(&n).and_then(VecDeque::pop_front) {
                match self.link.send(self.now, n, b.clone()) {
                    Ok(()) => {}
                    Err(tipc_link::LinkError::Congested(_)) => {
                        if let Some(q) = self.pending.get_mut(&n) {
                            q.push_front(b);
                        }
                        break;
                    }
                    Err(_) => {}
                }
            }
            if self.pending.get(&n).is_some_and(VecDeque::is_empty) {
                self.pending.remove(&n);
            }
        }
        while let Some(b) = self.pending_bcast.pop_front() {
            if let Err(tipc_link::LinkError::Congested(_)) = self.link.broadcast(self.now, b.clone()) {
                self.pending_bcast.push_front(b);
                break;
            }
        }
    }

    fn congested(&self, node: NodeAddr) -> bool {
        self.pending.get(&node).is_some_and(|q| !q.is_empty()) || self.link.is_congested(node)
    }

    fn data_header(&self, t: DataType, from: PortId, importance: Importance, returnable: bool) -> DataMsg {
        let own = self.own();
        let mut m = DataMsg::new(t, Bytes::new());
        m.importance = importance;
        m.flags = Flags { d: !returnable, ..Flags::default() };
        m.prev_node = own;
        m.orig_node = own;
        m.orig_port = from;
        m
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
        let own = self.begin_send(now, from, &data)?;
        let mut m = self.data_header(DataType::Direct, from, importance, returnable);
        m.payload = data;
        m.dest_node = if node.0 == 0 { own } else { node };
        m.dest_port = port;
        self.route_unicast(m)
    }

    /// Common checks of a plain (non-group) send; returns our address.
    fn begin_send(&mut self, now: Instant, from: PortId, data: &Bytes) -> Result<NodeAddr, Error> {
        self.now = now;
        let own = self.address().ok_or(Error::NotReady)?;
        if !self.ports.contains(&from) {
            return Err(Error::NoSuchPort(from));
        }
        if self.groups.contains_key(&from) {
            return Err(Error::InGroup);
        }
        if data.len() > tipc_wire::MAX_USER_MSG_SIZE {
            return Err(Error::TooLarge(data.len()));
        }
        Ok(own)
    }

    fn route_unicast(&mut self, m: DataMsg) -> Result<(), Error> {
        let own = self.own();
        if m.dest_node == own {
            self.deliver_data(own, m);
            self.pump_groups();
            return Ok(());
        }
        if !self.link.is_up(m.dest_node) {
            return Err(Error::NoLink(m.dest_node));
        }
        if self.congested(m.dest_node) {
            return Err(Error::WouldBlock(m.dest_node));
        }
        let n = m.dest_node;
        let b = Msg::Data(m).to_bytes().map_err(|e| Error::Wire(e.to_string()))?;
        self.xmit_keep(n, b);
        Ok(())
    }

    /// Anycast to a service: one socket bound to `inst`, chosen round robin.
    #[allow(clippy::too_many_arguments)]
    pub fn send_named(
        &mut self,
        now: Instant,
        from: PortId,
        stype: ServiceType,
        inst: tipc_wire::Instance,
        data: Bytes,
        importance: Importance,
        returnable: bool,
    ) -> Result<(), Error> {
        let own = self.begin_send(now, from, &data)?;
        let dest = self.names.anycast(stype, inst, own).ok_or(Error::NoService(stype.0, inst.0))?;
        let mut m = self.data_header(DataType::Named, from, importance, returnable);
        m.scope = Scope::Cluster;
        m.payload = data;
        m.dest_node = dest.node;
        m.dest_port = dest.port;
        m.name_type = stype;
        m.name_inst = inst;
        self.route_unicast(m)
    }

    fn replicast_limit(&self) -> usize {
        1 + self.link.up_nodes().len() * REPLICAST_RATIO / 100
    }

    /// Sends `m` (a multicast or group broadcast) to `nodes`, by replicast or
    /// on the broadcast link per the kernel's rule.
    fn multicast_out(&mut self, m: DataMsg, nodes: &BTreeSet<NodeAddr>, force_replicast: bool) {
        let nodes: Vec<NodeAddr> = nodes.iter().copied().filter(|n| self.link.is_up(*n)).collect();
        if nodes.is_empty() {
            return;
        }
        let method = self.methods.get(&m.orig_port).copied().unwrap_or_default();
        let replicast = match method {
            _ if force_replicast => true,
            McastMethod::Replicast => true,
            McastMethod::Broadcast => false,
            McastMethod::Auto => {
                // the kernel's rule: switch method at most every 5 s, so a
                // sender's messages to one receiver cannot overtake each other
                let want = nodes.len() <= self.replicast_limit();
                let now = self.now;
                match self.auto_choice.get(&m.orig_port).copied() {
                    Some((cur, since)) if cur != want && now.since(since) < METHOD_EXPIRE => cur,
                    Some((cur, _)) if cur == want => cur,
                    _ => {
                        self.auto_choice.insert(m.orig_port, (want, now));
                        want
                    }
                }
            }
        };
        if replicast {
            for n in nodes {
                let mut c = m.clone();
                c.dest_node = n;
                if let Ok(b) = Msg::Data(c).to_bytes() {
                    self.stats.replicast_copies += 1;
                    self.xmit_keep(n, b);
                }
            }
        } else {
            let mut c = m;
            c.dest_node = NodeAddr(0);
            if let Ok(b) = Msg::Data(c).to_bytes() {
                self.stats.bcast_sends += 1;
                if !self.pending_bcast.is_empty() {
                    self.pending_bcast.push_back(b);
                } else if let Err(tipc_link::LinkError::Congested(_)) = self.link.broadcast(self.now, b.clone()) {
                    self.pending_bcast.push_back(b);
                }
            }
        }
    }

    /// Chooses how multicasts from `port` travel (tipcmsg's `-m`).
    pub fn set_mcast_method(&mut self, port: PortId, m: McastMethod) {
        self.methods.insert(port, m);
    }

    /// Multicast to every socket bound in `[lower, upper]` of `stype`.
    pub fn send_range(
        &mut self,
        now: Instant,
        from: PortId,
        range: ServiceRange,
        data: Bytes,
        importance: Importance,
    ) -> Result<(), Error> {
        let own = self.begin_send(now, from, &data)?;
        let targets = self.names.mcast(range, own);
        if targets.is_empty() {
            return Err(Error::NoService(range.stype.0, range.lower.0));
        }
        let nodes: BTreeSet<NodeAddr> = targets.iter().map(|m| m.node).filter(|n| *n != own).collect();
        if nodes.iter().any(|n| self.congested(*n)) || (!self.pending_bcast.is_empty()) {
            return Err(Error::WouldBlock(NodeAddr(0)));
        }
        let mut m = self.data_header(DataType::Mcast, from, importance, false);
        m.flags.d = true;
        m.scope = Scope::Cluster;
        m.payload = data;
        m.name_type = range.stype;
        m.name_inst = range.lower;
        m.word10 = range.upper.0;
        if targets.iter().any(|t| t.node == own) {
            let mut l = m.clone();
            l.dest_node = own;
            self.deliver_data(own, l);
        }
        self.multicast_out(m, &nodes, false);
        Ok(())
    }

    // --------------------------------------------------------------- groups

    /// Joins a group with local port `port`.
    pub fn group_join(&mut self, port: PortId, spec: GroupSpec) -> Result<(), Error> {
        let own = self.address().ok_or(Error::NotReady)?;
        if !self.ports.contains(&port) {
            return Err(Error::NoSuchPort(port));
        }
        if self.groups.contains_key(&port) {
            return Err(Error::AlreadyJoined);
        }
        if spec.stype.is_reserved() {
            return Err(Error::ReservedType(spec.stype.0));
        }
        let mut g = Group::new(spec, MemberId { node: own, port });
        let existing: Vec<Publication> = self
            .names
            .of_type(spec.stype)
            .filter(|p| own_scope_matches(spec.scope, p) && p.port != port && (p.scope != Scope::Node || p.node == own))
            .copied()
            .collect();
        for p in existing {
            g.member_published(p.member(), p.range.lower);
        }
        self.groups.insert(port, g);
        let scope = if spec.scope == Scope::Node { Scope::Node } else { Scope::Cluster };
        self.bind(port, ServiceRange::single(spec.stype, spec.instance), scope)?;
        self.pump_groups();
        Ok(())
    }

    /// Leaves the group of `port`: LEAVE to every member, then withdraws the binding.
    pub fn group_leave(&mut self, port: PortId) -> Result<(), Error> {
        let mut g = self.groups.remove(&port).ok_or(Error::NotJoined)?;
        g.leave();
        while let Some(o) = g.poll_out() {
            self.group_out(port, o);
        }
        let spec = *g.spec();
        self.unbind(port, ServiceRange::single(spec.stype, spec.instance));
        Ok(())
    }

    fn group_targets_congested(&self, port: PortId) -> bool {
        let Some(g) = self.groups.get(&port) else { return false };
        let own = self.own();
        g.members().any(|(m, _)| m.node != own && self.congested(m.node)) || !self.pending_bcast.is_empty()
    }

    /// Sends in a group. `to` is the member for unicast, `inst` the instance
    /// for anycast / multicast.
    pub fn group_send(
        &mut self,
        now: Instant,
        port: PortId,
        mode: tipc_group::Mode,
        to: Option<MemberId>,
        inst: tipc_wire::Instance,
        data: Bytes,
    ) -> Result<(), Error> {
        self.now = now;
        if data.len() > tipc_wire::MAX_USER_MSG_SIZE {
            return Err(Error::TooLarge(data.len()));
        }
        if self.group_targets_congested(port) {
            self.flush_pending();
            if self.group_targets_congested(port) {
                return Err(Error::WouldBlock(NodeAddr(0)));
            }
        }
        let g = self.groups.get_mut(&port).ok_or(Error::NotJoined)?;
        let r = match mode {
            tipc_group::Mode::Unicast => {
                g.send_unicast(to.ok_or(Error::Config("unicast needs a member".into()))?, data)
            }
            tipc_group::Mode::Anycast => g.send_anycast(inst, data).map(|_| ()),
            tipc_group::Mode::Multicast => g.send_multicast(inst, data),
            tipc_group::Mode::Broadcast => g.broadcast(data),
        };
        self.pump_groups();
        r.map_err(|e| match e {
            GroupError::WouldBlock => Error::WouldBlock(NodeAddr(0)),
            GroupError::NoSuchMember(m) => Error::NoSuchMember(m),
            GroupError::NoInstance(i) => Error::NoService(0, i),
            _ => Error::TooLarge(0),
        })
    }

    /// The application of `port` read a group message of `len` bytes from `from`.
    pub fn group_consumed(&mut self, port: PortId, from: MemberId, len: usize) {
        if let Some(g) = self.groups.get_mut(&port) {
            g.consumed(from, len);
        }
        self.pump_groups();
    }

    fn group_out(&mut self, port: PortId, o: GroupOut) {
        let own = self.own();
        match o {
            GroupOut::To { member, msg } => {
                if member.node == own {
                    match msg {
                        DataMsgOrProto::Data(d) => self.deliver_data(own, d),
                        DataMsgOrProto::Proto(p) => self.deliver_group_proto(own, p),
                    }
                } else {
                    let b = match msg {
                        DataMsgOrProto::Data(d) => Msg::Data(d).to_bytes(),
                        DataMsgOrProto::Proto(p) => Msg::GroupProto(p).to_bytes(),
                    };
                    if let Ok(b) = b {
                        self.xmit_keep(member.node, b);
                    }
                }
            }
            GroupOut::Multi { nodes, local, replicast, msg } => {
                if local {
                    let mut l = msg.clone();
                    l.dest_node = own;
                    self.deliver_group_multi(own, l, Some(port));
                }
                self.multicast_out(msg, &nodes, replicast);
            }
        }
    }

    /// Moves group output onto links and group events to the driver.
    fn pump_groups(&mut self) {
        loop {
            let mut work: Vec<(PortId, GroupOut)> = Vec::new();
            let mut evs: Vec<(PortId, GroupEvent)> = Vec::new();
            for (p, g) in self.groups.iter_mut() {
                while let Some(o) = g.poll_out() {
                    work.push((*p, o));
                }
                while let Some(e) = g.poll_event() {
                    evs.push((*p, e));
                }
            }
            if work.is_empty() && evs.is_empty() {
                break;
            }
            for (p, e) in evs {
                if e == GroupEvent::Unblocked {
                    self.events.push_back(CoreEvent::Uncongested(NodeAddr(0)));
                } else {
                    self.events.push_back(CoreEvent::Group { port: p, event: e });
                }
            }
            for (p, o) in work {
                self.group_out(p, o);
            }
        }
    }

    // -------------------------------------------------------------- receive

    /// Handles a received frame.
    pub fn handle_frame(&mut self, now: Instant, src: MacAddr, msg: Bytes) {
        self.now = now;
        self.link.handle_frame(now, src, msg);
        self.pump(now);
    }
    /// Handles timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.link.handle_timeout(now);
        self.pump(now);
    }
    /// When to call [`NodeCore::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.link.poll_timeout()
    }
    /// The earliest link-layer timer whose kind `include` accepts
    /// ([`LinkLayer::next_timer`]).
    #[must_use]
    pub fn next_timer(
        &self,
        include: impl FnMut(tipc_link::TimerKind) -> bool,
    ) -> Option<(tipc_link::TimerKind, Instant)> {
        self.link.next_timer(include)
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
        self.link.all_acked() && self.pending.is_empty() && self.pending_bcast.is_empty()
    }
    /// Leaves the network cleanly (peer-stopping RESETs).
    pub fn shutdown(&mut self, now: Instant) {
        self.link.shutdown(now);
    }

    fn pump(&mut self, now: Instant) {
        while let Some(ev) = self.link.poll_event() {
            match ev {
                LinkEvent::AddressConfirmed(a) => {
                    // the node-state publication, as the kernel makes at address finalisation
                    let p = Publication {
                        range: ServiceRange::single(ServiceType(0), tipc_wire::Instance(a.0)),
                        scope: Scope::Cluster,
                        node: a,
                        port: PortId(0),
                        key: a.0,
                    };
                    self.own_pubs.insert(a.0, p);
                    self.names.insert(p);
                    self.events.push_back(CoreEvent::AddressConfirmed(a));
                }
                LinkEvent::NodeUp { addr, .. } => {
                    let own = self.own();
                    let items: Vec<PublItem> =
                        self.own_pubs.values().filter(|p| p.scope == Scope::Cluster).map(item_of).collect();
                    let mtu = self.link.max_pkt(addr) + tipc_wire::INT_H_SIZE;
                    for m in self.distr.bulk(own, addr, &items, mtu) {
                        if let Ok(b) = Msg::NameDistr(m).to_bytes() {
                            self.xmit_keep(addr, b);
                        }
                    }
                    self.events.push_back(CoreEvent::NodeUp(addr));
                }
                LinkEvent::NodeDown { addr } => {
                    self.pending.remove(&addr);
                    self.distr.node_down(addr);
                    for p in self.names.purge_node(addr) {
                        self.publication_removed(&p, true);
                    }
                    for g in self.groups.values_mut() {
                        g.node_down(addr);
                    }
                    self.events.push_back(CoreEvent::NodeDown(addr));
                    self.events.push_back(CoreEvent::Uncongested(addr));
                }
                LinkEvent::Uncongested { node } => {
                    self.flush_pending();
                    self.events.push_back(CoreEvent::Uncongested(node));
                }
                LinkEvent::Conflict { what, .. } => self.events.push_back(CoreEvent::Conflict(what)),
                LinkEvent::Deliver { from, msg, .. } => self.deliver(now, from, msg),
            }
        }
        if !self.pending.is_empty() || !self.pending_bcast.is_empty() {
            self.flush_pending();
        }
        self.pump_groups();
    }

    fn deliver(&mut self, now: Instant, from: NodeAddr, msg: Bytes) {
        let user = User::from(tipc_wire::field::bits(&msg, 0, 25, 4) as u8);
        match Msg::parse(msg) {
            Ok(Msg::Data(m)) if user.is_data() => {
                let _ = now;
                self.stats.data_in += 1;
                self.deliver_data(from, m);
            }
            Ok(Msg::NameDistr(n)) => {
                self.stats.names_in += 1;
                let origin = n.hdr.orig_node;
                if !self.link.is_up(origin) {
                    self.stats.bad_names += 1;
                    return;
                }
                for u in self.distr.receive(origin, n) {
                    let p = Publication {
                        range: u.item.range(),
                        scope: Scope::Cluster,
                        node: origin,
                        port: u.item.port,
                        key: u.item.key,
                    };
                    match u.kind {
                        NameDistrType::Publication => match self.names.try_insert(p) {
                            Ok(()) => self.publication_added(&p),
                            Err(tipc_group::Refused::NodeFull) => self.stats.names_refused += 1,
                            Err(tipc_group::Refused::Duplicate) => self.stats.bad_names += 1,
                        },
                        _ => match self.names.remove(p.range, p.node, p.port, p.key) {
                            Some(q) => self.publication_removed(&q, false),
                            None => self.stats.bad_names += 1,
                        },
                    }
                }
            }
            Ok(Msg::GroupProto(p)) => {
                self.stats.group_proto_in += 1;
                self.deliver_group_proto(from, p);
            }
            Ok(_) => {}
            Err(_) => self.stats.malformed += 1,
        }
    }

    fn deliver_group_proto(&mut self, from: NodeAddr, p: tipc_wire::GroupProtoMsg) {
        // members send these straight over the link to each other: one
        // claiming another origin than the neighbour that sent it is forged
        if p.hdr.orig_node != from {
            self.stats.not_member += 1;
            return;
        }
        let sender = MemberId { node: p.hdr.orig_node, port: p.orig_port };
        match self.groups.get_mut(&p.dest_port) {
            Some(g) => g.handle_proto(sender, &p),
            None => self.stats.not_member += 1,
        }
        self.pump_groups();
    }

    /// Group broadcast/multicast arriving at this node: every local member
    /// socket of that group (but the sender) gets it.
    fn deliver_group_multi(&mut self, _from: NodeAddr, m: DataMsg, skip: Option<PortId>) {
        let sender = MemberId { node: m.origin(), port: m.orig_port };
        let scope_node = m.scope == Scope::Node;
        let ports: Vec<PortId> = self
            .groups
            .iter()
            .filter(|(p, g)| {
                Some(**p) != skip && g.spec().stype == m.name_type && (g.spec().scope == Scope::Node) == scope_node
            })
            .map(|(p, _)| *p)
            .collect();
        if ports.is_empty() {
            self.stats.not_member += 1;
        }
        for p in ports {
            if let Some(g) = self.groups.get_mut(&p) {
                g.handle_data(sender, m.clone());
            }
        }
    }

    fn deliver_data(&mut self, from: NodeAddr, m: DataMsg) {
        match m.msg_type {
            DataType::GrpBcast | DataType::GrpMcast => {
                self.deliver_group_multi(from, m, None);
                return;
            }
            DataType::GrpUcast => {
                let sender = MemberId { node: m.origin(), port: m.orig_port };
                match self.groups.get_mut(&m.dest_port) {
                    Some(g) if g.spec().stype == m.name_type => g.handle_data(sender, m),
                    _ => self.stats.not_member += 1,
                }
                return;
            }
            DataType::Mcast => {
                let own = self.own();
                let range =
                    ServiceRange { stype: m.name_type, lower: m.name_inst, upper: tipc_wire::Instance(m.word10) };
                let local_origin = m.origin() == own;
                let ports: BTreeSet<PortId> = self
                    .names
                    .of_type(range.stype)
                    .filter(|p| p.node == own && p.range.overlaps(&range) && (local_origin || p.scope != Scope::Node))
                    .map(|p| p.port)
                    .collect();
                for port in ports {
                    if self.groups.contains_key(&port) {
                        continue;
                    }
                    self.events.push_back(CoreEvent::Message(PortMessage {
                        port,
                        from_node: m.origin(),
                        from_port: m.orig_port,
                        dest: Some(range),
                        data: m.payload.clone(),
                        err: m.err,
                    }));
                }
                return;
            }
            _ => {}
        }
        let dest = (m.msg_type == DataType::Named).then(|| ServiceRange::single(m.name_type, m.name_inst));
        let mut port = m.dest_port;
        if !self.ports.contains(&port) && m.msg_type == DataType::Named && m.err == ErrorCode::Ok {
            // secondary lookup: the socket went away, the name may live on
            let own = self.own();
            if let Some(alt) = self.names.anycast(m.name_type, m.name_inst, own).filter(|a| a.node == own) {
                port = alt.port;
            }
        }
        if self.ports.contains(&port) && !self.groups.contains_key(&port) {
            self.events.push_back(CoreEvent::Message(PortMessage {
                port,
                from_node: m.origin(),
                from_port: m.orig_port,
                dest,
                data: m.payload,
                err: m.err,
            }));
        } else {
            self.stats.no_port += 1;
            if !m.flags.d && m.err == ErrorCode::Ok {
                self.reject(from, m);
            }
        }
    }

    /// Returns an undeliverable message to its sender with NO_PORT.
    fn reject(&mut self, _from: NodeAddr, m: DataMsg) {
        let Some(own) = self.address() else { return };
        let back_to = m.origin();
        let mut r = m;
        r.err = if r.msg_type == DataType::Named { ErrorCode::NoName } else { ErrorCode::NoPort };
        std::mem::swap(&mut r.orig_port, &mut r.dest_port);
        r.dest_node = back_to;
        r.orig_node = own;
        r.prev_node = own;
        if r.hsize < 32 {
            r.hsize = 32;
        }
        r.payload = r.payload.slice(..r.payload.len().min(1024));
        if back_to == own {
            self.deliver_data(own, r);
        } else if let Ok(b) = Msg::Data(r).to_bytes() {
            self.xmit_keep(back_to, b);
        }
    }
}

fn item_of(p: &Publication) -> PublItem {
    PublItem { stype: p.range.stype, lower: p.range.lower, upper: p.range.upper, port: p.port, key: p.key }
}
