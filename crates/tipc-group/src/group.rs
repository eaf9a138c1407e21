//! One joined communication group, seen from one member socket.
//!
//! Follows the kernel's `group.c`: members are learnt from the name table
//! and the JOIN handshake; every member has a send window and a receive
//! window in 1 KiB blocks; broadcasts and multicasts carry a per-sender
//! sequence number that orders them against unicasts; JOINED and LEFT
//! events travel through the same per-member queue as data, so JOINED comes
//! before a member's first message and LEFT after its last.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use thiserror::Error;
use tipc_wire::{
    DataMsg, DataType, Flags, GroupProtoMsg, GroupProtoType, Importance, Instance, IntHdr, MemberId, NodeAddr, PortId,
    Scope, SeqNo, ServiceType,
};

/// Flow-control block size.
pub const FLOWCTL_BLK_SZ: usize = 1024;

/// Most JOINs a group holds from one node's sockets whose publication has
/// not arrived yet. A real member's publication follows its JOIN closely,
/// so only forged JOINs meet this limit; beyond it they are counted and
/// dropped.
pub const MAX_JOINING: usize = 1024;
/// Window of an idle (joined) member, in blocks.
pub const ADV_IDLE: u16 = 65;
/// Window of an active member, in blocks.
pub const ADV_ACTIVE: u16 = 12 * ADV_IDLE;
/// An active member is re-advertised when its window falls to this.
pub const ADV_ACTIVE_LOW: u16 = ADV_ACTIVE * 3 / 4;

/// Blocks a message of `len` bytes (header included) takes.
pub fn blocks(len: usize) -> u16 {
    (len / FLOWCTL_BLK_SZ + 1).min(usize::from(u16::MAX)) as u16
}

/// How to join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    /// Group id (service type, ≥ 64).
    pub stype: ServiceType,
    /// Our member id (instance).
    pub instance: Instance,
    /// Node or cluster.
    pub scope: Scope,
    /// Receive our own broadcasts and multicasts.
    pub loopback: bool,
    /// Deliver JOINED / LEFT events.
    pub member_events: bool,
}

/// The four ways to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// To one member's socket.
    Unicast,
    /// To one member holding an instance (round robin).
    Anycast,
    /// To every member holding an instance.
    Multicast,
    /// To every member.
    Broadcast,
}

/// Why a group send was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The destination's window (or a broadcast ack round) does not allow it
    /// yet; nothing was sent. Retry after [`GroupEvent::Unblocked`].
    #[error("would block: destination window exhausted")]
    WouldBlock,
    /// No such member (closed groups: only members can be addressed).
    #[error("no such member {0}")]
    NoSuchMember(MemberId),
    /// No member holds that instance.
    #[error("no member holds instance {0}")]
    NoInstance(u32),
    /// The message exceeds 66 000 bytes.
    #[error("message too large")]
    TooLarge,
}

/// Member states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Its JOIN arrived, its publication not yet.
    Joining,
    /// Its publication is known, its JOIN not yet.
    Published,
    /// Fully known, idle window.
    Joined,
    /// Waiting for an active slot.
    Pending,
    /// Holds the large window.
    Active,
    /// We asked for the large window back.
    Reclaiming,
    /// It gave back part of the window; messages still in flight.
    Remitted,
    /// It left; removed once the LEFT event is delivered.
    Leaving,
}

#[derive(Debug)]
enum Item {
    Data { bc: SeqNo, msg: DataMsg },
    Joined { bc: SeqNo },
    Left { bc: SeqNo },
}

impl Item {
    fn bc(&self) -> SeqNo {
        match self {
            Item::Data { bc, .. } | Item::Joined { bc } | Item::Left { bc } => *bc,
        }
    }
    fn is_bcast(&self) -> bool {
        matches!(self, Item::Data { msg, .. } if matches!(msg.msg_type, DataType::GrpBcast | DataType::GrpMcast))
    }
}

