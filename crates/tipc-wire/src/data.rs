//! Data messages (users 0–3): direct, named, multicast, connection and the
//! four group types.

use bytes::{Bytes, BytesMut};

use crate::header::{check_out, put, write_word0};
use crate::{
    DataType, ErrorCode, Flags, Header, Importance, Instance, NodeAddr, PortId, Scope, SeqNo, ServiceType, User,
    WireError,
};

/// Word 10, bit 0 of group data: the sender wants a GRP_ACK.
pub const GRP_ACK_REQ: u32 = 1;

/// A parsed data message.
///
/// Fields that the header size does not include (for example `dest_node` in
/// a 24-byte connection header) are ignored on emit and read as 0 on parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataMsg {
    /// Importance (the user value, 0–3).
    pub importance: Importance,
    /// Header size: 24, 32, 40 or 44 bytes.
    pub hsize: usize,
    /// Word-0 flags (dest-droppable, src-droppable/is-replicast, SYN).
    pub flags: Flags,
    /// Message type.
    pub msg_type: DataType,
    /// Error code (non-zero on returned messages).
    pub err: ErrorCode,
    /// Reroute counter (4 bits).
    pub reroute: u8,
    /// Lookup scope.
    pub scope: Scope,
    /// Broadcast ack towards the destination node.
    pub bcast_ack: SeqNo,
    /// Link ack.
    pub ack: SeqNo,
    /// Link sequence number.
    pub seqno: SeqNo,
    /// Previous node (the neighbour that sent the packet).
    pub prev_node: NodeAddr,
    /// Originating port.
    pub orig_port: PortId,
    /// Destination port (network id on broadcast-link packets).
    pub dest_port: PortId,
    /// Originating node (word 6; headers ≥ 28 bytes).
    pub orig_node: NodeAddr,
    /// Destination node (word 7; headers ≥ 32 bytes).
    pub dest_node: NodeAddr,
    /// Name type (word 8; named, multicast and group messages).
    pub name_type: ServiceType,
    /// Name instance / lower (word 9).
    pub name_inst: Instance,
    /// Word 10, whose meaning depends on the message type: read and written
    /// through [`DataMsg::name_upper`] (multicast) and
    /// [`DataMsg::grp_bc_seqno`] / [`DataMsg::grp_ack_req`] (group data).
    pub(crate) word10: u32,
    /// User data.
    pub payload: Bytes,
}

impl DataMsg {
    /// The usual header size of a data message type.
    pub fn default_hsize(t: DataType) -> usize {
        match t {
            DataType::Conn => crate::SHORT_H_SIZE,
            DataType::Direct => crate::BASIC_H_SIZE,
            DataType::Named => crate::NAMED_H_SIZE,
            _ => crate::MCAST_H_SIZE,
        }
    }

    /// A message of type `t` with the usual header size and all other fields zero.
    pub fn new(t: DataType, payload: Bytes) -> DataMsg {
        DataMsg {
            importance: Importance::Low,
            hsize: Self::default_hsize(t),
            flags: Flags::default(),
            msg_type: t,
            err: ErrorCode::Ok,
            reroute: 0,
            scope: Scope::None,
            bcast_ack: SeqNo(0),
            ack: SeqNo(0),
            seqno: SeqNo(0),
            prev_node: NodeAddr(0),
            orig_port: PortId(0),
            dest_port: PortId(0),
            orig_node: NodeAddr(0),
            dest_node: NodeAddr(0),
            name_type: ServiceType(0),
            name_inst: Instance(0),
            word10: 0,
            payload,
        }
    }

    /// Parses a data message from a checked view.
    pub fn parse(h: &Header<Bytes>) -> Result<DataMsg, WireError> {
        let user = h.user();
        if !user.is_data() {
            return Err(WireError::WrongUser { found: user.into(), expected: "data" });
        }
        let hsize = h.header_len();
        if !matches!(hsize, 24 | 32 | 40 | 44) {
            return Err(WireError::BadHeaderSize { hsize, what: "data message" });
        }
        Ok(DataMsg {
            importance: Importance::from(u8::from(user)),
            hsize,
            flags: h.flags(),
            msg_type: DataType::from(h.msg_type()),
            err: ErrorCode::from(h.bits(1, 25, 4) as u8),
            reroute: h.bits(1, 21, 4) as u8,
            scope: Scope::from(h.bits(1, 19, 2) as u8),
            bcast_ack: h.bcast_ack(),
            ack: h.ack(),
            seqno: h.seqno(),
            prev_node: h.prev_node(),
            orig_port: PortId(h.word(4)),
            dest_port: PortId(h.word(5)),
            orig_node: NodeAddr(h.word(6)),
            dest_node: NodeAddr(h.word(7)),
            name_type: ServiceType(h.word(8)),
            name_inst: Instance(h.word(9)),
            word10: h.word(10),
            payload: h.payload(),
        })
    }

