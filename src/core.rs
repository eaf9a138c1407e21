//! `NodeCore`: one node as the wiring of its two layers, still sans-IO — the
//! link layer ([`tipc_link::LinkLayer`]: discovery, links, broadcast link)
//! below the socket layer ([`tipc_group::SocketLayer`]: ports, names,
//! groups). Link events go up as [`NodeInput`]s; the socket layer sends
//! down through [`Links`], implemented here on the link layer. The runtime
//! and the simulator drive a `NodeCore` the same way.

use std::collections::VecDeque;

use bytes::Bytes;
use tipc_group::topology::{SubId, Subscription};
use tipc_group::{
    Accepted, ConnEvent, ConnectTo, Dest, GroupSpec, LinkRefusal, Links, NodeInput, SendOpts, SocketEvent, SocketLayer,
    SocketStats,
};
use tipc_link::{LinkConfig, LinkError, LinkEvent, LinkLayer, Transmit};
use tipc_wire::{Importance, Instant, MediaAddr, MemberId, NodeAddr, PortId, Scope, ServiceRange};

use crate::error::Error;

pub use tipc_group::{McastMethod, PortMessage};

/// Counters of the socket layer (ports, names, groups).
pub type CoreStats = SocketStats;

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
        event: tipc_group::GroupEvent,
    },
    /// A link or group window opened: blocked senders may retry.
    Uncongested(NodeAddr),
    /// A conflict of addresses, identities or clusters seen on the segment.
    Conflict(tipc_link::Conflict),
    /// An event for a subscription to the name table.
    Topology(tipc_group::topology::TopologyEvent),
    /// Something for a connection socket.
    Conn {
        /// The socket.
        port: PortId,
        /// What happened.
        event: ConnEvent,
    },
}

impl From<SocketEvent> for CoreEvent {
    fn from(e: SocketEvent) -> Self {
        match e {
            SocketEvent::Message(m) => CoreEvent::Message(m),
            SocketEvent::Group { port, event } => CoreEvent::Group { port, event },
            SocketEvent::Uncongested(n) => CoreEvent::Uncongested(n),
            SocketEvent::Topology(e) => CoreEvent::Topology(e),
            SocketEvent::Conn { port, event } => CoreEvent::Conn { port, event },
        }
    }
}

/// The link layer as the socket layer sees it.
struct LinkEdge<'a>(&'a mut LinkLayer);

impl Links for LinkEdge<'_> {
    fn is_up(&self, node: NodeAddr) -> bool {
        self.0.is_up(node)
    }
    fn up_nodes(&self) -> Vec<NodeAddr> {
        self.0.up_nodes()
    }
    fn up_count(&self) -> usize {
        self.0.up_count()
    }
    fn is_congested(&self, node: NodeAddr) -> bool {
        self.0.is_congested(node)
    }
    fn any_congested(&self) -> bool {
        self.0.any_congested()
    }
    fn max_pkt(&self, node: NodeAddr) -> usize {
        self.0.max_pkt(node)
    }
    fn send(&mut self, now: Instant, node: NodeAddr, msg: Bytes) -> Result<(), (LinkRefusal, Bytes)> {
        self.0.offer(now, node, msg).map_err(refusal)
    }
    fn broadcast(&mut self, now: Instant, msg: Bytes) -> Result<(), (LinkRefusal, Bytes)> {
        self.0.offer_broadcast(now, msg).map_err(refusal)
    }
    fn caps(&self, node: NodeAddr) -> u16 {
        self.0.peer_caps(node).unwrap_or(0)
    }
}

fn refusal(r: tipc_link::Refused) -> (LinkRefusal, Bytes) {
    let why = match r.error {
        LinkError::Congested(_) => LinkRefusal::Congested,
        _ => LinkRefusal::Unreachable,
    };
    (why, r.msg)
}

/// One node's protocol state: the link layer and the socket layer.
#[derive(Debug)]
pub struct NodeCore {
    link: timed::TimedLink,
    sockets: SocketLayer,
    events: VecDeque<CoreEvent>,
}

