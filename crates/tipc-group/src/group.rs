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
    /// A broadcast with no other member to reach (the kernel's
    /// `tipc_send_group_bcast`: EHOSTUNREACH when the group has no
    /// destination).
    #[error("no other member to reach")]
    NoMembers,
}

/// Member states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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

impl MemberState {
    /// Whether a member in this state counts as joined for the
    /// application: not [`MemberState::Joining`], [`MemberState::Published`]
    /// or [`MemberState::Leaving`].
    pub fn is_joined(self) -> bool {
        !matches!(self, MemberState::Joining | MemberState::Published | MemberState::Leaving)
    }
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
        self.joined_members().count()
    }
    /// Members other than us that have joined, with their instances: those
    /// whose JOIN and publication both arrived and who have not left.
    pub fn joined_members(&self) -> impl Iterator<Item = (MemberId, Instance)> + '_ {
        self.members.iter().filter(|(_, m)| m.state.is_joined()).map(|(id, m)| (*id, m.instance))
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
                        tracing::debug!(group = self.spec.stype.0, member = %id, instance = m.instance.0, "member joined");
                        if events {
                            self.events.push_back(GroupEvent::MemberUp { member: id, instance: m.instance });
                        }
                    }
                    Item::Left { .. } => {
                        tracing::debug!(group = self.spec.stype.0, member = %id, instance = m.instance.0, "member left");
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
                // the most recent sender goes last (it usually is already)
                if self.active.back() != Some(&from) {
                    self.active.retain(|x| *x != from);
                    self.active.push_back(from);
                }
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
        let own = self.own.node;
        let mut local = false;
        for (_, m) in self.members.iter_mut().filter(|(_, m)| receiving(m.state)) {
            m.window -= u32::from(b);
        }
        // in member order, so the nodes come sorted (the set is built in bulk)
        let nodes: BTreeSet<NodeAddr> = self
            .receivers()
            .map(|(id, _)| id.node)
            .filter(|&n| {
                local |= n == own;
                n != own
            })
            .collect();
        let bc = self.bc_snd_nxt;
        self.bc_snd_nxt = bc.next();
        if ack {
            self.bc_ackers = self.receivers().map(|(id, _)| *id).collect();
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

    /// Broadcast to every member; refused with [`GroupError::NoMembers`]
    /// when there is none.
    pub fn broadcast(&mut self, data: Bytes) -> Result<(), GroupError> {
        if self.members.is_empty() {
            return Err(GroupError::NoMembers);
        }
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

    /// Member `other` published and joined with its next broadcast `bc`.
    fn with_member(g: &mut Group, me: MemberId, other: MemberId, bc: u16) {
        g.member_published(other, Instance(2));
        g.handle_proto(other, &proto(GroupProtoType::Join, other, me, bc, ADV_IDLE));
    }

    /// A group data message of type `t` from `from`, carrying broadcast
    /// sequence number `bc` and `body`.
    fn data_from(t: DataType, from: MemberId, bc: u16, body: &[u8]) -> DataMsg {
        let mut d = DataMsg::new(t, Bytes::copy_from_slice(body));
        d.orig_node = from.node;
        d.orig_port = from.port;
        d.name_inst = Instance(1);
        d.set_grp(bc, false);
        d
    }

    /// The bodies of the messages delivered so far, in delivery order.
    fn delivered(g: &mut Group) -> Vec<Vec<u8>> {
        delivered_with_mode(g).into_iter().map(|(_, d)| d).collect()
    }

    fn delivered_with_mode(g: &mut Group) -> Vec<(Mode, Vec<u8>)> {
        std::iter::from_fn(|| g.poll_event())
            .filter_map(|e| match e {
                GroupEvent::Message { mode, data, .. } => Some((mode, data.to_vec())),
                _ => None,
            })
            .collect()
    }

    /// Broadcasts are sorted in by their sequence number, a unicast goes
    /// behind everything that arrived before it from its sender, and a
    /// broadcast seen before is dropped (net/tipc/group.c,
    /// tipc_group_sort_msg and tipc_group_filter_msg).
    #[test]
    fn broadcasts_are_sorted_in_and_unicasts_queued_behind() {
        let (me, other) = (member(1, 10), member(2, 20));
        let mut g = joined(me, false);
        with_member(&mut g, me, other, 1);
        delivered(&mut g);
        // broadcast 3 overtook 1 and 2; a unicast sent after 1 comes next
        g.handle_data(other, data_from(DataType::GrpBcast, other, 3, b"b3"));
        g.handle_data(other, data_from(DataType::GrpUcast, other, 2, b"u2"));
        assert!(delivered(&mut g).is_empty(), "nothing before broadcast 1");
        g.handle_data(other, data_from(DataType::GrpBcast, other, 1, b"b1"));
        g.handle_data(other, data_from(DataType::GrpBcast, other, 2, b"b2"));
        let order = delivered_with_mode(&mut g);
        let (bc, uc) = (Mode::Broadcast, Mode::Unicast);
        assert_eq!(order, [(bc, b"b1".to_vec()), (bc, b"b2".to_vec()), (bc, b"b3".to_vec()), (uc, b"u2".to_vec())]);
        // broadcast 2 again: stale, dropped and counted
        g.handle_data(other, data_from(DataType::GrpBcast, other, 2, b"b2"));
        assert!(delivered(&mut g).is_empty());
        assert_eq!(g.stats().dropped, 1);
    }

    /// What is dropped or ignored is counted where `stats` shows it.
    #[test]
    fn dropped_and_ignored_messages_are_counted() {
        let (me, other, stranger) = (member(1, 10), member(2, 20), member(3, 30));
        let mut g = joined(me, false);
        with_member(&mut g, me, other, 1);
        g.handle_data(stranger, data_from(DataType::GrpUcast, stranger, 1, b"x"));
        let mut mc = data_from(DataType::GrpMcast, other, 1, b"m");
        mc.name_inst = Instance(7);
        g.handle_data(other, mc);
        g.handle_proto(stranger, &proto(GroupProtoType::Adv, stranger, me, 0, 10));
        let st = g.stats();
        assert_eq!((st.dropped, st.other_instance, st.unknown_proto), (1, 1, 1));
    }

    /// Only members with both a JOIN and a publication count as joined.
    #[test]
    fn joined_count_counts_members_with_join_and_publication() {
        let me = member(1, 10);
        let mut g = joined(me, false);
        let (published, joining) = (member(2, 20), member(3, 30));
        g.member_published(published, Instance(2));
        g.handle_proto(joining, &proto(GroupProtoType::Join, joining, me, 1, ADV_IDLE));
        assert_eq!(g.joined_count(), 0, "half-known members are not joined");
        with_member(&mut g, me, member(4, 40), 1);
        with_member(&mut g, me, member(5, 50), 1);
        assert_eq!(g.joined_count(), 2);
    }

    /// Data messages go with the importance set on the group.
    #[test]
    fn data_carries_the_groups_importance() {
        let (me, other) = (member(1, 10), member(2, 20));
        let mut g = joined(me, false);
        with_member(&mut g, me, other, 1);
        g.set_importance(Importance::Critical);
        assert!(g.send_unicast(other, Bytes::from_static(b"x")).is_ok());
        let imp = std::iter::from_fn(|| g.poll_out()).find_map(|o| match o {
            GroupOut::To { msg: DataMsgOrProto::Data(d), .. } => Some(d.importance),
            _ => None,
        });
        assert_eq!(imp, Some(Importance::Critical));
    }

    /// At most max(16, min(64, (members + 1) / 8)) members send to us with
    /// the active window at once; the others wait in PENDING
    /// (net/tipc/group.c, tipc_group_rcvbuf_limit).
    #[test]
    fn active_senders_are_capped_by_group_size() {
        for (others, active) in [(20usize, 16usize), (199, 25), (600, 64)] {
            let me = member(1, 10);
            let mut g = joined(me, false);
            let ids: Vec<MemberId> = (0..others).map(|i| member(2 + i as u32, 20)).collect();
            for &id in &ids {
                with_member(&mut g, me, id, 1);
            }
            for &id in &ids {
                g.handle_data(id, data_from(DataType::GrpUcast, id, 1, b"x"));
                g.consumed(id, 1);
            }
            let pending = g.members().filter(|(_, m)| m.state == MemberState::Pending).count();
            assert_eq!(pending, others - active, "{others} members");
        }
    }

    /// GROUP_PROTOCOL messages carry the header the kernel gives them
    /// (net/tipc/group.c, tipc_group_proto_xmit): droppable, our node as previous and originating node, the member's
    /// node as destination, both ports (capture 03, JOIN/LEAVE/ADV).
    #[test]
    fn group_protocol_headers_are_the_kernels() {
        let (me, other) = (member(1, 10), member(2, 20));
        let mut g = joined(me, false);
        // its JOIN first: our JOIN then grants the idle window at once
        g.handle_proto(other, &proto(GroupProtoType::Join, other, me, 1, ADV_IDLE));
        g.member_published(other, Instance(2));
        let join = std::iter::from_fn(|| g.poll_out())
            .find_map(|o| match o {
                GroupOut::To { member, msg: DataMsgOrProto::Proto(p) } if member == other => Some(p),
                _ => None,
            })
            .expect("a JOIN to the new member");
        assert_eq!(join.msg_type, GroupProtoType::Join);
        assert!(join.hdr.flags.d, "dest droppable");
        assert_eq!((join.hdr.prev_node, join.hdr.orig_node, join.hdr.dest_node), (me.node, me.node, other.node));
        assert_eq!((join.orig_port, join.dest_port), (me.port, other.port));
        assert_eq!(join.adv_win, ADV_IDLE);
    }

    /// The protocol messages `g` has queued for `to`, by type.
    fn protos_to(g: &mut Group, to: MemberId) -> Vec<(GroupProtoType, u16, u16)> {
        all_protos(g).into_iter().filter(|p| p.0 == to).map(|(_, t, bc, win)| (t, bc, win)).collect()
    }

    fn member_events(g: &mut Group) -> Vec<(bool, MemberId)> {
        std::iter::from_fn(|| g.poll_event())
            .filter_map(|e| match e {
                GroupEvent::MemberUp { member, .. } => Some((true, member)),
                GroupEvent::MemberDown { member, .. } => Some((false, member)),
                _ => None,
            })
            .collect()
    }

    fn state_of(g: &Group, id: MemberId) -> Option<MemberState> {
        g.members().find(|(m, _)| **m == id).map(|(_, m)| m.state)
    }

    /// A member that publishes again while its LEFT still waits for its
    /// last broadcast is taken up anew once LEFT is delivered; a second
    /// publication of a member that stays is nothing new.
    #[test]
    fn a_member_republished_while_leaving_comes_back_after_left() {
        let (me, other) = (member(1, 10), member(2, 20));
        let mut g = joined(me, true);
        with_member(&mut g, me, other, 1);
        g.member_published(other, Instance(2));
        assert_eq!(member_events(&mut g), [(true, other)]);
        // LEAVE says broadcast 1 is still on its way
        g.handle_proto(other, &proto(GroupProtoType::Leave, other, me, 2, 0));
        assert_eq!(state_of(&g, other), Some(MemberState::Leaving));
        g.member_published(other, Instance(3));
        protos_to(&mut g, other);
        g.handle_data(other, data_from(DataType::GrpBcast, other, 1, b"last"));
        let events: Vec<GroupEvent> = std::iter::from_fn(|| g.poll_event())
            .filter(|e| matches!(e, GroupEvent::Message { .. } | GroupEvent::MemberDown { .. }))
            .collect();
        assert!(
            matches!(&events[..], [GroupEvent::Message { data, .. }, GroupEvent::MemberDown { member, .. }, ..]
                if &data[..] == b"last" && *member == other),
            "the last broadcast, then LEFT: {events:?}"
        );
        assert_eq!(state_of(&g, other), Some(MemberState::Published), "known again, as published");
        let join = protos_to(&mut g, other);
        assert_eq!(join.first().map(|p| p.0), Some(GroupProtoType::Join));

        // a member republished while joined does not come back after LEFT
        let third = member(3, 30);
        with_member(&mut g, me, third, 1);
        g.member_published(third, Instance(2));
        g.handle_proto(third, &proto(GroupProtoType::Leave, third, me, 1, 0));
        assert_eq!(state_of(&g, third), None);
    }

    /// A node going down forgets the JOINs of its sockets that never
    /// published; other nodes' JOINs and its published members stay.
    #[test]
    fn node_down_forgets_its_unpublished_joins_only() {
        let me = member(1, 10);
        let mut g = joined(me, false);
        let (j5, p5, j6) = (member(5, 50), member(5, 51), member(6, 60));
        g.handle_proto(j5, &proto(GroupProtoType::Join, j5, me, 1, ADV_IDLE));
        g.handle_proto(j6, &proto(GroupProtoType::Join, j6, me, 1, ADV_IDLE));
        g.member_published(p5, Instance(2));
        g.node_down(NodeAddr(5));
        assert_eq!(state_of(&g, j5), None);
        assert_eq!(state_of(&g, j6), Some(MemberState::Joining));
        assert_eq!(state_of(&g, p5), Some(MemberState::Published));
    }

    /// A withdrawal alone does not make a joined member LEFT (its LEAVE
    /// does, in order); a node going down does, also for a member whose
    /// LEFT waited for broadcasts that will never come.
    #[test]
    fn withdrawal_and_node_down_make_members_left_when_they_should() {
        let (me, a, b) = (member(1, 10), member(2, 20), member(3, 30));
        let mut g = joined(me, true);
        with_member(&mut g, me, a, 1);
        with_member(&mut g, me, b, 1);
        member_events(&mut g);
        g.member_withdrawn(a, false);
        assert!(member_events(&mut g).is_empty(), "LEFT waits for the LEAVE");
        assert_eq!(state_of(&g, a), Some(MemberState::Joined));
        g.handle_proto(a, &proto(GroupProtoType::Leave, a, me, 1, 0));
        assert_eq!(member_events(&mut g), [(false, a)]);

        // b's LEAVE waits for broadcast 1, then its node dies
        g.handle_proto(b, &proto(GroupProtoType::Leave, b, me, 2, 0));
        assert!(member_events(&mut g).is_empty());
        g.member_withdrawn(b, true);
        assert_eq!(member_events(&mut g), [(false, b)]);
        assert_eq!(state_of(&g, b), None);
    }

    /// A member that leaves is no longer among the active or pending senders.
    #[test]
    fn a_leaving_member_leaves_the_active_and_pending_lists() {
        let me = member(1, 10);
        let mut g = joined(me, false);
        let ids: Vec<MemberId> = (0..20).map(|i| member(2 + i, 20)).collect();
        for &id in &ids {
            with_member(&mut g, me, id, 1);
            g.handle_data(id, data_from(DataType::GrpUcast, id, 1, b"x"));
            g.consumed(id, 1);
        }
        let (act, pend) = (ids[0], ids[19]);
        assert!(g.active.contains(&act) && g.pending.contains(&pend));
        for id in [act, pend] {
            g.handle_proto(id, &proto(GroupProtoType::Leave, id, me, 1, 0));
        }
        assert!(!g.active.contains(&act) && !g.pending.contains(&pend));
        assert_eq!(g.active.len() + g.pending.len(), 18, "the others stay");
    }

    /// JOINs ahead of a publication are held up to MAX_JOINING per node;
    /// more are counted and dropped, other nodes are not crowded out, and
    /// a member already published is always taken.
    #[test]
    fn joins_ahead_of_publication_are_capped_per_node() {
        let me = member(1, 10);
        let mut g = joined(me, false);
        let published = member(2, 99_999);
        g.member_published(published, Instance(2));
        for port in 0..MAX_JOINING as u32 {
            let j = member(2, 100 + port);
            g.handle_proto(j, &proto(GroupProtoType::Join, j, me, 1, ADV_IDLE));
        }
        assert_eq!(g.stats().unknown_proto, 0);
        let extra = member(2, 50);
        g.handle_proto(extra, &proto(GroupProtoType::Join, extra, me, 1, ADV_IDLE));
        assert_eq!(g.stats().unknown_proto, 1);
        assert_eq!(state_of(&g, extra), None);
        let other_node = member(3, 30);
        g.handle_proto(other_node, &proto(GroupProtoType::Join, other_node, me, 1, ADV_IDLE));
        assert_eq!(state_of(&g, other_node), Some(MemberState::Joining));
        g.handle_proto(published, &proto(GroupProtoType::Join, published, me, 1, ADV_IDLE));
        assert_eq!(state_of(&g, published), Some(MemberState::Joined));
        assert_eq!(g.stats().unknown_proto, 1);
    }

    /// Protocol messages from sockets that are not members are counted,
    /// one each, whatever their type.
    #[test]
    fn protocol_messages_from_strangers_are_counted() {
        let (me, stranger) = (member(1, 10), member(3, 30));
        let mut g = joined(me, false);
        for t in [GroupProtoType::Leave, GroupProtoType::Adv, GroupProtoType::Ack, GroupProtoType::Unknown(7)] {
            g.handle_proto(stranger, &proto(t, stranger, me, 1, 1));
        }
        assert_eq!(g.stats().unknown_proto, 4);
        // data from a member that only sent its JOIN is dropped and counted
        let joining = member(4, 40);
        g.handle_proto(joining, &proto(GroupProtoType::Join, joining, me, 1, ADV_IDLE));
        g.handle_data(joining, data_from(DataType::GrpUcast, joining, 1, b"x"));
        g.handle_data(stranger, data_from(DataType::GrpUcast, stranger, 1, b"x"));
        assert_eq!(g.stats().dropped, 2);
        assert!(delivered(&mut g).is_empty());
    }

    /// Our own broadcasts and multicasts come back only with LOOPBACK, a
    /// multicast only when it is for our own instance.
    #[test]
    fn looped_back_messages_follow_mode_and_instance() {
        let me = member(1, 10);
        let mut g = Group::new(
            GroupSpec {
                stype: ServiceType(100),
                instance: Instance(1),
                scope: Scope::Cluster,
                loopback: true,
                member_events: false,
            },
            me,
        );
        let mut own = |t, inst: u32, body: &[u8]| {
            let mut d = data_from(t, me, 1, body);
            d.name_inst = Instance(inst);
            g.handle_data(me, d);
        };
        own(DataType::GrpBcast, 0, b"bc");
        own(DataType::GrpMcast, 1, b"mine");
        own(DataType::GrpMcast, 2, b"theirs");
        assert_eq!(delivered(&mut g), [b"bc".to_vec(), b"mine".to_vec()]);
        let mut quiet = joined(me, false);
        quiet.handle_data(me, data_from(DataType::GrpBcast, me, 1, b"bc"));
        assert!(delivered(&mut quiet).is_empty());
    }

    /// `n` members published and joined, each sending one unicast that
    /// the application then reads: the first ones become active senders.
    fn group_of(n: u32) -> (Group, MemberId, Vec<MemberId>) {
        let me = member(1, 10);
        let mut g = joined(me, false);
        let ids: Vec<MemberId> = (0..n).map(|i| member(2 + i, 20)).collect();
        for &id in &ids {
            with_member(&mut g, me, id, 1);
        }
        (g, me, ids)
    }

    /// Seventeen members that each sent one message the application
    /// read: sixteen active senders (the first reclaimed), one pending.
    fn seventeen_read_once() -> (Group, Vec<MemberId>) {
        let (mut g, _me, ids) = group_of(17);
        for &id in &ids {
            read_one(&mut g, id);
        }
        (g, ids)
    }

    /// `id` sends a one-block unicast and the application reads it.
    fn read_one(g: &mut Group, id: MemberId) {
        g.handle_data(id, data_from(DataType::GrpUcast, id, 1, b"x"));
        g.consumed(id, 1);
    }

    /// All protocol messages queued, as (to, type, bc, adv_win).
    fn all_protos(g: &mut Group) -> Vec<(MemberId, GroupProtoType, u16, u16)> {
        std::iter::from_fn(|| g.poll_out())
            .filter_map(|o| match o {
                GroupOut::To { member, msg: DataMsgOrProto::Proto(p) } => Some((member, p.msg_type, p.bc, p.adv_win)),
                _ => None,
            })
            .collect()
    }

    /// Once three quarters of the active slots are taken, activating one
    /// more member reclaims the window of the least recently read active
    /// one; reading moves a member to the back (net/tipc/group.c,
    /// tipc_group_update_rcv_win).
    #[test]
    fn the_twelfth_active_sender_reclaims_the_least_recently_read() {
        let (mut g, _me, ids) = group_of(14);
        all_protos(&mut g);
        for &id in &ids[..11] {
            read_one(&mut g, id);
        }
        let p = all_protos(&mut g);
        assert!(p.iter().all(|x| x.1 == GroupProtoType::Adv), "only ADVs below 12 active: {p:?}");
        assert_eq!(p.len(), 11);
        assert!(p.iter().all(|x| x.3 == ADV_ACTIVE - ADV_IDLE + 1), "each tops up to the active window: {p:?}");
        // the first is read again: it moves to the back
        read_one(&mut g, ids[0]);
        assert!(all_protos(&mut g).is_empty());
        read_one(&mut g, ids[11]);
        let p = all_protos(&mut g);
        assert_eq!(p.iter().filter(|x| x.1 == GroupProtoType::Reclaim).map(|x| x.0).collect::<Vec<_>>(), [ids[1]]);
        assert_eq!(state_of(&g, ids[1]), Some(MemberState::Reclaiming));
        // the next activation finds the oldest already reclaiming
        read_one(&mut g, ids[12]);
        assert!(all_protos(&mut g).iter().all(|x| x.1 != GroupProtoType::Reclaim));
    }

    /// An active member's window is re-advertised when what it has left
    /// falls to ADV_ACTIVE_LOW, topped up to ADV_ACTIVE.
    #[test]
    fn an_active_window_is_topped_up_at_three_quarters() {
        let (mut g, _me, ids) = group_of(1);
        let a = ids[0];
        read_one(&mut g, a);
        assert_eq!(state_of(&g, a), Some(MemberState::Active));
        all_protos(&mut g);
        let above = ADV_ACTIVE - ADV_ACTIVE_LOW - 1;
        for _ in 0..above {
            read_one(&mut g, a);
        }
        assert!(all_protos(&mut g).is_empty(), "nothing above three quarters");
        read_one(&mut g, a);
        assert_eq!(all_protos(&mut g), [(a, GroupProtoType::Adv, 0, ADV_ACTIVE - ADV_ACTIVE_LOW)]);
    }

    /// A pending member gets more idle window once it has used half of it.
    #[test]
    fn a_pending_member_is_topped_up_at_half_its_idle_window() {
        let (mut g, ids) = seventeen_read_once();
        let p = ids[16];
        assert_eq!(state_of(&g, p), Some(MemberState::Pending));
        all_protos(&mut g);
        // the first read left it ADV_IDLE - 1; read until an ADV goes out
        let mut n = 1u16;
        let adv = loop {
            read_one(&mut g, p);
            n += 1;
            let out = all_protos(&mut g);
            if !out.is_empty() || n > ADV_IDLE {
                break out;
            }
        };
        assert_eq!(n, ADV_IDLE - ADV_IDLE / 2 + 1, "ADV once fewer than half the idle window is left");
        assert_eq!(adv, [(p, GroupProtoType::Adv, 0, ADV_IDLE - ADV_IDLE / 2 + 1)]);
    }

    /// A REMIT with messages still in flight leaves the member REMITTED
    /// until they are read down to the idle window; then it is JOINED
    /// again and the oldest pending member takes its active slot.
    #[test]
    fn a_remit_with_messages_in_flight_waits_for_them() {
        let (mut g, ids) = seventeen_read_once();
        let (r, pend) = (ids[0], ids[16]);
        assert_eq!(state_of(&g, r), Some(MemberState::Reclaiming));
        let adv = g.members[&r].advertised;
        all_protos(&mut g);
        g.handle_proto(r, &proto(GroupProtoType::Remit, r, member(1, 10), adv - 10, 0));
        assert_eq!(state_of(&g, r), Some(MemberState::Remitted));
        assert_eq!(g.members[&r].advertised, ADV_IDLE + 10);
        for _ in 0..9 {
            read_one(&mut g, r);
        }
        assert_eq!(state_of(&g, r), Some(MemberState::Remitted), "one in-flight block unread");
        assert!(all_protos(&mut g).is_empty());
        read_one(&mut g, r);
        assert_eq!(state_of(&g, r), Some(MemberState::Joined));
        assert!(!g.active.contains(&r) && g.active.contains(&pend));
        assert_eq!(state_of(&g, pend), Some(MemberState::Active));
        let p = all_protos(&mut g);
        assert!(p.contains(&(pend, GroupProtoType::Adv, 0, ADV_ACTIVE - (ADV_IDLE - 1))), "{p:?}");
    }

    /// A REMIT of everything advertised makes the member JOINED at once
    /// and promotes the oldest pending member.
    #[test]
    fn a_full_remit_frees_the_active_slot_at_once() {
        let (mut g, ids) = seventeen_read_once();
        let (r, pend) = (ids[0], ids[16]);
        let adv = g.members[&r].advertised;
        g.handle_proto(r, &proto(GroupProtoType::Remit, r, member(1, 10), adv, 0));
        assert_eq!(state_of(&g, r), Some(MemberState::Joined));
        assert_eq!(g.members[&r].advertised, ADV_IDLE);
        assert!(!g.active.contains(&r));
        assert_eq!(g.active.len(), 16, "the others stay active, the pending one joins them");
        assert_eq!(state_of(&g, pend), Some(MemberState::Active));
    }

    /// Messages discarded for another instance count as read (flow
    /// control moves on), ordinary deliveries do not until the
    /// application reads them; unread counts what it has not read.
    #[test]
    fn discarded_multicasts_count_as_read_and_deliveries_wait_for_the_reader() {
        let (mut g, _me, ids) = group_of(1);
        let a = ids[0];
        all_protos(&mut g);
        g.handle_data(a, data_from(DataType::GrpUcast, a, 1, b"one"));
        g.handle_data(a, data_from(DataType::GrpUcast, a, 1, b"two"));
        assert_eq!(g.members[&a].unread, 2);
        assert_eq!(state_of(&g, a), Some(MemberState::Joined), "nothing read yet");
        assert!(all_protos(&mut g).is_empty());
        g.consumed(a, 3);
        assert_eq!(g.members[&a].unread, 1);
        all_protos(&mut g);
        let (mut h, _me, ids) = group_of(1);
        let b = ids[0];
        all_protos(&mut h);
        let mut mc = data_from(DataType::GrpMcast, b, 1, b"m");
        mc.name_inst = Instance(9);
        h.handle_data(b, mc);
        assert_eq!(h.stats().other_instance, 1);
        assert_eq!(h.members[&b].unread, 0);
        assert_eq!(state_of(&h, b), Some(MemberState::Active), "the discard was read for it");
    }

    /// A sender blocked on a member first tops up the member's own window
    /// to us, so two members blocked on each other both move.
    #[test]
    fn a_blocked_send_tops_up_the_peers_window_first() {
        let (mut g, _me, ids) = group_of(1);
        let a = ids[0];
        read_one(&mut g, a);
        for _ in 0..9 {
            read_one(&mut g, a);
        }
        all_protos(&mut g);
        // our window to it is its JOIN's ADV_IDLE blocks of one block each
        for k in 0..ADV_IDLE {
            assert!(g.send_unicast(a, Bytes::from_static(b"x")).is_ok(), "send {k}");
        }
        assert_eq!(g.send_unicast(a, Bytes::from_static(b"x")), Err(GroupError::WouldBlock));
        let p = all_protos(&mut g);
        assert_eq!(p, [(a, GroupProtoType::Adv, 0, 9)]);
        assert_eq!(g.send_unicast(a, Bytes::from_static(b"x")), Err(GroupError::WouldBlock));
        assert!(all_protos(&mut g).is_empty(), "nothing more to give");
    }

    /// Messages up to 66 000 bytes are accepted, longer ones refused.
    #[test]
    fn the_largest_message_is_66000_bytes() {
        let (mut g, _me, ids) = group_of(1);
        g.members.get_mut(&ids[0]).expect("member").window = u32::MAX;
        let max = tipc_wire::MAX_USER_MSG_SIZE;
        assert!(g.send_unicast(ids[0], Bytes::from(vec![0; max])).is_ok());
        assert_eq!(g.send_unicast(ids[0], Bytes::from(vec![0; max + 1])), Err(GroupError::TooLarge));
    }

    fn looping(me: MemberId) -> Group {
        let spec = GroupSpec {
            stype: ServiceType(100),
            instance: Instance(1),
            scope: Scope::Cluster,
            loopback: true,
            member_events: false,
        };
        Group::new(spec, me)
    }

    /// Looped-back sends, as (mode, body).
    fn looped(g: &mut Group) -> Vec<(Mode, Vec<u8>)> {
        let own = g.own();
        std::iter::from_fn(|| g.poll_event())
            .filter_map(|e| match e {
                GroupEvent::Message { from, mode, data, .. } if from == own => Some((mode, data.to_vec())),
                _ => None,
            })
            .collect()
    }

    /// Broadcasts and multicasts use the receivers' windows and exclude
    /// members not yet joined or already leaving; the sender's own copy
    /// comes back with LOOPBACK, a multicast only for its own instance.
    #[test]
    fn broadcast_spends_each_receivers_window_and_loops_back() {
        let me = member(1, 10);
        let mut g = looping(me);
        let (a, b, local, joining) = (member(2, 20), member(3, 30), member(1, 11), member(4, 40));
        for id in [a, b, local] {
            with_member(&mut g, me, id, 1);
        }
        g.handle_proto(joining, &proto(GroupProtoType::Join, joining, me, 1, ADV_IDLE));
        while g.poll_out().is_some() {}
        // windows of exactly one message's blocks suffice
        let b1 = blocks(1 + tipc_wire::GROUP_H_SIZE);
        for id in [a, b, local] {
            g.members.get_mut(&id).expect("member").window = u32::from(b1) * 2;
        }
        assert!(g.broadcast(Bytes::from_static(b"x")).is_ok());
        for id in [a, b, local] {
            assert_eq!(g.members[&id].window, u32::from(b1), "window of {id:?} spent by one message");
        }
        assert_eq!(g.members[&joining].window, u32::from(ADV_IDLE), "a joining member is no receiver");
        match g.poll_out() {
            Some(GroupOut::Multi { nodes, local: l, msg, .. }) => {
                assert_eq!(nodes, BTreeSet::from([a.node, b.node]));
                assert!(l);
                assert_eq!(msg.msg_type, DataType::GrpBcast);
            }
            other => panic!("expected a multi-destination send, got {other:?}"),
        }
        assert_eq!(looped(&mut g), [(Mode::Broadcast, b"x".to_vec())]);
        // the first broadcast wanted acknowledgements: drain them
        for id in [a, b, local] {
            g.handle_proto(id, &proto(GroupProtoType::Ack, id, me, 1, 0));
        }
        assert!(g.is_open());
        for id in [a, b, local] {
            g.members.get_mut(&id).expect("member").instance = Instance(1);
        }
        assert!(g.send_multicast(Instance(1), Bytes::from_static(b"mine")).is_ok());
        assert_eq!(looped(&mut g), [(Mode::Multicast, b"mine".to_vec())]);
        g.members.get_mut(&a).expect("member").instance = Instance(5);
        g.members.get_mut(&b).expect("member").instance = Instance(5);
        for id in [a, b, local] {
            g.members.get_mut(&id).expect("member").window = 1000;
        }
        assert!(g.send_multicast(Instance(5), Bytes::from_static(b"theirs")).is_ok());
        assert!(looped(&mut g).is_empty(), "not for our instance");
        // a window one block short blocks the next broadcast
        g.members.get_mut(&a).expect("member").window = u32::from(b1) - 1;
        assert_eq!(g.broadcast(Bytes::from_static(b"y")), Err(GroupError::WouldBlock));
    }

    /// A multicast goes as a unicast when one member holds the instance,
    /// fails when none does, and reaches ourselves alone with LOOPBACK.
    #[test]
    fn multicast_to_one_none_or_only_ourselves() {
        let me = member(1, 10);
        let mut g = joined(me, false);
        let a = member(2, 20);
        with_member(&mut g, me, a, 1);
        while g.poll_out().is_some() {}
        assert_eq!(g.send_multicast(Instance(3), Bytes::from_static(b"x")), Err(GroupError::NoInstance(3)));
        assert_eq!(g.send_multicast(Instance(1), Bytes::from_static(b"x")), Err(GroupError::NoInstance(1)));
        assert!(g.send_multicast(Instance(2), Bytes::from_static(b"x")).is_ok());
        assert!(
            matches!(g.poll_out(), Some(GroupOut::To { member, msg: DataMsgOrProto::Data(d) }) if member == a && d.msg_type == DataType::GrpUcast),
            "one holder: a unicast"
        );
        // one holder of our own instance, without LOOPBACK: still a unicast
        g.members.get_mut(&a).expect("member").instance = Instance(1);
        assert!(g.send_multicast(Instance(1), Bytes::from_static(b"x")).is_ok());
        assert!(matches!(g.poll_out(), Some(GroupOut::To { member, .. }) if member == a));
        let mut l = looping(me);
        with_member(&mut l, me, a, 1);
        while l.poll_out().is_some() {}
        // one holder of another instance, with LOOPBACK: a unicast
        assert!(l.send_multicast(Instance(2), Bytes::from_static(b"x")).is_ok());
        assert!(matches!(l.poll_out(), Some(GroupOut::To { member, .. }) if member == a));
        assert!(looped(&mut l).is_empty());
        assert!(l.send_multicast(Instance(1), Bytes::from_static(b"self")).is_ok(), "only ourselves");
        assert_eq!(looped(&mut l), [(Mode::Multicast, b"self".to_vec())]);
        assert_eq!(l.send_multicast(Instance(7), Bytes::from_static(b"x")), Err(GroupError::NoInstance(7)));
        l.members.get_mut(&a).expect("member").instance = Instance(1);
        l.handle_proto(a, &proto(GroupProtoType::Ack, a, me, 1, 0));
        assert!(l.send_multicast(Instance(1), Bytes::from_static(b"both")).is_ok());
        assert!(
            std::iter::from_fn(|| l.poll_out()).any(|o| matches!(o, GroupOut::Multi { .. })),
            "one holder and ourselves: a multicast"
        );
        assert_eq!(looped(&mut l), [(Mode::Multicast, b"both".to_vec())]);
        // a member still joining is no destination
        let j = member(5, 50);
        g.handle_proto(j, &proto(GroupProtoType::Join, j, me, 1, ADV_IDLE));
        assert_eq!(g.send_unicast(j, Bytes::from_static(b"x")), Err(GroupError::NoSuchMember(j)));
    }

    /// The first broadcast after a unicast asks for acknowledgements; the
    /// group stays closed until every receiver acknowledged it, and bogus
    /// or early acknowledgements change nothing.
    #[test]
    fn an_acknowledged_broadcast_closes_the_group_until_all_acked() {
        let me = member(1, 10);
        let mut g = joined(me, false);
        let (a, b) = (member(2, 20), member(3, 30));
        with_member(&mut g, me, a, 1);
        with_member(&mut g, me, b, 1);
        assert!(g.is_open());
        assert!(g.broadcast(Bytes::from_static(b"x")).is_ok());
        assert!(!g.is_open());
        assert_eq!(g.broadcast(Bytes::from_static(b"y")), Err(GroupError::WouldBlock));
        while g.poll_event().is_some() {}
        let unblocked = |g: &mut Group| std::iter::from_fn(|| g.poll_event()).any(|e| e == GroupEvent::Unblocked);
        // an ACK beyond what we sent is ignored
        g.handle_proto(a, &proto(GroupProtoType::Ack, a, me, 7, 0));
        assert_eq!(g.members[&a].bc_acked, SeqNo(0));
        g.handle_proto(a, &proto(GroupProtoType::Ack, a, me, 1, 0));
        assert!(!unblocked(&mut g), "b still owes its ACK");
        assert!(!g.is_open());
        g.handle_proto(b, &proto(GroupProtoType::Ack, b, me, 1, 0));
        assert!(unblocked(&mut g));
        assert!(g.is_open());
    }
}
