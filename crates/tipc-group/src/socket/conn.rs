//! Connection-oriented sockets (SEQPACKET and STREAM): listening, connection
//! set-up with SYN, data with the kernel's connection flow control
//! (CONN_MANAGER acks counted in 1 KiB blocks, or in messages with a peer
//! that lacks `TIPC_BLOCK_FLOWCTL`), probing, and teardown by close,
//! shutdown, a lost node or an unanswered probe (net/tipc/socket.c:
//! `tipc_connect`, `tipc_accept`, `tipc_sk_filter_connect`,
//! `tipc_sk_conn_proto_rcv`, `tipc_sk_send_ack`, `tipc_sk_timeout`,
//! `__tipc_shutdown`; `tsk_inc`, `tsk_adv_blocks`).
//!
//! The socket layer holds the protocol state only; the runtime keeps what
//! the application has not read and reports each fully read message back
//! ([`SocketLayer::conn_consumed`]), which is when the kernel counts it
//! towards the next CONN_ACK.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use tipc_wire::{
    ConnMgrMsg, ConnMgrType, DataMsg, DataType, Duration, ErrorCode, Importance, Instance, Instant, IntHdr, MemberId,
    Msg, NodeAddr, PortId, Scope, ServiceType,
};

use super::{Links, SendOpts, SocketError, SocketEvent, SocketLayer};
use crate::blocks;

/// Window of a new connection in 1 KiB blocks, both ways: the kernel's
/// `tsk_adv_blocks(RCVBUF_MIN)`, 512 KiB / 1 KiB / 4.
pub const CONN_WIN_INIT: u32 = 128;
/// The window we advertise in every CONN_ACK, in blocks: the kernel's
/// `tsk_adv_blocks` of its default 2 MiB receive buffer.
pub const CONN_WIN_ADV: u32 = 512;
/// Window in messages with a peer that counts messages, not blocks
/// (`FLOWCTL_MSG_WIN`).
pub const CONN_MSG_WIN: u32 = 512;
/// A CONN_ACK goes out once the application consumed a quarter of the
/// receive window (`TIPC_ACK_RATE`).
pub const CONN_ACK_RATE: u32 = 4;
/// How long a connection stays quiet before it is probed, and how long a
/// probe may stay unanswered before the connection is aborted
/// (`CONN_PROBING_INTV`, one hour).
pub const CONN_PROBE_INTERVAL: Duration = Duration::from_secs(3600);
/// Connection requests a listening socket holds before it turns new ones
/// away with OVERLOAD (the kernel bounds them by its receive buffer).
pub const LISTEN_BACKLOG: usize = 1024;
/// Unread connection data a socket holds before it returns further
/// messages with OVERLOAD, in blocks: the kernel's 2 MiB `sk_rcvbuf` for
/// connection data. A peer that keeps to our window never reaches it.
pub const CONN_RCV_LIMIT: u32 = 2048;

/// The capability bit of block-based connection flow control
/// (`TIPC_BLOCK_FLOWCTL`, net/tipc/node.h).
const CAP_BLOCK_FLOWCTL: u16 = 0x008;

/// Where a connect goes: a socket, or one socket bound to a service
/// instance (the kernel's `TIPC_SOCKET_ADDR` and `TIPC_SERVICE_ADDR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectTo {
    /// A socket; node 0 means ours.
    Socket(MemberId),
    /// A socket bound to `inst` of `stype`, chosen by our name table.
    Service {
        /// The service type.
        stype: ServiceType,
        /// The instance.
        inst: Instance,
    },
}

/// How a connection ended, as the application learns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnEnd {
    /// The peer shut the connection down (`TIPC_CONN_SHUTDOWN`): an
    /// orderly end, read as end of stream.
    Shutdown,
    /// The peer's socket closed or went away (its close message carries
    /// NO_PORT; our data came back with the error given), or refused us:
    /// the kernel's ECONNRESET.
    Reset(ErrorCode),
    /// The peer's node was lost: every connection to it ends locally with
    /// NO_NODE, nothing on the wire (net/tipc/node.c).
    NodeLost,
    /// Our probe went unanswered for a whole probe interval (ECONNABORTED).
    ProbeTimeout,
    /// The connect was refused: the SYN came back with this error
    /// (ECONNREFUSED).
    Refused(ErrorCode),
}