/// Runs `$call` on the socket layer with the link layer as its links, then
/// moves the socket layer's events out.
macro_rules! up {
    ($self:ident, |$s:ident, $l:ident| $call:expr) => {{
        let $s = &mut $self.sockets;
        let $l = &mut $self.link.edge();
        let r = $call;
        $self.drain();
        r
    }};
}

impl NodeCore {
    /// A node starting at `now`.
    pub fn new(cfg: LinkConfig, now: Instant) -> NodeCore {
        let seed = cfg.seed;
        NodeCore {
            link: timed::TimedLink::new(LinkLayer::new(cfg, now)),
            sockets: SocketLayer::new(seed, now),
            events: VecDeque::new(),
        }
    }

    /// The link layer (statistics, peers).
    pub fn link(&self) -> &LinkLayer {
        self.link.get()
    }
    /// The socket layer (ports, name table, groups).
    pub fn sockets(&self) -> &SocketLayer {
        &self.sockets
    }
    /// The name table.
    pub fn names(&self) -> &tipc_group::NameTable {
        self.sockets.names()
    }
    /// A group socket's state.
    pub fn group(&self, port: PortId) -> Option<&tipc_group::Group> {
        self.sockets.group(port)
    }
    /// Our address, once confirmed.
    pub fn address(&self) -> Option<NodeAddr> {
        self.link.get().address()
    }
    /// Our bearer's media address (its MAC, or its UDP address).
    pub fn media(&self) -> MediaAddr {
        self.link.get().config().media
    }
    /// Counters of the socket layer.
    pub fn stats(&self) -> CoreStats {
        self.sockets.stats()
    }

    fn drain(&mut self) {
        while let Some(e) = self.sockets.poll_event() {
            self.events.push_back(e.into());
        }
    }

    /// Opens a port (socket) and returns its id.
    pub fn open_port(&mut self) -> PortId {
        self.sockets.open_port()
    }
    /// Closes a port: leaves its group and withdraws its bindings.
    pub fn close_port(&mut self, p: PortId) {
        up!(self, |s, l| s.close_port(p, l))
    }
    /// Binds `range` to local port `port` with `scope` (node or cluster).
    ///
    /// # Errors
    /// As [`SocketLayer::bind`].
    pub fn bind(&mut self, port: PortId, range: ServiceRange, scope: Scope) -> Result<(), Error> {
        up!(self, |s, l| s.bind(port, range, scope, l)).map_err(Error::from)
    }
    /// Subscribes to the name table at `now`; what exists is reported at
    /// once as [`CoreEvent::Topology`] events.
    ///
    /// # Errors
    /// As [`SocketLayer::subscribe`].
    pub fn subscribe(&mut self, now: Instant, s: Subscription) -> Result<SubId, Error> {
        let r = self.sockets.subscribe(now, s).map_err(Error::from);
        self.drain();
        r
    }
    /// Ends a subscription without an event; false if it was not active.
    pub fn unsubscribe(&mut self, id: SubId) -> bool {
        self.sockets.unsubscribe(id)
    }
    /// Withdraws every binding of `port` for `range`.
    pub fn unbind(&mut self, port: PortId, range: ServiceRange) {
        up!(self, |s, l| s.unbind(port, range, l))
    }
    /// Chooses how multicasts from `port` travel (tipcmsg's `-m`).
    pub fn set_mcast_method(&mut self, port: PortId, m: McastMethod) {
        self.sockets.set_mcast_method(port, m);
    }
    /// Joins a group with local port `port`.
    ///
    /// # Errors
    /// As [`SocketLayer::group_join`].
    pub fn group_join(&mut self, port: PortId, spec: GroupSpec) -> Result<(), Error> {
        up!(self, |s, l| s.group_join(port, spec, l)).map_err(Error::from)
    }
    /// Sets the importance of the data group socket `port` sends.
    ///
    /// # Errors
    /// [`Error::NotJoined`].
    pub fn group_set_importance(&mut self, port: PortId, importance: Importance) -> Result<(), Error> {
        self.sockets.group_set_importance(port, importance).map_err(Error::from)
    }
    /// Leaves the group of `port`.
    ///
    /// # Errors
    /// [`Error::NotJoined`].
    pub fn group_leave(&mut self, port: PortId) -> Result<(), Error> {
        up!(self, |s, l| s.group_leave(port, l)).map_err(Error::from)
    }
    /// The application of `port` read a group message of `len` bytes from `from`.
    pub fn group_consumed(&mut self, port: PortId, from: MemberId, len: usize) {
        up!(self, |s, l| s.group_consumed(port, from, len, l))
    }
    /// Sends `data` from local port `from` to `dest` (a socket, service,
    /// range, or a destination in the socket's group).
    ///
    /// # Errors
    /// As [`SocketLayer::send`].
    pub fn send(&mut self, now: Instant, from: PortId, dest: Dest, data: Bytes, opts: SendOpts) -> Result<(), Error> {
        up!(self, |s, l| s.send(now, from, dest, data, opts, l)).map_err(Error::from)
    }

