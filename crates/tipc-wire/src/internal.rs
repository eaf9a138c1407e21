//! Internal (protocol) messages with the 40-byte header: LINK_PROTOCOL,
//! BCAST_PROTOCOL, MSG_BUNDLER, MSG_FRAGMENTER, NAME_DISTRIBUTOR,
//! GROUP_PROTOCOL, CONN_MANAGER and TUNNEL_PROTOCOL.

use bytes::Bytes;

use crate::Flags;
use crate::field::set_word;
use crate::header::{check_out, put, write_word0};
use crate::{
    ConnMgrType, ErrorCode, FragmentType, GroupProtoType, Header, INT_H_SIZE, Importance, LinkProtoType, NameDistrType,
    NodeAddr, PortId, SeqNo, TunnelType, User, WireError,
};

/// The fields every 40-byte internal message shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IntHdr {
    /// Word-0 flags (keepalive is `d` on LINK_PROTOCOL; non-sequenced on broadcast-link packets).
    pub flags: Flags,
    /// Word 1 bits 0–15: broadcast ack (the peer's session in ACTIVATE).
    pub bcast_ack: SeqNo,
    /// Word 2 bits 16–31: link ack (gap-after on a broadcast-link NACK).
    pub ack: SeqNo,
    /// Word 2 bits 0–15: link sequence number (gap-to on a broadcast-link NACK).
    pub seqno: SeqNo,
    /// Word 3: previous node.
    pub prev_node: NodeAddr,
    /// Word 6: originating node.
    pub orig_node: NodeAddr,
    /// Word 7: destination node.
    pub dest_node: NodeAddr,
}

impl IntHdr {
    fn read(h: &Header<Bytes>) -> IntHdr {
        IntHdr {
            flags: h.flags(),
            bcast_ack: h.bcast_ack(),
            ack: h.ack(),
            seqno: h.seqno(),
            prev_node: h.prev_node(),
            orig_node: NodeAddr(h.word(6)),
            dest_node: NodeAddr(h.word(7)),
        }
    }
    /// Writes word 0 and the shared words; per-user words are written by the caller.
    fn write(&self, buf: &mut [u8], user: User, msg_type: u8, payload_len: usize) -> Result<usize, WireError> {
        if payload_len > crate::MAX_USER_MSG_SIZE {
            return Err(WireError::Overflow { field: "payload", value: payload_len as u64 });
        }
        let n = INT_H_SIZE + payload_len;
        check_out(buf, n)?;
        buf[..INT_H_SIZE].fill(0);
        write_word0(buf, user.into(), INT_H_SIZE, self.flags, n);
        put(buf, 1, 29, 3, u32::from(msg_type));
        put(buf, 1, 0, 16, u32::from(self.bcast_ack.0));
        put(buf, 2, 16, 16, u32::from(self.ack.0));
        put(buf, 2, 0, 16, u32::from(self.seqno.0));
        set_word(buf, 3, self.prev_node.0);
        set_word(buf, 6, self.orig_node.0);
        set_word(buf, 7, self.dest_node.0);
        Ok(n)
    }
}

fn check_int(h: &Header<Bytes>, user: User, what: &'static str) -> Result<(), WireError> {
    if h.user() != user {
        return Err(WireError::WrongUser { found: h.user().into(), expected: what });
    }
    if h.header_len() != INT_H_SIZE {
        return Err(WireError::BadHeaderSize { hsize: h.header_len(), what });
    }
    Ok(())
}

fn copy_payload(buf: &mut [u8], payload: &[u8]) {
    buf[INT_H_SIZE..INT_H_SIZE + payload.len()].copy_from_slice(payload);
}