/// What happened on a connection socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    /// A connection request waits on this listening socket: call
    /// [`SocketLayer::accept`].
    Incoming,
    /// The connect completed with the peer socket `peer`.
    Connected {
        /// The peer socket.
        peer: MemberId,
    },
    /// One message of connection data (a STREAM reader may read it in
    /// pieces; it counts once wholly read).
    Data(Bytes),
    /// The connection ended; after data that came before it.
    Closed(ConnEnd),
    /// The send window opened again after a send was refused.
    Writable,
}

/// An accepted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The new socket's port.
    pub port: PortId,
    /// The connecting socket.
    pub peer: MemberId,
    /// The service the request was sent to, when it was sent by name.
    pub name: Option<(ServiceType, Instance)>,
    /// Data the request carried (the kernel's implied connect), as the
    /// connection's first message; `None` for a bare SYN.
    pub data: Option<Bytes>,
}

/// The window a connection starts with, both ways: in blocks, or in
/// messages with a peer that counts messages (net/tipc/socket.c
/// `tipc_sk_finish_conn`).
fn first_window(block_mode: bool) -> u32 {
    if block_mode { CONN_WIN_INIT } else { CONN_MSG_WIN }
}

/// The state of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The SYN went to the connection's `peer` (port 0 when that node
    /// resolves the name).
    Connecting,
    Established,
    /// Ended; sends fail, nothing more arrives.
    Closed,
}

/// One connection socket's protocol state.
#[derive(Clone, Debug)]
pub(super) struct Conn {
    state: State,
    peer: MemberId,
    importance: Importance,
    /// Whether both nodes count blocks (else messages).
    block_mode: bool,
    /// Blocks (messages) sent and not acknowledged, and the peer's window.
    snd_unacked: u32,
    snd_win: u32,
    /// A send was refused for the window: report when it opens.
    snd_blocked: bool,
    /// Blocks (messages) consumed and not acknowledged, and our window.
    rcv_unacked: u32,
    rcv_win: u32,
    /// Blocks delivered and not yet consumed.
    rcv_queued: u32,
    /// When the next probe is due, and whether one is unanswered.
    probe_at: Instant,
    probe_out: bool,
}

impl Conn {
    fn cost(&self, len: usize) -> u32 {
        if self.block_mode { u32::from(blocks(len)) } else { 1 }
    }
    /// The kernel's `tsk_conn_cong`: a send waits while more than the window
    /// is unacknowledged (so one message may overshoot it).
    fn congested(&self) -> bool {
        self.snd_unacked > self.snd_win
    }
}

/// The connection sockets of a node: listeners with their queued requests,
/// and connections.
#[derive(Debug, Default)]
pub(super) struct Conns {
    listeners: BTreeMap<PortId, VecDeque<DataMsg>>,
    conns: BTreeMap<PortId, Conn>,
}

impl Conns {
    pub(super) fn is_listening(&self, p: PortId) -> bool {
        self.listeners.contains_key(&p)
    }
    /// The earliest probe deadline.
    pub(super) fn next_probe(&self) -> Option<Instant> {
        self.conns.values().filter(|c| c.state == State::Established).map(|c| c.probe_at).min()
    }
}

impl SocketLayer {
    /// Makes `port` a listening socket: connection requests (SYNs) sent to
    /// it wait until [`SocketLayer::accept`] takes them.
    ///
    /// # Errors
    /// [`SocketError::NoSuchPort`],
    /// [`SocketError::IsConnected`] (connecting or connected),
    /// [`SocketError::WrongSocketType`] (not opened with
    /// [`SocketLayer::open_conn_port`]).
    pub fn listen(&mut self, port: PortId) -> Result<(), SocketError> {
        self.plain_port(port)?;
        if self.conns.conns.contains_key(&port) {
            return Err(SocketError::IsConnected);
        }
        self.conns.listeners.entry(port).or_default();
        Ok(())
    }