/// One member as we see it.
#[derive(Debug)]
pub struct Member {
    /// Its state.
    pub state: MemberState,
    /// Its instance.
    pub instance: Instance,
    /// Blocks we may still send it.
    pub window: u32,
    /// Blocks we granted it and it has not used.
    pub advertised: u16,
    /// Its next expected broadcast sequence number.
    bc_rcv_nxt: SeqNo,
    /// Its last acknowledgement of our broadcasts.
    pub bc_acked: SeqNo,
    queue: VecDeque<Item>,
    /// Messages delivered to the application and not yet read.
    pub unread: usize,
    /// The same socket joined again while its LEFT was still queued:
    /// (sync point, grant) of the new JOIN, and the new instance.
    rejoin: Option<(u16, u16)>,
    republished: Option<Instance>,
}

/// What the group wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupOut {
    /// To one member (its node; local if that is ours).
    To {
        /// The member.
        member: MemberId,
        /// The encoded message (data or GROUP_PROTOCOL).
        msg: DataMsgOrProto,
    },
    /// Broadcast or multicast data to the nodes of the listed members.
    Multi {
        /// Remote nodes to reach.
        nodes: BTreeSet<NodeAddr>,
        /// Whether any local member (other than us) must get it.
        local: bool,
        /// Whether the replicast path is mandatory (ack-requesting).
        replicast: bool,
        /// The message (destination node filled in per copy).
        msg: DataMsg,
    },
}

/// A message the group sends to one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataMsgOrProto {
    /// Data.
    Data(DataMsg),
    /// Protocol.
    Proto(GroupProtoMsg),
}

/// What the application gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupEvent {
    /// A member joined (before its first message).
    MemberUp {
        /// Its socket.
        member: MemberId,
        /// Its instance.
        instance: Instance,
    },
    /// A member left (after its last message).
    MemberDown {
        /// Its socket.
        member: MemberId,
        /// Its instance.
        instance: Instance,
    },
    /// A message.
    Message {
        /// Sender.
        from: MemberId,
        /// Sender's instance.
        instance: Instance,
        /// How it was sent.
        mode: Mode,
        /// The data.
        data: Bytes,
    },
    /// A window opened or an ack round completed: blocked senders may retry.
    Unblocked,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Messages from non-members, joining members or stale broadcasts, dropped.
    pub dropped: u64,
    /// Multicasts for other instances discarded (counted for flow control).
    pub other_instance: u64,
    /// Protocol messages from unknown members ignored.
    pub unknown_proto: u64,
}

/// One joined group of one socket.
#[derive(Debug)]
pub struct Group {
    spec: GroupSpec,
    own: MemberId,
    members: BTreeMap<MemberId, Member>,
    bc_snd_nxt: SeqNo,
    /// Members that still owe a GRP_ACK for our last ack-requesting broadcast.
    bc_ackers: BTreeSet<MemberId>,
    mandatory: bool,
    active: VecDeque<MemberId>,
    pending: VecDeque<MemberId>,
    rr: usize,
    out: VecDeque<GroupOut>,
    events: VecDeque<GroupEvent>,
    importance: Importance,
    stats: GroupStats,
}

impl Group {
    /// A group socket `own` joining with `spec`. The caller publishes the
    /// binding and then reports existing members with [`Group::member_published`].
    pub fn new(spec: GroupSpec, own: MemberId) -> Group {
        Group {
            spec,
            own,
            members: BTreeMap::new(),
            bc_snd_nxt: SeqNo(0),
            bc_ackers: BTreeSet::new(),
            mandatory: true,
            active: VecDeque::new(),
            pending: VecDeque::new(),
            rr: 0,
            out: VecDeque::new(),
            events: VecDeque::new(),
            importance: Importance::Low,
            stats: GroupStats::default(),
        }
    }

    /// The spec.
    pub fn spec(&self) -> &GroupSpec {
        &self.spec
    }
    /// Our socket.
    pub fn own(&self) -> MemberId {
        self.own
    }
    /// Counters.
    pub fn stats(&self) -> GroupStats {
        self.stats
    }
    /// Members (for statistics).
    pub fn members(&self) -> impl Iterator<Item = (&MemberId, &Member)> {
        self.members.iter()
    }
    /// Members other than us that have joined (events semantics).
    pub fn joined_count(&self) -> usize {
        self.members.values().filter(|m| receiving(m.state) && m.state != MemberState::Published).count()
    }
    /// Sets the importance of our data messages.
    pub fn set_importance(&mut self, i: Importance) {
        self.importance = i;
    }
    /// Next thing to send.
    pub fn poll_out(&mut self) -> Option<GroupOut> {
        self.out.pop_front()
    }
    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<GroupEvent> {
        self.events.pop_front()
    }