/// LINK_PROTOCOL (user 7): RESET, ACTIVATE and STATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkProtoMsg {
    /// Message type.
    pub msg_type: LinkProtoType,
    /// Shared header fields (`bcast_ack` is the peer's session in ACTIVATE).
    pub hdr: IntHdr,
    /// Word 1 bits 16–28: sequence gap (STATE). In ACTIVATE bit 16 (value 1)
    /// means "destination session valid".
    pub gap: u16,
    /// Word 4 bits 16–31: sender's last sent broadcast seqno.
    pub last_bcast_sent: SeqNo,
    /// Word 4 bits 0–15: sender's next unicast seqno to be sent.
    pub next_sent: SeqNo,
    /// Word 5 bits 16–31: sender's link session.
    pub session: u16,
    /// Word 5 bit 14: broadcast ack fields are not valid yet.
    pub bc_ack_invalid: bool,
    /// Word 5 bit 13: sender is stopping (link going down).
    pub peer_stopping: bool,
    /// Word 5 bit 12: redundant link ("I still consider your node up").
    pub redundant_link: bool,
    /// Word 5 bits 9–11: sender's bearer id.
    pub bearer_id: u8,
    /// Word 5 bits 4–8: link priority (0 = unchanged).
    pub priority: u8,
    /// Word 5 bits 1–3: network plane (0 = 'A').
    pub net_plane: u8,
    /// Word 5 bit 0: probe ("reply at once").
    pub probe: bool,
    /// Word 8 bits 0–9: broadcast gap (STATE).
    pub bcast_gap: u16,
    /// Word 9 bits 16–31: maximum packet size / 4 (RESET/ACTIVATE).
    pub max_pkt_div4: u16,
    /// Word 9 bits 0–15: link tolerance in ms (0 = unchanged).
    pub tolerance: u16,
    /// RESET/ACTIVATE: 16-byte interface name; STATE: gap-ACK record, monitor record.
    pub payload: Bytes,
}

impl LinkProtoMsg {
    /// Parses from a checked view.
    pub fn parse(h: &Header<Bytes>) -> Result<Self, WireError> {
        check_int(h, User::LinkProtocol, "LINK_PROTOCOL")?;
        Ok(LinkProtoMsg {
            msg_type: LinkProtoType::from(h.msg_type()),
            hdr: IntHdr::read(h),
            gap: h.bits(1, 16, 13) as u16,
            last_bcast_sent: SeqNo(h.bits(4, 16, 16) as u16),
            next_sent: SeqNo(h.bits(4, 0, 16) as u16),
            session: h.bits(5, 16, 16) as u16,
            bc_ack_invalid: h.bc_ack_invalid(),
            peer_stopping: h.bits(5, 13, 1) != 0,
            redundant_link: h.bits(5, 12, 1) != 0,
            bearer_id: h.bits(5, 9, 3) as u8,
            priority: h.bits(5, 4, 5) as u8,
            net_plane: h.bits(5, 1, 3) as u8,
            probe: h.bits(5, 0, 1) != 0,
            bcast_gap: h.bits(8, 0, 10) as u16,
            max_pkt_div4: h.bits(9, 16, 16) as u16,
            tolerance: h.bits(9, 0, 16) as u16,
            payload: h.payload(),
        })
    }
    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        INT_H_SIZE + self.payload.len()
    }
    /// Writes the message into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        self.hdr.write(buf, User::LinkProtocol, self.msg_type.into(), self.payload.len())?;
        put(buf, 1, 16, 13, u32::from(self.gap));
        put(buf, 4, 16, 16, u32::from(self.last_bcast_sent.0));
        put(buf, 4, 0, 16, u32::from(self.next_sent.0));
        put(buf, 5, 16, 16, u32::from(self.session));
        put(buf, 5, 14, 1, u32::from(self.bc_ack_invalid));
        put(buf, 5, 13, 1, u32::from(self.peer_stopping));
        put(buf, 5, 12, 1, u32::from(self.redundant_link));
        put(buf, 5, 9, 3, u32::from(self.bearer_id));
        put(buf, 5, 4, 5, u32::from(self.priority));
        put(buf, 5, 1, 3, u32::from(self.net_plane));
        put(buf, 5, 0, 1, u32::from(self.probe));
        put(buf, 8, 0, 10, u32::from(self.bcast_gap));
        put(buf, 9, 16, 16, u32::from(self.max_pkt_div4));
        put(buf, 9, 0, 16, u32::from(self.tolerance));
        copy_payload(buf, &self.payload);
        Ok(())
    }
    /// Advertised maximum packet size in bytes (RESET/ACTIVATE).
    pub fn max_pkt(&self) -> usize {
        usize::from(self.max_pkt_div4) * 4
    }
    /// ACTIVATE: whether the peer session in word 1 is valid.
    pub fn dest_session_valid(&self) -> bool {
        self.gap & 1 != 0
    }
    /// ACTIVATE: the receiver's session as last known by the sender.
    pub fn dest_session(&self) -> u16 {
        self.hdr.bcast_ack.0
    }
    /// Keepalive flag (word 0 bit 19): set on probes and probe replies.
    pub fn keepalive(&self) -> bool {
        self.hdr.flags.d
    }
    /// RESET/ACTIVATE: the interface name (up to the first NUL of the 16-byte field).
    pub fn if_name(&self) -> Option<&str> {
        let f = self.payload.get(..16)?;
        let end = f.iter().position(|&c| c == 0).unwrap_or(16);
        core::str::from_utf8(&f[..end]).ok()
    }
    /// Builds a 16-byte NUL-padded interface name payload (longer names are cut).
    pub fn if_name_payload(name: &str) -> Bytes {
        let mut p = [0u8; 16];
        let b = name.as_bytes();
        let n = b.len().min(15);
        p[..n].copy_from_slice(&b[..n]);
        Bytes::copy_from_slice(&p)
    }
}