    /// How many connection requests wait on listening socket `listener`
    /// (0 for a socket that does not listen).
    pub fn pending_requests(&self, listener: PortId) -> usize {
        self.conns.listeners.get(&listener).map_or(0, |q| q.len())
    }

    /// Takes the oldest connection request of listening socket `listener`:
    /// opens a new port connected to the requester, answers with the
    /// empty ACK (a 24-byte connection message at the request's
    /// importance), and returns it.
    ///
    /// # Errors
    /// [`SocketError::NotListening`]; [`SocketError::WouldBlock`] (with
    /// node 0) when no request waits.
    pub fn accept(&mut self, now: Instant, listener: PortId, links: &mut impl Links) -> Result<Accepted, SocketError> {
        self.now = now;
        let syn = {
            let q = self.conns.listeners.get_mut(&listener).ok_or(SocketError::NotListening)?;
            q.pop_front().ok_or(SocketError::WouldBlock(NodeAddr(0)))?
        };
        let peer = MemberId { node: syn.origin(), port: syn.orig_port };
        let port = self.open_conn_port();
        let block_mode = self.block_mode(peer.node, links);
        let mut c = self.new_conn(peer, syn.importance, block_mode);
        let data = (!syn.payload.is_empty()).then(|| syn.payload.clone());
        if let Some(d) = &data {
            c.rcv_queued = c.cost(tipc_wire::SHORT_H_SIZE + d.len());
        }
        self.conns.conns.insert(port, c);
        let ack = self.conn_msg(port, Bytes::new());
        if let Err(SocketError::NoLink(_)) = self.route_unicast_keep(ack, links) {
            // the requester's node went away while the request waited
            self.closed(port, ConnEnd::NodeLost);
        }
        let name = (syn.msg_type == DataType::Named).then_some((syn.name_type, syn.name_inst));
        Ok(Accepted { port, peer, name, data })
    }

    /// Connects `port` to `to`: sends the SYN (with `data` as its payload
    /// when not empty: the kernel's implied connect) at `importance`. The
    /// outcome arrives as [`ConnEvent::Connected`] or
    /// [`ConnEvent::Closed`] with [`ConnEnd::Refused`]; a connect timeout
    /// is the caller's ([`SocketLayer::close_port`] ends the attempt).
    ///
    /// # Errors
    /// [`SocketError::NotReady`], [`SocketError::NoSuchPort`],
    /// [`SocketError::WrongSocketType`], [`SocketError::IsListening`],
    /// [`SocketError::IsConnected`], [`SocketError::IsBound`] (the kernel's
    /// EOPNOTSUPP for a socket with bindings), [`SocketError::TooLarge`],
    /// [`SocketError::NoService`] (nothing bound: at once, as the kernel's
    /// EHOSTUNREACH), [`SocketError::NoLink`], [`SocketError::WouldBlock`]
    /// (the link is congested; nothing was sent).
    pub fn connect(
        &mut self,
        now: Instant,
        port: PortId,
        to: ConnectTo,
        data: Bytes,
        importance: Importance,
        links: &mut impl Links,
    ) -> Result<(), SocketError> {
        self.now = now;
        let own = self.own.ok_or(SocketError::NotReady)?;
        self.plain_port(port)?;
        if self.conns.listeners.contains_key(&port) {
            return Err(SocketError::IsListening);
        }
        if self.conns.conns.contains_key(&port) {
            return Err(SocketError::IsConnected);
        }
        if !self.bindings.keys_of(port, None).is_empty() {
            return Err(SocketError::IsBound);
        }
        Self::check_size(&data)?;
        // the SYN: returnable, at the socket's importance
        let opts = SendOpts { importance, returnable: true };
        let mut m = match to {
            ConnectTo::Socket(s) => {
                let mut m = self.data_header(DataType::Direct, port, opts);
                m.dest_node = if s.node.0 == 0 { own } else { s.node };
                m.dest_port = s.port;
                m
            }
            ConnectTo::Service { stype, inst } => {
                let t = self.names.anycast(stype, inst, own).ok_or(SocketError::NoService { stype, inst })?;
                let mut m = self.data_header(DataType::Named, port, opts);
                m.scope = Scope::Cluster;
                m.dest_node = t.node;
                m.dest_port = t.port;
                m.name_type = stype;
                m.name_inst = inst;
                m
            }
        };
        m.flags.syn = true;
        m.payload = data;
        let target = MemberId { node: m.dest_node, port: m.dest_port };
        let block_mode = self.block_mode(target.node, links);
        let mut c = self.new_conn(target, importance, block_mode);
        c.state = State::Connecting;
        // data in the SYN is the first thing the peer acknowledges; a bare
        // SYN counts nothing (net/tipc/socket.c __tipc_sendstream)
        if !m.payload.is_empty() {
            c.snd_unacked = c.cost(m.hsize + m.payload.len());
        }
        // in place before the SYN leaves: a local peer answers at once
        self.conns.conns.insert(port, c);
        let r = self.route_unicast(m, links);
        if r.is_err() {
            // nothing went (a local answer comes only from a sent SYN)
            self.conns.conns.remove(&port);
        }
        r
    }