    fn max_active(&self) -> usize {
        ((self.members.len() + 1) / 8).clamp(16, 64)
    }

    fn target(state: MemberState) -> u16 {
        match state {
            MemberState::Active => ADV_ACTIVE,
            MemberState::Joined | MemberState::Pending => ADV_IDLE,
            _ => 0,
        }
    }

    fn proto(&self, to: MemberId, t: GroupProtoType, bc: u16, adv: u16) -> GroupOut {
        let m = GroupProtoMsg {
            msg_type: t,
            hdr: IntHdr {
                flags: Flags { d: true, ..Flags::default() },
                prev_node: self.own.node,
                orig_node: self.own.node,
                dest_node: to.node,
                ..IntHdr::default()
            },
            orig_port: self.own.port,
            dest_port: to.port,
            bc,
            adv_win: adv,
        };
        GroupOut::To { member: to, msg: DataMsgOrProto::Proto(m) }
    }

    /// Sends JOIN or ADV granting up to the member's target window.
    fn advertise(&mut self, id: MemberId, t: GroupProtoType) {
        let Some(m) = self.members.get_mut(&id) else { return };
        let target = Self::target(m.state);
        let grant = target.saturating_sub(m.advertised);
        if t == GroupProtoType::Adv && grant == 0 {
            return;
        }
        m.advertised += grant;
        let o = self.proto(id, t, self.bc_snd_nxt.0, grant);
        self.out.push_back(o);
    }

    fn new_member(state: MemberState, instance: Instance) -> Member {
        Member {
            state,
            instance,
            window: 0,
            advertised: 0,
            bc_rcv_nxt: SeqNo(0),
            bc_acked: SeqNo(0),
            queue: VecDeque::new(),
            unread: 0,
            rejoin: None,
            republished: None,
        }
    }

    /// A binding of a member (not us) appeared in the name table.
    pub fn member_published(&mut self, id: MemberId, instance: Instance) {
        if id == self.own {
            return;
        }
        match self.members.get_mut(&id) {
            None => {
                self.members.insert(id, Self::new_member(MemberState::Published, instance));
                self.advertise(id, GroupProtoType::Join);
            }
            Some(m) if m.state == MemberState::Joining => {
                m.instance = instance;
                m.state = MemberState::Joined;
                let bc = m.bc_rcv_nxt;
                m.queue.push_back(Item::Joined { bc });
                self.advertise(id, GroupProtoType::Join);
                self.deliver(id);
            }
            Some(m) if m.state == MemberState::Leaving => m.republished = Some(instance),
            Some(_) => {}
        }
    }