/// Word 5 bit 14 of LINK_PROTOCOL, BCAST_PROTOCOL and NAME_DISTRIBUTOR
/// messages on a unicast link: the broadcast ack in word 1 is not valid yet
/// (net/tipc/msg.h `msg_set_bc_ack_invalid`). A mask for the `word5` fields
/// of [`BcastProtoMsg`] and [`NameDistrMsg`].
pub const BC_ACK_INVALID: u32 = 1 << 14;

/// BCAST_PROTOCOL (user 5): broadcast-link synchronisation (on the unicast
/// link) and legacy NACKs (on the broadcast link).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BcastProtoMsg {
    /// Message type (0 = STATE, the only one used).
    pub msg_type: u8,
    /// Shared header fields. On a broadcast-link NACK `ack` is gap-after and
    /// `seqno` gap-to; `dest_node` names the node whose packets are missing.
    pub hdr: IntHdr,
    /// Word 4 bits 16–31: sender's last sent broadcast seqno (the sync point).
    pub last_bcast_sent: SeqNo,
    /// Word 5: bit 14 = bc-ack-invalid on the unicast link; the network id on
    /// the broadcast link.
    pub word5: u32,
    /// Payload (normally empty).
    pub payload: Bytes,
}

impl BcastProtoMsg {
    /// Parses from a checked view.
    pub fn parse(h: &Header<Bytes>) -> Result<Self, WireError> {
        check_int(h, User::BcastProtocol, "BCAST_PROTOCOL")?;
        Ok(BcastProtoMsg {
            msg_type: h.msg_type(),
            hdr: IntHdr::read(h),
            last_bcast_sent: SeqNo(h.bits(4, 16, 16) as u16),
            word5: h.word(5),
            payload: h.payload(),
        })
    }
    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        INT_H_SIZE + self.payload.len()
    }
    /// Writes the message into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        self.hdr.write(buf, User::BcastProtocol, self.msg_type, self.payload.len())?;
        put(buf, 4, 16, 16, u32::from(self.last_bcast_sent.0));
        set_word(buf, 5, self.word5);
        copy_payload(buf, &self.payload);
        Ok(())
    }
    /// Bit 14 of word 5 (meaningful on the unicast link).
    pub fn bc_ack_invalid(&self) -> bool {
        self.word5 & BC_ACK_INVALID != 0
    }
}