    /// Sends one message of connection data from `port` (at most 66 000
    /// bytes; a STREAM writer cuts its bytes into such pieces).
    ///
    /// # Errors
    /// [`SocketError::NotConnected`] (never connected, or still
    /// connecting), [`SocketError::ConnClosed`] (the connection ended: the
    /// kernel's EPIPE), [`SocketError::TooLarge`],
    /// [`SocketError::WouldBlock`] with the peer's node when the peer's
    /// window or the link is full (retry after [`ConnEvent::Writable`] or
    /// an uncongested link); nothing was sent then.
    pub fn conn_send(
        &mut self,
        now: Instant,
        port: PortId,
        data: Bytes,
        links: &mut impl Links,
    ) -> Result<(), SocketError> {
        self.now = now;
        Self::check_size(&data)?;
        let c = self.conns.conns.get_mut(&port).ok_or(SocketError::NotConnected)?;
        match c.state {
            State::Connecting => return Err(SocketError::NotConnected),
            State::Closed => return Err(SocketError::ConnClosed),
            State::Established => {}
        }
        if c.congested() {
            c.snd_blocked = true;
            return Err(SocketError::WouldBlock(c.peer.node));
        }
        let cost = c.cost(tipc_wire::SHORT_H_SIZE + data.len());
        let m = self.conn_msg(port, data);
        self.route_unicast(m, links)?;
        if let Some(c) = self.conns.conns.get_mut(&port) {
            c.snd_unacked += cost;
        }
        Ok(())
    }

    /// Whether a send on `port` would wait for the peer's window now.
    pub fn conn_congested(&self, port: PortId) -> bool {
        self.conns.conns.get(&port).is_some_and(Conn::congested)
    }

    /// The peer socket of connection `port`, once connected.
    pub fn conn_peer(&self, port: PortId) -> Option<MemberId> {
        self.conns.conns.get(&port).filter(|c| c.state != State::Connecting).map(|c| c.peer)
    }

    /// The application of connection `port` has read a whole message of
    /// `len` data bytes: once a quarter of the window is consumed, a
    /// CONN_ACK gives it back to the peer with our advertised window.
    pub fn conn_consumed(&mut self, port: PortId, len: usize, links: &mut impl Links) {
        let Some(c) = self.conns.conns.get_mut(&port) else { return };
        let cost = c.cost(tipc_wire::SHORT_H_SIZE + len);
        c.rcv_queued = c.rcv_queued.saturating_sub(cost);
        if c.state != State::Established {
            return;
        }
        c.rcv_unacked += cost;
        if c.rcv_unacked < c.rcv_win / CONN_ACK_RATE {
            return;
        }
        let acked = std::mem::take(&mut c.rcv_unacked);
        let adv = if c.block_mode {
            c.rcv_win = CONN_WIN_ADV;
            CONN_WIN_ADV
        } else {
            0
        };
        let m = self.conn_mgr(port, ConnMgrType::Ack, acked.min(u32::from(u16::MAX)) as u16, adv as u16);
        self.conn_mgr_out(m, links);
    }