    /// `node` went down: JOINs from its sockets that never got a
    /// publication are forgotten (published members go through
    /// [`Group::member_withdrawn`]).
    pub fn node_down(&mut self, node: NodeAddr) {
        let gone: Vec<MemberId> = self
            .members
            .iter()
            .filter(|(id, m)| id.node == node && m.state == MemberState::Joining)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.remove(id);
        }
    }

    /// A member's binding was withdrawn; `node_down` when its node is gone
    /// (then it is LEFT now; otherwise its LEAVE carries the event).
    pub fn member_withdrawn(&mut self, id: MemberId, node_down: bool) {
        let Some(m) = self.members.get_mut(&id) else { return };
        match m.state {
            MemberState::Published | MemberState::Joining => {
                self.remove(id);
            }
            MemberState::Leaving if !node_down => {}
            _ if node_down => {
                m.state = MemberState::Leaving;
                self.bc_ackers.remove(&id);
                // queue LEFT behind what already arrived from it
                let bc = m.queue.back().map_or(m.bc_rcv_nxt, Item::bc).max(m.bc_rcv_nxt);
                m.queue.push_back(Item::Left { bc });
                // nothing more will come: let the queue drain whatever is in it
                m.bc_rcv_nxt = bc;
                self.deliver(id);
            }
            _ => {}
        }
    }

    fn remove(&mut self, id: MemberId) {
        let old = self.members.remove(&id);
        self.bc_ackers.remove(&id);
        if let Some(old) = old {
            // it joined again meanwhile: start over with what arrived
            if let Some(inst) = old.republished {
                self.member_published(id, inst);
            }
            if let Some((bc, grant)) = old.rejoin {
                let p = GroupProtoMsg {
                    msg_type: GroupProtoType::Join,
                    hdr: IntHdr::default(),
                    orig_port: id.port,
                    dest_port: self.own.port,
                    bc,
                    adv_win: grant,
                };
                self.handle_proto(id, &p);
            }
        }
        self.active.retain(|x| *x != id);
        self.pending.retain(|x| *x != id);
        self.events.push_back(GroupEvent::Unblocked);
    }

    /// A GROUP_PROTOCOL message from `from`.
    pub fn handle_proto(&mut self, from: MemberId, p: &GroupProtoMsg) {
        match p.msg_type {
            GroupProtoType::Join => {
                if let Some(m) = self.members.get_mut(&from)
                    && m.state == MemberState::Leaving
                {
                    m.rejoin = Some((p.bc, p.adv_win));
                    return;
                }
                if !self.members.contains_key(&from) {
                    // a JOIN ahead of the member's publication: hold it, but
                    // only so many per node (forged JOINs must not grow
                    // memory, nor crowd out other nodes' members)
                    let joining = self
                        .members
                        .iter()
                        .filter(|(id, m)| id.node == from.node && m.state == MemberState::Joining)
                        .count();
                    if joining >= MAX_JOINING {
                        self.stats.unknown_proto += 1;
                        return;
                    }
                }
                let m = self.members.entry(from).or_insert_with(|| Self::new_member(MemberState::Joining, Instance(0)));
                m.bc_rcv_nxt = SeqNo(p.bc);
                m.window = m.window.saturating_add(u32::from(p.adv_win));
                if m.state == MemberState::Published {
                    m.state = MemberState::Joined;
                    m.queue.push_back(Item::Joined { bc: SeqNo(p.bc) });
                    self.advertise(from, GroupProtoType::Adv);
                    self.deliver(from);
                }
                self.events.push_back(GroupEvent::Unblocked);
            }
            GroupProtoType::Leave => {
                let Some(m) = self.members.get_mut(&from) else {
                    self.stats.unknown_proto += 1;
                    return;
                };
                if matches!(m.state, MemberState::Published | MemberState::Joining) {
                    // never seen as joined: no LEFT either
                    self.remove(from);
                    return;
                }
                m.state = MemberState::Leaving;
                m.queue.push_back(Item::Left { bc: SeqNo(p.bc) });
                self.bc_ackers.remove(&from);
                self.deliver(from);
                self.events.push_back(GroupEvent::Unblocked);
            }
            GroupProtoType::Adv => {
                let Some(m) = self.members.get_mut(&from) else {
                    self.stats.unknown_proto += 1;
                    return;
                };
                m.window = m.window.saturating_add(u32::from(p.adv_win));
                self.events.push_back(GroupEvent::Unblocked);
            }
            GroupProtoType::Ack => {
                let Some(m) = self.members.get_mut(&from) else {
                    self.stats.unknown_proto += 1;
                    return;
                };
                // duplicated or reordered ACKs must not count twice (cf. CVE-2026-31662)
                let acked = SeqNo(p.bc);
                if acked.gt(m.bc_acked) && acked.le(self.bc_snd_nxt) {
                    m.bc_acked = acked;
                    if acked == self.bc_snd_nxt && self.bc_ackers.remove(&from) && self.bc_ackers.is_empty() {
                        self.events.push_back(GroupEvent::Unblocked);
                    }
                }
            }
            GroupProtoType::Reclaim => {
                let Some(m) = self.members.get_mut(&from) else { return };
                if m.state != MemberState::Leaving {
                    // remit what is left, and restart from the idle window:
                    // the reclaimer counts ADV_IDLE fresh blocks plus what
                    // is still in flight, so keeping less here (say, the
                    // nothing left of a spent window) would block us for good
                    let remaining = m.window.min(u32::from(u16::MAX)) as u16;
                    m.window = u32::from(ADV_IDLE);
                    let o = self.proto(from, GroupProtoType::Remit, remaining, 0);
                    self.out.push_back(o);
                }
            }
            GroupProtoType::Remit => {
                let Some(m) = self.members.get_mut(&from) else { return };
                if m.state != MemberState::Reclaiming {
                    return;
                }
                let remitted = p.bc;
                if m.advertised > remitted {
                    m.state = MemberState::Remitted;
                    m.advertised = ADV_IDLE + (m.advertised - remitted);
                } else {
                    m.state = MemberState::Joined;
                    m.advertised = ADV_IDLE;
                    self.active.retain(|x| *x != from);
                    self.promote_pending();
                }
            }
            GroupProtoType::Unknown(_) => self.stats.unknown_proto += 1,
        }
    }

    fn promote_pending(&mut self) {
        if self.active.len() >= self.max_active() {
            return;
        }
        if let Some(p) = self.pending.pop_front()
            && let Some(m) = self.members.get_mut(&p)
        {
            m.state = MemberState::Active;
            self.active.push_back(p);
            self.advertise(p, GroupProtoType::Adv);
        }
    }

    /// A group data message from member `from`.
    pub fn handle_data(&mut self, from: MemberId, msg: DataMsg) {
        if from == self.own {
            // our own broadcast or multicast, looped back
            if self.spec.loopback {
                let mode = mode_of(&msg, true);
                if mode != Mode::Multicast || msg.name_inst == self.spec.instance {
                    self.events.push_back(GroupEvent::Message {
                        from,
                        instance: self.spec.instance,
                        mode,
                        data: msg.payload,
                    });
                }
            }
            return;
        }
        let Some(m) = self.members.get_mut(&from) else {
            self.stats.dropped += 1;
            return;
        };
        if matches!(m.state, MemberState::Joining | MemberState::Published) {
            self.stats.dropped += 1;
            return;
        }
        let bc = SeqNo(msg.grp_bc_seqno());
        let item = Item::Data { bc, msg };
        if item.is_bcast() {
            if bc.lt(m.bc_rcv_nxt) {
                self.stats.dropped += 1;
                return;
            }
            let at = m.queue.iter().position(|q| q.bc().gt(bc)).unwrap_or(m.queue.len());
            m.queue.insert(at, item);
        } else {
            m.queue.push_back(item);
        }
        self.deliver(from);
    }

    fn deliver(&mut self, id: MemberId) {
        let own_inst = self.spec.instance;
        let events = self.spec.member_events;
        let mut ack = None;
        let mut left = false;
        let mut discard_blocks = 0u16;
        {
            let Some(m) = self.members.get_mut(&id) else { return };
            while let Some(head) = m.queue.front() {
                if head.bc().gt(m.bc_rcv_nxt) {
                    break;
                }
                let Some(item) = m.queue.pop_front() else { break };
                match item {
                    Item::Data { msg, .. } => {
                        let bcast = matches!(msg.msg_type, DataType::GrpBcast | DataType::GrpMcast);
                        if bcast {
                            m.bc_rcv_nxt = m.bc_rcv_nxt.next();
                            if msg.grp_ack_req() {
                                ack = Some(m.bc_rcv_nxt);
                            }
                        }
                        let mode = mode_of(&msg, false);
                        if mode == Mode::Multicast && msg.name_inst != own_inst {
                            self.stats.other_instance += 1;
                            discard_blocks += blocks(msg.buffer_len());
                            continue;
                        }
                        m.unread += 1;
                        self.events.push_back(GroupEvent::Message {
                            from: id,
                            instance: m.instance,
                            mode,
                            data: msg.payload,
                        });
                    }
                    Item::Joined { .. } => {
                        if events {
                            self.events.push_back(GroupEvent::MemberUp { member: id, instance: m.instance });
                        }
                    }
                    Item::Left { .. } => {
                        if events {
                            self.events.push_back(GroupEvent::MemberDown { member: id, instance: m.instance });
                        }
                        left = true;
                        break;
                    }
                }
            }
        }
        if let Some(a) = ack {
            let o = self.proto(id, GroupProtoType::Ack, a.0, 0);
            self.out.push_back(o);
        }
        if discard_blocks > 0 {
            self.consume(id, discard_blocks);
        }
        if left {
            self.remove(id);
        }
    }

    /// The application read a message of `len` data bytes from `from`:
    /// its receive window may be re-advertised.
    pub fn consumed(&mut self, from: MemberId, len: usize) {
        if let Some(m) = self.members.get_mut(&from) {
            m.unread = m.unread.saturating_sub(1);
        }
        self.consume(from, blocks(len + tipc_wire::GROUP_H_SIZE));
    }

    fn consume(&mut self, from: MemberId, blks: u16) {
        let max_active = self.max_active();
        let Some(m) = self.members.get_mut(&from) else { return };
        m.advertised = m.advertised.saturating_sub(blks);
        match m.state {
            MemberState::Joined => {
                if self.active.len() < max_active {
                    m.state = MemberState::Active;
                    self.active.push_back(from);
                    self.advertise(from, GroupProtoType::Adv);
                } else {
                    m.state = MemberState::Pending;
                    self.pending.push_back(from);
                }
                if self.active.len() >= max_active * 3 / 4
                    && let Some(&old) = self.active.front()
                    && old != from
                    && let Some(o) = self.members.get_mut(&old)
                    && o.state == MemberState::Active
                {
                    o.state = MemberState::Reclaiming;
                    let p = self.proto(old, GroupProtoType::Reclaim, 0, 0);
                    self.out.push_back(p);
                }
            }
            MemberState::Active => {
                self.active.retain(|x| *x != from);
                self.active.push_back(from);
                if m.advertised <= ADV_ACTIVE_LOW {
                    self.advertise(from, GroupProtoType::Adv);
                }
            }
            MemberState::Remitted if m.advertised <= ADV_IDLE => {
                m.state = MemberState::Joined;
                self.active.retain(|x| *x != from);
                self.advertise(from, GroupProtoType::Adv);
                self.promote_pending();
            }
            MemberState::Pending if m.advertised < ADV_IDLE / 2 => {
                self.advertise(from, GroupProtoType::Adv);
            }
            _ => {}
        }
    }

    fn data(&self, t: DataType, to: Option<MemberId>, inst: Instance, data: Bytes, bc: SeqNo, ack: bool) -> DataMsg {
        let mut d = DataMsg::new(t, data);
        d.importance = self.importance;
        d.flags.d = true;
        d.scope = if self.spec.scope == Scope::Node { Scope::Node } else { Scope::Cluster };
        d.prev_node = self.own.node;
        d.orig_node = self.own.node;
        d.orig_port = self.own.port;
        d.dest_node = to.map_or(NodeAddr(0), |m| m.node);
        d.dest_port = to.map_or(PortId(0), |m| m.port);
        d.name_type = self.spec.stype;
        d.name_inst = inst;
        d.set_grp(bc.0, ack);
        d
    }

    /// When a send is blocked on `id`, push our own window to it first so
    /// that two members blocked on each other both move.
    fn unblock_peer(&mut self, id: MemberId) {
        let Some(m) = self.members.get(&id) else { return };
        if m.advertised < Self::target(m.state) {
            self.advertise(id, GroupProtoType::Adv);
        }
    }

    fn check_len(data: &Bytes) -> Result<u16, GroupError> {
        if data.len() > tipc_wire::MAX_USER_MSG_SIZE {
            return Err(GroupError::TooLarge);
        }
        Ok(blocks(data.len() + tipc_wire::GROUP_H_SIZE))
    }

    /// Unicast to a member's socket.
    pub fn send_unicast(&mut self, to: MemberId, data: Bytes) -> Result<(), GroupError> {
        let b = Self::check_len(&data)?;
        let m = self.members.get_mut(&to).ok_or(GroupError::NoSuchMember(to))?;
        if !sendable(m.state) {
            return Err(GroupError::NoSuchMember(to));
        }
        if m.window < u32::from(b) {
            self.unblock_peer(to);
            return Err(GroupError::WouldBlock);
        }
        m.window -= u32::from(b);
        let inst = Instance(0);
        let d = self.data(DataType::GrpUcast, Some(to), inst, data, self.bc_snd_nxt, false);
        self.out.push_back(GroupOut::To { member: to, msg: DataMsgOrProto::Data(d) });
        self.mandatory = true;
        Ok(())
    }

    /// Anycast to one member holding `inst` (round robin, skipping members
    /// whose window is exhausted).
    pub fn send_anycast(&mut self, inst: Instance, data: Bytes) -> Result<MemberId, GroupError> {
        let b = Self::check_len(&data)?;
        let cands: Vec<MemberId> =
            self.members.iter().filter(|(_, m)| m.instance == inst && sendable(m.state)).map(|(id, _)| *id).collect();
        if cands.is_empty() {
            return Err(GroupError::NoInstance(inst.0));
        }
        for k in 0..cands.len() {
            let id = cands[(self.rr + k) % cands.len()];
            if self.members.get(&id).is_some_and(|m| m.window >= u32::from(b)) {
                self.rr = self.rr.wrapping_add(k + 1);
                self.send_unicast(id, data)?;
                return Ok(id);
            }
        }
        for id in cands {
            self.unblock_peer(id);
        }
        Err(GroupError::WouldBlock)
    }

    fn receivers(&self) -> impl Iterator<Item = (&MemberId, &Member)> {
        self.members.iter().filter(|(_, m)| receiving(m.state))
    }

    fn multi(&mut self, t: DataType, inst: Instance, data: Bytes) -> Result<(), GroupError> {
        let b = Self::check_len(&data)?;
        if !self.bc_ackers.is_empty() {
            return Err(GroupError::WouldBlock);
        }
        let blocked: Vec<MemberId> =
            self.receivers().filter(|(_, m)| m.window < u32::from(b)).map(|(id, _)| *id).collect();
        if !blocked.is_empty() {
            for id in blocked {
                self.unblock_peer(id);
            }
            return Err(GroupError::WouldBlock);
        }
        let ack = self.mandatory;
        let mut nodes = BTreeSet::new();
        let mut local = false;
        let mut owe = BTreeSet::new();
        for (id, m) in self.members.iter_mut().filter(|(_, m)| receiving(m.state)) {
            m.window -= u32::from(b);
            owe.insert(*id);
            if id.node == self.own.node {
                local = true;
            } else {
                nodes.insert(id.node);
            }
        }
        let bc = self.bc_snd_nxt;
        self.bc_snd_nxt = bc.next();
        if ack {
            self.bc_ackers = owe;
        }
        self.mandatory = false;
        let msg = self.data(t, None, inst, data, bc, ack);
        if self.spec.loopback {
            let mode = if t == DataType::GrpBcast { Mode::Broadcast } else { Mode::Multicast };
            if mode == Mode::Broadcast || inst == self.spec.instance {
                self.events.push_back(GroupEvent::Message {
                    from: self.own,
                    instance: self.spec.instance,
                    mode,
                    data: msg.payload.clone(),
                });
            }
        }
        self.out.push_back(GroupOut::Multi { nodes, local, replicast: ack, msg });
        Ok(())
    }

    /// Broadcast to every member.
    pub fn broadcast(&mut self, data: Bytes) -> Result<(), GroupError> {
        self.multi(DataType::GrpBcast, Instance(0), data)
    }

    /// Multicast to every member holding `inst` (a unicast when only one does).
    pub fn send_multicast(&mut self, inst: Instance, data: Bytes) -> Result<(), GroupError> {
        let holders: Vec<MemberId> =
            self.members.iter().filter(|(_, m)| m.instance == inst && sendable(m.state)).map(|(id, _)| *id).collect();
        match holders.len() {
            0 if !(self.spec.loopback && inst == self.spec.instance) => Err(GroupError::NoInstance(inst.0)),
            1 if !(self.spec.loopback && inst == self.spec.instance) => self.send_unicast(holders[0], data),
            _ => self.multi(DataType::GrpMcast, inst, data),
        }
    }

    /// Leaves: LEAVE to every member (the caller then withdraws the binding).
    pub fn leave(&mut self) {
        let ids: Vec<MemberId> = self.members.keys().copied().collect();
        for id in ids {
            let o = self.proto(id, GroupProtoType::Leave, self.bc_snd_nxt.0, 0);
            self.out.push_back(o);
        }
    }

    /// Whether a send of `len` bytes in `mode` would block now (for poll-style
    /// writability; anycast/unicast need the destination).
    pub fn is_open(&self) -> bool {
        self.bc_ackers.is_empty()
    }
}