    /// Opens a port for a connection socket (SEQPACKET or STREAM).
    pub fn open_conn_port(&mut self) -> PortId {
        self.sockets.open_conn_port()
    }
    /// Makes `port` a listening connection socket.
    ///
    /// # Errors
    /// As [`SocketLayer::listen`].
    pub fn listen(&mut self, port: PortId) -> Result<(), Error> {
        self.sockets.listen(port).map_err(Error::from)
    }
    /// How many connection requests wait on `listener`.
    pub fn pending_requests(&self, listener: PortId) -> usize {
        self.sockets.pending_requests(listener)
    }
    /// Takes the oldest connection request waiting on `listener`.
    ///
    /// # Errors
    /// As [`SocketLayer::accept`].
    pub fn accept(&mut self, now: Instant, listener: PortId) -> Result<Accepted, Error> {
        up!(self, |s, l| s.accept(now, listener, l)).map_err(Error::from)
    }
    /// Connects `port` to `to`, the SYN carrying `data` when not empty.
    ///
    /// # Errors
    /// As [`SocketLayer::connect`].
    pub fn connect(
        &mut self,
        now: Instant,
        port: PortId,
        to: ConnectTo,
        data: Bytes,
        importance: Importance,
    ) -> Result<(), Error> {
        up!(self, |s, l| s.connect(now, port, to, data, importance, l)).map_err(Error::from)
    }
    /// Sends one message of connection data.
    ///
    /// # Errors
    /// As [`SocketLayer::conn_send`].
    pub fn conn_send(&mut self, now: Instant, port: PortId, data: Bytes) -> Result<(), Error> {
        up!(self, |s, l| s.conn_send(now, port, data, l)).map_err(Error::from)
    }
    /// The application of connection `port` read a whole message of `len`
    /// bytes.
    pub fn conn_consumed(&mut self, port: PortId, len: usize) {
        up!(self, |s, l| s.conn_consumed(port, len, l))
    }
    /// Shuts connection `port` down (the peer reads end of stream).
    ///
    /// # Errors
    /// As [`SocketLayer::conn_shutdown`].
    pub fn conn_shutdown(&mut self, port: PortId) -> Result<(), Error> {
        up!(self, |s, l| s.conn_shutdown(port, l)).map_err(Error::from)
    }
    /// The peer socket of connection `port`, once connected.
    pub fn conn_peer(&self, port: PortId) -> Option<MemberId> {
        self.sockets.conn_peer(port)
    }

    /// Sends an already encoded TIPC message to `node` over its link as it
    /// is — no port, name or group checks. For tools and tests that speak
    /// for a node (e.g. a misbehaving one); applications use the socket calls.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] (congested), [`Error::NoLink`], or the link's
    /// refusal of a malformed message.
    pub fn send_raw(&mut self, now: Instant, node: NodeAddr, msg: Bytes) -> Result<(), Error> {
        self.link.get_mut().send(now, node, msg).map_err(Error::from)
    }