    /// Ends connection `port` with an orderly shutdown: the peer reads end
    /// of stream (the close message carries `TIPC_CONN_SHUTDOWN`). The
    /// port stays open; later sends fail with [`SocketError::ConnClosed`].
    ///
    /// # Errors
    /// [`SocketError::NotConnected`].
    pub fn conn_shutdown(&mut self, port: PortId, links: &mut impl Links) -> Result<(), SocketError> {
        if !self.conns.conns.contains_key(&port) {
            return Err(SocketError::NotConnected);
        }
        self.end_conn(port, ErrorCode::ConnShutdown, links);
        Ok(())
    }

    /// Closing a connection socket (from [`SocketLayer::close_port`]): an
    /// established connection tells its peer with a CRITICAL connection
    /// message carrying NO_PORT; a listener returns every waiting request
    /// with NO_PORT, so those connects are refused.
    pub(super) fn close_conn(&mut self, port: PortId, links: &mut impl Links) {
        if let Some(q) = self.conns.listeners.remove(&port) {
            for syn in q {
                self.reject_with(syn, ErrorCode::NoPort, links);
            }
        }
        if self.conns.conns.contains_key(&port) {
            self.end_conn(port, ErrorCode::NoPort, links);
            self.conns.conns.remove(&port);
        }
    }

    /// Sends the close message of an established connection and marks it
    /// closed (a connect in progress just stops).
    fn end_conn(&mut self, port: PortId, err: ErrorCode, links: &mut impl Links) {
        let Some(c) = self.conns.conns.get_mut(&port) else { return };
        let was = std::mem::replace(&mut c.state, State::Closed);
        if was != State::Established {
            return;
        }
        let mut m = self.conn_msg(port, Bytes::new());
        m.importance = Importance::Critical;
        m.err = err;
        // a lost node's connections end without a word (NoLink)
        let _ = self.route_unicast_keep(m, links);
    }

    /// Ends every connection to `node` locally (its last link went down).
    pub(super) fn conns_node_down(&mut self, node: NodeAddr) {
        let ports: Vec<PortId> = self
            .conns
            .conns
            .iter()
            // a connecting socket's peer is where its SYN went
            .filter(|(_, c)| c.state != State::Closed && c.peer.node == node)
            .map(|(p, _)| *p)
            .collect();
        for p in ports {
            self.closed(p, ConnEnd::NodeLost);
        }
    }

    /// Serves the probe timers: a connection quiet for
    /// [`CONN_PROBE_INTERVAL`] is probed; one whose probe went unanswered
    /// for as long is aborted locally.
    pub(super) fn conn_timeout(&mut self, now: Instant, links: &mut impl Links) {
        let due: Vec<PortId> = self
            .conns
            .conns
            .iter()
            .filter(|(_, c)| c.state == State::Established && c.probe_at <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            let Some(c) = self.conns.conns.get_mut(&p) else { continue };
            if c.probe_out {
                self.closed(p, ConnEnd::ProbeTimeout);
                continue;
            }
            c.probe_out = true;
            c.probe_at = now + CONN_PROBE_INTERVAL;
            let m = self.conn_mgr(p, ConnMgrType::Probe, 0, 0);
            self.conn_mgr_out(m, links);
        }
    }