/// MSG_BUNDLER (user 6): several small messages in one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleMsg {
    /// Shared header fields.
    pub hdr: IntHdr,
    /// Word 5 (network id when sent on the broadcast link, else 0).
    pub word5: u32,
    /// Word 9 bits 16–31: number of inner messages.
    pub msg_count: u16,
    /// Word 9 bits 0–2: importance of the first inner message.
    pub importance: Importance,
    /// Inner messages back to back, each at a 4-byte aligned offset.
    pub payload: Bytes,
}

impl BundleMsg {
    /// Parses from a checked view (inner messages are read lazily by [`BundleMsg::iter`]).
    pub fn parse(h: &Header<Bytes>) -> Result<Self, WireError> {
        check_int(h, User::MsgBundler, "MSG_BUNDLER")?;
        if h.msg_type() != 0 {
            return Err(WireError::BadField { field: "bundle type", value: u32::from(h.msg_type()) });
        }
        Ok(BundleMsg {
            hdr: IntHdr::read(h),
            word5: h.word(5),
            msg_count: h.bits(9, 16, 16) as u16,
            importance: Importance::from(h.bits(9, 0, 3) as u8),
            payload: h.payload(),
        })
    }
    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        INT_H_SIZE + self.payload.len()
    }
    /// Writes the message into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        self.hdr.write(buf, User::MsgBundler, 0, self.payload.len())?;
        set_word(buf, 5, self.word5);
        put(buf, 9, 16, 16, u32::from(self.msg_count));
        put(buf, 9, 0, 3, u32::from(u8::from(self.importance)));
        copy_payload(buf, &self.payload);
        Ok(())
    }
    /// Iterates over the inner messages as zero-copy slices, each validated
    /// as a TIPC message. Stops after the first error.
    pub fn iter(&self) -> crate::bundle::BundleIter {
        crate::bundle::BundleIter::new(self.payload.clone())
    }
}

/// MSG_FRAGMENTER (user 12): one slice of a long message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentMsg {
    /// FIRST, middle or LAST.
    pub msg_type: FragmentType,
    /// Shared header fields.
    pub hdr: IntHdr,
    /// Word 4 bits 16–31: fragment number (1-based).
    pub frag_no: u16,
    /// Word 4 bits 0–15: fragment count (tunnel fragments only, else 0).
    pub frag_count: u16,
    /// Word 5 (network id when sent on the broadcast link, else 0).
    pub word5: u32,
    /// Word 9 bits 0–2: importance of the original message.
    pub importance: Importance,
    /// The slice (the first starts with the original header).
    pub payload: Bytes,
}

impl FragmentMsg {
    /// Parses from a checked view.
    pub fn parse(h: &Header<Bytes>) -> Result<Self, WireError> {
        check_int(h, User::MsgFragmenter, "MSG_FRAGMENTER")?;
        Ok(FragmentMsg {
            msg_type: FragmentType::from(h.msg_type()),
            hdr: IntHdr::read(h),
            frag_no: h.bits(4, 16, 16) as u16,
            frag_count: h.bits(4, 0, 16) as u16,
            word5: h.word(5),
            importance: Importance::from(h.bits(9, 0, 3) as u8),
            payload: h.payload(),
        })
    }
    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        INT_H_SIZE + self.payload.len()
    }
    /// Writes the message into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        self.hdr.write(buf, User::MsgFragmenter, self.msg_type.into(), self.payload.len())?;
        put(buf, 4, 16, 16, u32::from(self.frag_no));
        put(buf, 4, 0, 16, u32::from(self.frag_count));
        set_word(buf, 5, self.word5);
        put(buf, 9, 0, 3, u32::from(u8::from(self.importance)));
        copy_payload(buf, &self.payload);
        Ok(())
    }
}