    /// Handles a received frame on bearer 0.
    /// `src` is the sender's MAC on Ethernet, its datagram's source on UDP.
    pub fn handle_frame(&mut self, now: Instant, src: impl Into<MediaAddr>, msg: Bytes) {
        self.handle_frame_on(now, 0, src, msg);
    }
    /// Handles a frame received on bearer `bearer`
    /// ([`LinkLayer::handle_frame_on`]).
    pub fn handle_frame_on(&mut self, now: Instant, bearer: u8, src: impl Into<MediaAddr>, msg: Bytes) {
        self.link.get_mut().handle_frame_on(now, bearer, src, msg);
        self.pump(now);
    }
    /// Enables a further bearer ([`LinkLayer::enable_bearer`]); returns its id.
    ///
    /// # Errors
    /// [`Error::TooManyBearers`] when three are enabled.
    pub fn enable_bearer(&mut self, now: Instant, settings: tipc_link::BearerSettings) -> Result<u8, Error> {
        let id = self.link.get_mut().enable_bearer(now, settings)?;
        self.pump(now);
        Ok(id)
    }
    /// Changes bearer `id`'s settings ([`LinkLayer::update_bearer`]).
    ///
    /// # Errors
    /// [`Error::NoSuchBearer`] when `id` is not enabled.
    pub fn update_bearer(&mut self, now: Instant, id: u8, settings: tipc_link::BearerSettings) -> Result<(), Error> {
        self.link.get_mut().update_bearer(now, id, settings)?;
        self.pump(now);
        Ok(())
    }
    /// Disables bearer `id` ([`LinkLayer::disable_bearer`]): its links fail
    /// over where a parallel link is up.
    ///
    /// # Errors
    /// [`Error::NoSuchBearer`] when `id` is not enabled.
    pub fn disable_bearer(&mut self, now: Instant, id: u8) -> Result<(), Error> {
        self.link.get_mut().disable_bearer(now, id)?;
        self.pump(now);
        Ok(())
    }
    /// Sets a key (`tipc node set key`; see [`LinkLayer::set_key`]):
    /// from now on every frame is encrypted and only authenticated frames
    /// are taken. `seed`: 32 bytes from the operating system's generator.
    pub fn set_key(&mut self, now: Instant, spec: tipc_link::KeySpec, seed: [u8; 32]) {
        self.link.get_mut().set_key(now, spec, seed);
        self.pump(now);
    }
    /// Removes every key: clear frames again ([`LinkLayer::flush_keys`]).
    pub fn flush_keys(&mut self) {
        self.link.get_mut().flush_keys();
    }
    /// Makes and distributes a new session key now ([`LinkLayer::rekey`]);
    /// false if skipped.
    pub fn rekey(&mut self, now: Instant) -> bool {
        let made = self.link.get_mut().rekey(now);
        self.pump(now);
        made
    }
    /// Rekeys every `every` ([`LinkLayer::set_rekey_interval`]).
    pub fn set_rekey_interval(&mut self, now: Instant, every: Option<tipc_wire::Duration>) {
        self.link.get_mut().set_rekey_interval(now, every);
    }
    /// Handles timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.get_mut().handle_timeout(now);
        if self.sockets.poll_timeout().is_some_and(|t| t <= now) {
            up!(self, |s, l| s.handle_timeout(now, l));
        }
        self.pump(now);
    }
    /// When to call [`NodeCore::handle_timeout`] next: the earliest timer of
    /// either layer.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.link.get().poll_timeout(), self.sockets.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    /// The earliest link-layer timer whose kind `include` accepts
    /// ([`LinkLayer::next_timer`]).
    #[must_use]
    pub fn next_timer(
        &self,
        include: impl FnMut(tipc_link::TimerKind) -> bool,
    ) -> Option<(tipc_link::TimerKind, Instant)> {
        self.link.get().next_timer(include)
    }
    /// The earliest link-layer timer that is not a fast probe
    /// ([`tipc_link::TimerKind::is_fast_probe`]): what
    /// `next_timer(|k| !k.is_fast_probe())` returns, remembered between
    /// the calls that can move such a timer. Sends cannot (they move only
    /// fast probes), so a driver that asks after every send walks the
    /// timer table once per received batch or timer turn, not once per
    /// message.
    #[must_use]
    pub fn next_slow_timer(&self) -> Option<Instant> {
        self.link.next_slow_timer()
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
        self.link.get().all_acked() && self.sockets.outbox_empty()
    }
    /// Leaves the network cleanly (peer-stopping RESETs).
    pub fn shutdown(&mut self, now: Instant) {
        self.link.get_mut().shutdown(now);
    }

    /// Passes link events up, in order, with the events they cause.
    fn pump(&mut self, now: Instant) {
        while let Some(ev) = self.link.poll_event() {
            // the input for the socket layer, and our own events after it
            let (input, after) = match ev {
                LinkEvent::AddressConfirmed(a) => {
                    (NodeInput::AddressConfirmed(a), [Some(CoreEvent::AddressConfirmed(a)), None])
                }
                LinkEvent::NodeUp { addr, .. } => (NodeInput::NodeUp(addr), [Some(CoreEvent::NodeUp(addr)), None]),
                // a node going down also unblocks senders waiting for its link
                LinkEvent::NodeDown { addr } => {
                    (NodeInput::NodeDown(addr), [Some(CoreEvent::NodeDown(addr)), Some(CoreEvent::Uncongested(addr))])
                }
                LinkEvent::Uncongested { node } => {
                    (NodeInput::Uncongested(node), [Some(CoreEvent::Uncongested(node)), None])
                }
                LinkEvent::Deliver { from, msg, .. } => (NodeInput::Delivered { from, msg }, [None, None]),
                LinkEvent::Conflict(c) => {
                    self.events.push_back(CoreEvent::Conflict(c));
                    continue;
                }
            };
            up!(self, |s, l| s.handle(now, input, l));
            self.events.extend(after.into_iter().flatten());
        }
        up!(self, |s, l| s.flush(now, l));
    }
}