    /// A data message for a connection port or a listener, or a returned
    /// SYN. Returns the message back when it is not for a connection
    /// socket (the caller delivers it as before).
    pub(super) fn deliver_conn(&mut self, m: DataMsg, links: &mut impl Links) -> Option<DataMsg> {
        let port = m.dest_port;
        if self.conns.listeners.contains_key(&port) {
            self.deliver_to_listener(m, links);
            return None;
        }
        let Some(c) = self.conns.conns.get(&port) else {
            // a connection socket that neither listens nor connects takes
            // nothing, and a connectionless one takes no connection
            // message (net/tipc/socket.c tipc_sk_filter_rcv)
            if m.msg_type == DataType::Conn || self.ports.is_conn(port) {
                self.stats.no_port += 1;
                self.reject_with(m, ErrorCode::NoPort, links);
                return None;
            }
            return Some(m);
        };
        let from = MemberId { node: m.origin(), port: m.orig_port };
        match c.state {
            State::Connecting => {
                if m.msg_type == DataType::Conn && m.err == ErrorCode::Ok {
                    self.established(port, from, m.importance, m.payload, links);
                } else if m.msg_type == DataType::Conn {
                    self.closed(port, ConnEnd::Refused(m.err));
                } else if m.err != ErrorCode::Ok && from == c.peer {
                    // our SYN came back
                    self.closed(port, ConnEnd::Refused(m.err));
                }
                // anything else is ignored while connecting
            }
            State::Established if from == c.peer => {
                if m.err != ErrorCode::Ok {
                    let end = if m.err == ErrorCode::ConnShutdown { ConnEnd::Shutdown } else { ConnEnd::Reset(m.err) };
                    self.closed(port, end);
                } else {
                    self.conn_data(port, m, links);
                }
            }
            State::Established | State::Closed => {
                self.stats.no_port += 1;
                self.reject_with(m, ErrorCode::NoPort, links);
            }
        }
        None
    }

    /// A CONN_MANAGER message: probes answered, acks open the window. Only
    /// the connected peer's count; a message with an error ends the
    /// connection.
    pub(super) fn deliver_conn_mgr(&mut self, m: ConnMgrMsg, links: &mut impl Links) {
        let port = m.dest_port;
        let from = MemberId { node: m.hdr.orig_node, port: m.orig_port };
        let Some(c) = self.conns.conns.get_mut(&port) else {
            self.stats.no_port += 1;
            return;
        };
        if c.state != State::Established || from != c.peer {
            self.stats.no_port += 1;
            return;
        }
        if m.err != ErrorCode::Ok {
            self.closed(port, ConnEnd::Reset(m.err));
            return;
        }
        c.probe_out = false;
        c.probe_at = self.now + CONN_PROBE_INTERVAL;
        match m.msg_type {
            ConnMgrType::Probe => {
                let r = self.conn_mgr(port, ConnMgrType::ProbeReply, 0, 0);
                self.conn_mgr_out(r, links);
            }
            ConnMgrType::Ack => {
                let was = c.congested();
                c.snd_unacked = c.snd_unacked.saturating_sub(u32::from(m.acked));
                if c.block_mode {
                    c.snd_win = u32::from(m.adv_win);
                }
                if (was || c.snd_blocked) && !c.congested() {
                    c.snd_blocked = false;
                    self.conn_event(port, ConnEvent::Writable);
                }
            }
            _ => {}
        }
    }

    fn deliver_to_listener(&mut self, m: DataMsg, links: &mut impl Links) {
        let port = m.dest_port;
        // a connection request: a SYN that is no connection message and
        // carries no error (every peer we link with sends SYNs)
        if m.msg_type == DataType::Conn || m.err != ErrorCode::Ok || !m.flags.syn {
            self.stats.no_port += 1;
            self.reject_with(m, ErrorCode::NoPort, links);
            return;
        }
        let Some(q) = self.conns.listeners.get_mut(&port) else { return };
        if q.len() >= LISTEN_BACKLOG {
            self.reject_with(m, ErrorCode::Overload, links);
            return;
        }
        q.push_back(m);
        self.conn_event(port, ConnEvent::Incoming);
    }

    fn established(&mut self, port: PortId, peer: MemberId, imp: Importance, data: Bytes, links: &mut impl Links) {
        let block_mode = self.block_mode(peer.node, links);
        let Some(c) = self.conns.conns.get_mut(&port) else { return };
        c.state = State::Established;
        c.peer = peer;
        c.importance = imp;
        c.block_mode = block_mode;
        c.snd_win = first_window(block_mode);
        c.rcv_win = c.snd_win;
        c.probe_at = self.now + CONN_PROBE_INTERVAL;
        self.conn_event(port, ConnEvent::Connected { peer });
        if !data.is_empty() {
            let mut m = DataMsg::new(DataType::Conn, data);
            m.dest_port = port;
            self.conn_data(port, m, links);
        }
    }