fn receiving(s: MemberState) -> bool {
    !matches!(s, MemberState::Joining | MemberState::Leaving)
}

fn sendable(s: MemberState) -> bool {
    !matches!(s, MemberState::Joining | MemberState::Leaving)
}

fn mode_of(msg: &DataMsg, _own: bool) -> Mode {
    match msg.msg_type {
        DataType::GrpBcast => Mode::Broadcast,
        DataType::GrpMcast => Mode::Multicast,
        _ => Mode::Unicast,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tipc_wire::PortId;

    fn member(node: u32, port: u32) -> MemberId {
        MemberId { node: NodeAddr(node), port: PortId(port) }
    }

    /// `me` joined as instance 1 of group 100.
    fn joined(me: MemberId, member_events: bool) -> Group {
        let spec = GroupSpec {
            stype: ServiceType(100),
            instance: Instance(1),
            scope: Scope::Cluster,
            loopback: false,
            member_events,
        };
        Group::new(spec, me)
    }

    /// A GROUP_PROTOCOL message of `t` from member `from` to `to`.
    fn proto(t: GroupProtoType, from: MemberId, to: MemberId, bc: u16, adv_win: u16) -> GroupProtoMsg {
        let hdr = IntHdr { orig_node: from.node, ..IntHdr::default() };
        GroupProtoMsg { msg_type: t, hdr, orig_port: from.port, dest_port: to.port, bc, adv_win }
    }

    /// The windows are the kernel's, so that both sides agree on them
    /// (net/tipc/group.c: ADV_UNIT = 66 060 B / 1 KiB + 1 blocks; idle
    /// members get one unit, active ones twelve, re-advertised once they
    /// fall to three quarters).
    #[test]
    fn flow_control_windows_are_the_kernels() {
        assert_eq!(ADV_IDLE, 65);
        assert_eq!(ADV_ACTIVE, 780);
        assert_eq!(ADV_ACTIVE_LOW, 585);
        assert_eq!(blocks(0), 1);
        assert_eq!(blocks(FLOWCTL_BLK_SZ - 1), 1);
        assert_eq!(blocks(FLOWCTL_BLK_SZ), 2);
        assert_eq!(blocks(66_060), 65);
        assert_eq!(blocks(usize::MAX), u16::MAX);
    }

    /// A member is announced once: its JOIN and its publication make it
    /// JOINED; the same publication seen again (a bulk re-sent after a
    /// link came back) announces nothing more.
    #[test]
    fn a_publication_seen_twice_announces_the_member_once() {
        let (me, other) = (member(1, 10), member(2, 20));
        let mut g = joined(me, true);
        let join = proto(GroupProtoType::Join, other, me, 0, ADV_IDLE);
        // the JOIN first, then the publication, then the publication again
        g.handle_proto(other, &join);
        g.member_published(other, Instance(2));
        g.member_published(other, Instance(2));
        let ups = std::iter::from_fn(|| g.poll_event())
            .filter(|e| matches!(e, GroupEvent::MemberUp { member, .. } if *member == other))
            .count();
        assert_eq!(ups, 1, "one JOINED event");
        assert_eq!(g.joined_count(), 1);
    }

    /// A sender that spent its whole window when the receiver reclaims it
    /// must restart from the idle window, as the kernel does: the receiver
    /// counts ADV_IDLE fresh blocks and will not advertise again.
    #[test]
    fn reclaim_of_a_spent_window_leaves_the_idle_window() {
        let (me, rcv) = (member(1, 10), member(2, 20));
        let mut g = joined(me, false);
        g.member_published(rcv, Instance(2));
        let msg = |t, bc, adv_win| proto(t, rcv, me, bc, adv_win);
        g.handle_proto(rcv, &msg(GroupProtoType::Join, 0, ADV_IDLE));
        // spend the window
        while g.send_unicast(rcv, Bytes::from(vec![0u8; 1000])).is_ok() {}
        assert_eq!(g.members().find(|(id, _)| **id == rcv).map(|(_, m)| m.window), Some(1));
        while g.poll_out().is_some() {}
        g.handle_proto(rcv, &msg(GroupProtoType::Reclaim, 0, 0));
        let remit = std::iter::from_fn(|| g.poll_out()).find_map(|o| match o {
            GroupOut::To { msg: DataMsgOrProto::Proto(p), .. } if p.msg_type == GroupProtoType::Remit => Some(p.bc),
            _ => None,
        });
        assert_eq!(remit, Some(1), "REMIT carries what was left");
        let w = g.members().find(|(id, _)| **id == rcv).map(|(_, m)| m.window);
        assert_eq!(w, Some(u32::from(ADV_IDLE)), "and the sender goes on with the idle window");
        assert!(g.send_unicast(rcv, Bytes::from(vec![0u8; 1000])).is_ok());
    }
}