/// The link layer behind the one door that remembers its earliest timer
/// other than fast probes (`NodeCore::next_slow_timer`).
mod timed {
    use std::cell::Cell;

    use tipc_link::{LinkEvent, LinkLayer, Transmit};
    use tipc_wire::Instant;

    use super::LinkEdge;

    /// The link layer and its remembered earliest non-fast-probe deadline.
    #[derive(Debug)]
    pub(super) struct TimedLink {
        link: LinkLayer,
        /// `Some(deadline)` while known (the deadline itself `None` when no
        /// such timer is armed); `None` after anything that may have moved
        /// one.
        slow: Cell<Option<Option<Instant>>>,
    }

    impl TimedLink {
        pub(super) fn new(link: LinkLayer) -> TimedLink {
            TimedLink { link, slow: Cell::new(None) }
        }

        /// The link layer, to read.
        pub(super) fn get(&self) -> &LinkLayer {
            &self.link
        }

        /// The link layer, to change: forgets the remembered deadline, as
        /// any call may move a timer (a frame received, a timer served, a
        /// bearer or key changed).
        pub(super) fn get_mut(&mut self) -> &mut LinkLayer {
            self.slow.set(None);
            &mut self.link
        }

        /// The link layer as the socket layer sees it. Keeps the
        /// remembered deadline: through it the socket layer only reads and
        /// sends, and a send (`Link::send`, `BcSend::send`) arms or moves
        /// only fast probes (`TimerKind::FastProbe`,
        /// `TimerKind::BroadcastProbe`). Supervision ticks, dead-link
        /// deadlines, discovery and key timers change only on received
        /// frames, timer turns and configuration, which go through
        /// [`TimedLink::get_mut`].
        pub(super) fn edge(&mut self) -> LinkEdge<'_> {
            LinkEdge(&mut self.link)
        }

        /// The next frame to send (sealing it moves no timer; building a
        /// broadcast acknowledgement that fell due touches a link, so the
        /// remembered deadline is forgotten then).
        pub(super) fn poll_transmit(&mut self) -> Option<Transmit> {
            if self.link.bc_ack_due() {
                self.slow.set(None);
            }
            self.link.poll_transmit()
        }

        /// The next event (taking it moves no timer).
        pub(super) fn poll_event(&mut self) -> Option<LinkEvent> {
            self.link.poll_event()
        }

        /// The earliest deadline of a timer other than a fast probe,
        /// walking the timer table only when it is not remembered.
        pub(super) fn next_slow_timer(&self) -> Option<Instant> {
            self.slow.get().unwrap_or_else(|| {
                let t = self.walk();
                self.slow.set(Some(t));
                t
            })
        }

        fn walk(&self) -> Option<Instant> {
            self.link.next_timer(|k| !k.is_fast_probe()).map(|(_, t)| t)
        }
    }
}