    fn conn_data(&mut self, port: PortId, m: DataMsg, links: &mut impl Links) {
        let Some(c) = self.conns.conns.get_mut(&port) else { return };
        let cost = c.cost(m.hsize + m.payload.len());
        if c.rcv_queued + cost > CONN_RCV_LIMIT {
            // the peer overran our window
            self.stats.no_port += 1;
            self.reject_with(m, ErrorCode::Overload, links);
            return;
        }
        c.rcv_queued += cost;
        self.conn_event(port, ConnEvent::Data(m.payload));
    }

    fn closed(&mut self, port: PortId, end: ConnEnd) {
        if let Some(c) = self.conns.conns.get_mut(&port) {
            c.state = State::Closed;
        }
        self.conn_event(port, ConnEvent::Closed(end));
    }

    fn conn_event(&mut self, port: PortId, event: ConnEvent) {
        self.events.push_back(SocketEvent::Conn { port, event });
    }

    fn new_conn(&self, peer: MemberId, importance: Importance, block_mode: bool) -> Conn {
        let win = first_window(block_mode);
        Conn {
            state: State::Established,
            peer,
            importance,
            block_mode,
            snd_unacked: 0,
            snd_win: win,
            snd_blocked: false,
            rcv_unacked: 0,
            rcv_win: win,
            rcv_queued: 0,
            probe_at: self.now + CONN_PROBE_INTERVAL,
            probe_out: false,
        }
    }

    /// Whether connections with `node` count blocks: both ends advertise
    /// `TIPC_BLOCK_FLOWCTL` (our own node always does).
    fn block_mode(&self, node: NodeAddr, links: &impl Links) -> bool {
        node == self.own() || links.caps(node) & CAP_BLOCK_FLOWCTL != 0
    }

    /// A port that may become a connection socket: open as one.
    fn plain_port(&self, port: PortId) -> Result<(), SocketError> {
        if !self.ports.contains(port) {
            return Err(SocketError::NoSuchPort(port));
        }
        if !self.ports.is_conn(port) {
            return Err(SocketError::WrongSocketType);
        }
        Ok(())
    }

    /// A connection message from `port` to its peer: the 24-byte header
    /// (node from word 3), returnable, at the connection's importance.
    fn conn_msg(&self, port: PortId, data: Bytes) -> DataMsg {
        let c = self.conns.conns.get(&port);
        let importance = c.map_or(Importance::Low, |c| c.importance);
        let mut m = self.data_header(DataType::Conn, port, SendOpts { importance, returnable: true });
        if let Some(c) = c {
            m.dest_node = c.peer.node;
            m.dest_port = c.peer.port;
        }
        m.payload = data;
        m
    }

    fn conn_mgr(&self, port: PortId, t: ConnMgrType, acked: u16, adv_win: u16) -> ConnMgrMsg {
        let own = self.own();
        let peer = self.conns.conns.get(&port).map_or(MemberId { node: NodeAddr(0), port: PortId(0) }, |c| c.peer);
        ConnMgrMsg {
            msg_type: t,
            hdr: IntHdr { prev_node: own, orig_node: own, dest_node: peer.node, ..IntHdr::default() },
            err: ErrorCode::Ok,
            orig_port: port,
            dest_port: peer.port,
            acked,
            adv_win,
            payload: Bytes::new(),
        }
    }

    /// CONN_MANAGER goes at SYSTEM importance: queued behind congestion,
    /// never refused.
    fn conn_mgr_out(&mut self, m: ConnMgrMsg, links: &mut impl Links) {
        let node = m.hdr.dest_node;
        if node == self.own() {
            self.deliver_conn_mgr(m, links);
            return;
        }
        if let Ok(b) = Msg::ConnMgr(m).to_bytes() {
            self.outbox.send_keep(self.now, node, b, links);
        }
    }
}