/// GROUP_PROTOCOL (user 9): membership and flow control between group members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupProtoMsg {
    /// JOIN, LEAVE, ADV, ACK, RECLAIM or REMIT.
    pub msg_type: GroupProtoType,
    /// Shared header fields.
    pub hdr: IntHdr,
    /// Word 4: sending member's port.
    pub orig_port: PortId,
    /// Word 5: receiving member's port.
    pub dest_port: PortId,
    /// Word 9 bits 16–31: bc sync point (JOIN/LEAVE), bc acked (ACK) or
    /// remitted window (REMIT).
    pub bc: u16,
    /// Word 9 bits 0–15: window grant in 1 KiB blocks (JOIN/ADV).
    pub adv_win: u16,
}

impl GroupProtoMsg {
    /// Parses from a checked view.
    pub fn parse(h: &Header<Bytes>) -> Result<Self, WireError> {
        check_int(h, User::GroupProtocol, "GROUP_PROTOCOL")?;
        if h.size() != INT_H_SIZE {
            return Err(WireError::BadPayload { what: "GROUP_PROTOCOL", len: h.size() - INT_H_SIZE });
        }
        Ok(GroupProtoMsg {
            msg_type: GroupProtoType::from(h.msg_type()),
            hdr: IntHdr::read(h),
            orig_port: PortId(h.word(4)),
            dest_port: PortId(h.word(5)),
            bc: h.bits(9, 16, 16) as u16,
            adv_win: h.bits(9, 0, 16) as u16,
        })
    }
    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        INT_H_SIZE
    }
    /// Writes the message into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        self.hdr.write(buf, User::GroupProtocol, self.msg_type.into(), 0)?;
        set_word(buf, 4, self.orig_port.0);
        set_word(buf, 5, self.dest_port.0);
        put(buf, 9, 16, 16, u32::from(self.bc));
        put(buf, 9, 0, 16, u32::from(self.adv_win));
        Ok(())
    }
}

/// CONN_MANAGER (user 8): connection probes and flow-control acks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnMgrMsg {
    /// PROBE, PROBE_REPLY or ACK.
    pub msg_type: ConnMgrType,
    /// Shared header fields (`flags.s` is nagle-ack on ACK).
    pub hdr: IntHdr,
    /// Word 1 bits 25–28: an error code, which ends the connection
    /// (net/tipc/socket.c `tipc_sk_conn_proto_rcv`); normally OK.
    pub err: ErrorCode,
    /// Word 4: originating port.
    pub orig_port: PortId,
    /// Word 5: destination port.
    pub dest_port: PortId,
    /// Word 9 bits 16–31: acknowledged blocks (messages with a peer
    /// without block flow control).
    pub acked: u16,
    /// Word 9 bits 0–15: advertised window (blocks).
    pub adv_win: u16,
    /// Payload (normally empty).
    pub payload: Bytes,
}

impl ConnMgrMsg {
    /// Parses from a checked view.
    pub fn parse(h: &Header<Bytes>) -> Result<Self, WireError> {
        check_int(h, User::ConnManager, "CONN_MANAGER")?;
        Ok(ConnMgrMsg {
            msg_type: ConnMgrType::from(h.msg_type()),
            hdr: IntHdr::read(h),
            err: ErrorCode::from(h.bits(1, 25, 4) as u8),
            orig_port: PortId(h.word(4)),
            dest_port: PortId(h.word(5)),
            acked: h.bits(9, 16, 16) as u16,
            adv_win: h.bits(9, 0, 16) as u16,
            payload: h.payload(),
        })
    }
    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        INT_H_SIZE + self.payload.len()
    }
    /// Writes the message into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        self.hdr.write(buf, User::ConnManager, self.msg_type.into(), self.payload.len())?;
        put(buf, 1, 25, 4, u32::from(u8::from(self.err)));
        set_word(buf, 4, self.orig_port.0);
        set_word(buf, 5, self.dest_port.0);
        put(buf, 9, 16, 16, u32::from(self.acked));
        put(buf, 9, 0, 16, u32::from(self.adv_win));
        copy_payload(buf, &self.payload);
        Ok(())
    }
}