    /// Header plus payload length.
    pub fn buffer_len(&self) -> usize {
        self.hsize + self.payload.len()
    }

    /// Writes the message into `buf` (at least [`DataMsg::buffer_len`] bytes).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let imp = self.checked_importance()?;
        let n = self.buffer_len();
        check_out(buf, n)?;
        self.emit_header(buf, imp, n);
        buf[self.hsize..n].copy_from_slice(&self.payload);
        Ok(())
    }

    /// The message as a fresh buffer: as [`DataMsg::emit`] into a buffer of
    /// [`DataMsg::buffer_len`] bytes, without first zeroing the payload's
    /// room (every byte is written once).
    ///
    /// # Errors
    /// As [`DataMsg::emit`].
    pub fn to_bytes(&self) -> Result<Bytes, WireError> {
        let imp = self.checked_importance()?;
        let n = self.buffer_len();
        let mut b = BytesMut::with_capacity(n);
        b.resize(self.hsize, 0);
        self.emit_header(&mut b, imp, n);
        b.extend_from_slice(&self.payload);
        Ok(b.freeze())
    }

    /// The importance as the user field carries it, once the header size,
    /// importance and payload length are checked.
    fn checked_importance(&self) -> Result<u8, WireError> {
        if !matches!(self.hsize, 24 | 32 | 40 | 44) {
            return Err(WireError::BadHeaderSize { hsize: self.hsize, what: "data message" });
        }
        let imp = u8::from(self.importance);
        if imp > 3 {
            return Err(WireError::BadField { field: "data importance", value: u32::from(imp) });
        }
        if self.payload.len() > crate::MAX_USER_MSG_SIZE {
            return Err(WireError::Overflow { field: "payload", value: self.payload.len() as u64 });
        }
        Ok(imp)
    }

    /// Writes the header (the first `hsize` bytes of `buf`) of a message of
    /// `n` bytes with user field `imp` (checked by the caller).
    fn emit_header(&self, buf: &mut [u8], imp: u8, n: usize) {
        buf[..self.hsize].fill(0);
        write_word0(buf, imp, self.hsize, self.flags, n);
        put(buf, 1, 29, 3, u32::from(u8::from(self.msg_type)));
        put(buf, 1, 25, 4, u32::from(u8::from(self.err)));
        put(buf, 1, 21, 4, u32::from(self.reroute));
        put(buf, 1, 19, 2, u32::from(u8::from(self.scope)));
        put(buf, 1, 0, 16, u32::from(self.bcast_ack.0));
        put(buf, 2, 16, 16, u32::from(self.ack.0));
        put(buf, 2, 0, 16, u32::from(self.seqno.0));
        let words = [
            self.prev_node.0,
            self.orig_port.0,
            self.dest_port.0,
            self.orig_node.0,
            self.dest_node.0,
            self.name_type.0,
            self.name_inst.0,
            self.word10,
        ];
        for (i, w) in words.iter().enumerate() {
            if 4 * (i + 3) < self.hsize {
                crate::field::set_word(buf, i + 3, *w);
            }
        }
    }

    /// The user value of this message.
    pub fn user(&self) -> User {
        User::from(u8::from(self.importance))
    }

    /// Originating node, taking it from word 3 for 24-byte headers.
    pub fn origin(&self) -> NodeAddr {
        if self.hsize < 28 { self.prev_node } else { self.orig_node }
    }
    /// Group data: the sender's group broadcast sequence number (w10 bits 16–31).
    pub fn grp_bc_seqno(&self) -> u16 {
        (self.word10 >> 16) as u16
    }
    /// Group data: the ack-request bit (w10 bit 0).
    pub fn grp_ack_req(&self) -> bool {
        self.word10 & GRP_ACK_REQ != 0
    }
    /// Sets group bc seqno and ack request in word 10.
    pub fn set_grp(&mut self, bc_seqno: u16, ack_req: bool) {
        self.word10 = (u32::from(bc_seqno) << 16) | u32::from(ack_req);
    }
    /// Multicast: upper bound of the destination range (word 10, the
    /// kernel's `msg_nameupper`, net/tipc/msg.h).
    pub fn name_upper(&self) -> Instance {
        Instance(self.word10)
    }
    /// Multicast: sets the upper bound of the destination range (word 10).
    pub fn set_name_upper(&mut self, upper: Instance) {
        self.word10 = upper.0;
    }
}