/// NAME_DISTRIBUTOR (user 11): publication or withdrawal items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameDistrMsg {
    /// PUBLICATION or WITHDRAWAL.
    pub msg_type: NameDistrType,
    /// Shared header fields.
    pub hdr: IntHdr,
    /// Word 1 bit 28: part of the bulk sent at node up.
    pub bulk: bool,
    /// Word 1 bit 27: last message of the bulk.
    pub last_bulk: bool,
    /// Word 1 bit 26: non-legacy (sequenced by `name_seqno`).
    pub non_legacy: bool,
    /// Word 4 bits 0–15: name-distribution seqno.
    pub name_seqno: u16,
    /// Word 5: bit 14 = bc-ack-invalid on the unicast link; network id on the broadcast link.
    pub word5: u32,
    /// The items.
    pub items: Vec<crate::PublItem>,
}

impl NameDistrMsg {
    /// Parses from a checked view.
    pub fn parse(h: &Header<Bytes>) -> Result<Self, WireError> {
        check_int(h, User::NameDistributor, "NAME_DISTRIBUTOR")?;
        let p = h.payload_slice();
        if p.len() % crate::PublItem::LEN != 0 {
            return Err(WireError::BadPayload { what: "NAME_DISTRIBUTOR", len: p.len() });
        }
        let items = p.chunks_exact(crate::PublItem::LEN).map(crate::PublItem::read).collect();
        Ok(NameDistrMsg {
            msg_type: NameDistrType::from(h.msg_type()),
            hdr: IntHdr::read(h),
            bulk: h.bits(1, 28, 1) != 0,
            last_bulk: h.bits(1, 27, 1) != 0,
            non_legacy: h.bits(1, 26, 1) != 0,
            name_seqno: h.bits(4, 0, 16) as u16,
            word5: h.word(5),
            items,
        })
    }
    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        INT_H_SIZE + self.items.len() * crate::PublItem::LEN
    }
    /// Writes the message into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let plen = self.items.len() * crate::PublItem::LEN;
        self.hdr.write(buf, User::NameDistributor, self.msg_type.into(), plen)?;
        put(buf, 1, 28, 1, u32::from(self.bulk));
        put(buf, 1, 27, 1, u32::from(self.last_bulk));
        put(buf, 1, 26, 1, u32::from(self.non_legacy));
        put(buf, 4, 0, 16, u32::from(self.name_seqno));
        set_word(buf, 5, self.word5);
        for (i, it) in self.items.iter().enumerate() {
            let o = INT_H_SIZE + i * crate::PublItem::LEN;
            it.write(&mut buf[o..o + crate::PublItem::LEN]);
        }
        Ok(())
    }
}

/// TUNNEL_PROTOCOL (user 10): synch/failover between parallel links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelMsg {
    /// SYNCH or FAILOVER.
    pub msg_type: TunnelType,
    /// Shared header fields.
    pub hdr: IntHdr,
    /// Word 4: fragment number / count (tunnel fragments).
    pub word4: u32,
    /// Word 5: bits 9–11 bearer id of the tunnelled link.
    pub word5: u32,
    /// Word 9: message count or sync point.
    pub word9: u32,
    /// One wrapped link packet.
    pub payload: Bytes,
}

impl TunnelMsg {
    /// Parses from a checked view.
    pub fn parse(h: &Header<Bytes>) -> Result<Self, WireError> {
        check_int(h, User::TunnelProtocol, "TUNNEL_PROTOCOL")?;
        Ok(TunnelMsg {
            msg_type: TunnelType::from(h.msg_type()),
            hdr: IntHdr::read(h),
            word4: h.word(4),
            word5: h.word(5),
            word9: h.word(9),
            payload: h.payload(),
        })
    }
    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        INT_H_SIZE + self.payload.len()
    }
    /// Writes the message into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        self.hdr.write(buf, User::TunnelProtocol, self.msg_type.into(), self.payload.len())?;
        set_word(buf, 4, self.word4);
        set_word(buf, 5, self.word5);
        set_word(buf, 9, self.word9);
        copy_payload(buf, &self.payload);
        Ok(())
    }
}
