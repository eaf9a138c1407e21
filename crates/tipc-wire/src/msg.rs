//! Any TIPC message: parse by user, emit back, print on one line.

use core::fmt;

use bytes::{Bytes, BytesMut};

use crate::{
    BcastProtoMsg, BundleMsg, ConnMgrMsg, DataMsg, DiscoveryMsg, FragmentMsg, GroupProtoMsg, Header, LinkProtoMsg,
    NameDistrMsg, NodeAddr, SeqNo, TunnelMsg, User, WireError,
};

/// A message of a user this crate has no structure for (for example
/// MSG_CRYPTO), kept byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMsg {
    /// The user value.
    pub user: u8,
    /// The complete header (word 0 included; its size field is rewritten on emit).
    pub header: Bytes,
    /// The payload.
    pub payload: Bytes,
}

/// A parsed TIPC message of any user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Users 0–3.
    Data(DataMsg),
    /// User 5.
    BcastProto(BcastProtoMsg),
    /// User 6.
    Bundle(BundleMsg),
    /// User 7.
    LinkProto(LinkProtoMsg),
    /// User 8.
    ConnMgr(ConnMgrMsg),
    /// User 9.
    GroupProto(GroupProtoMsg),
    /// User 10.
    Tunnel(TunnelMsg),
    /// User 11.
    NameDistr(NameDistrMsg),
    /// User 12.
    Fragment(FragmentMsg),
    /// User 13.
    Discovery(DiscoveryMsg),
    /// Any other user, kept raw.
    Raw(RawMsg),
}

impl Msg {
    /// Validates and parses one message. `buf` may carry trailing padding;
    /// payloads are zero-copy slices of it.
    pub fn parse(buf: Bytes) -> Result<Msg, WireError> {
        let h = Header::new_checked(buf)?;
        Self::parse_view(&h)
    }

    /// Parses from an already checked view.
    pub fn parse_view(h: &Header<Bytes>) -> Result<Msg, WireError> {
        Ok(match h.user() {
            u if u.is_data() => Msg::Data(DataMsg::parse(h)?),
            User::BcastProtocol => Msg::BcastProto(BcastProtoMsg::parse(h)?),
            User::MsgBundler => Msg::Bundle(BundleMsg::parse(h)?),
            User::LinkProtocol => Msg::LinkProto(LinkProtoMsg::parse(h)?),
            User::ConnManager => Msg::ConnMgr(ConnMgrMsg::parse(h)?),
            User::GroupProtocol => Msg::GroupProto(GroupProtoMsg::parse(h)?),
            User::TunnelProtocol => Msg::Tunnel(TunnelMsg::parse(h)?),
            User::NameDistributor => Msg::NameDistr(NameDistrMsg::parse(h)?),
            User::MsgFragmenter => Msg::Fragment(FragmentMsg::parse(h)?),
            User::LinkConfig => Msg::Discovery(DiscoveryMsg::parse(h)?),
            other => {
                let m = h.message();
                let hl = h.header_len();
                Msg::Raw(RawMsg { user: other.into(), header: m.slice(..hl), payload: m.slice(hl..) })
            }
        })
    }

    /// The user of this message.
    pub fn user(&self) -> User {
        match self {
            Msg::Data(d) => d.user(),
            Msg::BcastProto(_) => User::BcastProtocol,
            Msg::Bundle(_) => User::MsgBundler,
            Msg::LinkProto(_) => User::LinkProtocol,
            Msg::ConnMgr(_) => User::ConnManager,
            Msg::GroupProto(_) => User::GroupProtocol,
            Msg::Tunnel(_) => User::TunnelProtocol,
            Msg::NameDistr(_) => User::NameDistributor,
            Msg::Fragment(_) => User::MsgFragmenter,
            Msg::Discovery(_) => User::LinkConfig,
            Msg::Raw(r) => User::from(r.user),
        }
    }

    /// The message type as its user-specific name.
    pub fn type_name(&self) -> String {
        match self {
            Msg::Data(d) => d.msg_type.to_string(),
            Msg::BcastProto(b) => {
                if b.msg_type == 0 {
                    "STATE".into()
                } else {
                    format!("?{}", b.msg_type)
                }
            }
            Msg::Bundle(_) => "BUNDLE".into(),
            Msg::LinkProto(l) => l.msg_type.to_string(),
            Msg::ConnMgr(c) => c.msg_type.to_string(),
            Msg::GroupProto(g) => g.msg_type.to_string(),
            Msg::Tunnel(t) => t.msg_type.to_string(),
            Msg::NameDistr(n) => n.msg_type.to_string(),
            Msg::Fragment(f) => f.msg_type.to_string(),
            Msg::Discovery(d) => d.msg_type.to_string(),
            Msg::Raw(r) => format!("?{}", crate::field::bits(&r.header, 1, 29, 3)),
        }
    }

    /// The numeric message type (word 1 bits 29–31).
    pub fn type_code(&self) -> u8 {
        match self {
            Msg::Data(d) => d.msg_type.into(),
            Msg::BcastProto(b) => b.msg_type,
            Msg::Bundle(_) => 0,
            Msg::LinkProto(l) => l.msg_type.into(),
            Msg::ConnMgr(c) => c.msg_type.into(),
            Msg::GroupProto(g) => g.msg_type.into(),
            Msg::Tunnel(t) => t.msg_type.into(),
            Msg::NameDistr(n) => n.msg_type.into(),
            Msg::Fragment(f) => f.msg_type.into(),
            Msg::Discovery(d) => d.msg_type.into(),
            Msg::Raw(r) => crate::field::bits(&r.header, 1, 29, 3) as u8,
        }
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        match self {
            Msg::Data(d) => d.hsize,
            Msg::Discovery(_) => crate::MAX_H_SIZE,
            Msg::Raw(r) => r.header.len(),
            _ => crate::INT_H_SIZE,
        }
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        match self {
            Msg::Data(m) => m.buffer_len(),
            Msg::BcastProto(m) => m.buffer_len(),
            Msg::Bundle(m) => m.buffer_len(),
            Msg::LinkProto(m) => m.buffer_len(),
            Msg::ConnMgr(m) => m.buffer_len(),
            Msg::GroupProto(m) => m.buffer_len(),
            Msg::Tunnel(m) => m.buffer_len(),
            Msg::NameDistr(m) => m.buffer_len(),
            Msg::Fragment(m) => m.buffer_len(),
            Msg::Discovery(m) => m.buffer_len(),
            Msg::Raw(r) => r.header.len() + r.payload.len(),
        }
    }

    /// Writes the message into `buf` (at least [`Msg::buffer_len`] bytes).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        match self {
            Msg::Data(m) => m.emit(buf),
            Msg::BcastProto(m) => m.emit(buf),
            Msg::Bundle(m) => m.emit(buf),
            Msg::LinkProto(m) => m.emit(buf),
            Msg::ConnMgr(m) => m.emit(buf),
            Msg::GroupProto(m) => m.emit(buf),
            Msg::Tunnel(m) => m.emit(buf),
            Msg::NameDistr(m) => m.emit(buf),
            Msg::Fragment(m) => m.emit(buf),
            Msg::Discovery(m) => m.emit(buf),
            Msg::Raw(r) => {
                let hl = r.header.len();
                let n = hl + r.payload.len();
                crate::header::check_out(buf, n)?;
                if !(crate::MIN_H_SIZE..=crate::MAX_H_SIZE).contains(&hl)
                    || hl % 4 != 0
                    || r.payload.len() > crate::MAX_USER_MSG_SIZE
                {
                    return Err(WireError::BadHeaderSize { hsize: hl, what: "raw message" });
                }
                buf[..hl].copy_from_slice(&r.header);
                buf[hl..n].copy_from_slice(&r.payload);
                crate::field::set_bits(buf, 0, 0, 17, n as u32);
                Ok(())
            }
        }
    }

    /// Encodes into a new buffer.
    pub fn to_bytes(&self) -> Result<Bytes, WireError> {
        if let Msg::Data(d) = self {
            return d.to_bytes();
        }
        let mut b = BytesMut::zeroed(self.buffer_len());
        self.emit(&mut b)?;
        Ok(b.freeze())
    }

    /// Link sequence number (word 2 low half), where the message has one.
    pub fn seqno(&self) -> Option<SeqNo> {
        self.link_words().map(|(_, s, _)| s)
    }
    /// Link ack (word 2 high half), where the message has one.
    pub fn ack(&self) -> Option<SeqNo> {
        self.link_words().map(|(a, _, _)| a)
    }
    /// Broadcast ack (word 1 low half), where the message has one.
    pub fn bcast_ack(&self) -> Option<SeqNo> {
        self.link_words().map(|(_, _, b)| b)
    }

    fn link_words(&self) -> Option<(SeqNo, SeqNo, SeqNo)> {
        let h = match self {
            Msg::Data(d) => return Some((d.ack, d.seqno, d.bcast_ack)),
            Msg::BcastProto(m) => m.hdr,
            Msg::Bundle(m) => m.hdr,
            Msg::LinkProto(m) => m.hdr,
            Msg::ConnMgr(m) => m.hdr,
            Msg::GroupProto(m) => m.hdr,
            Msg::Tunnel(m) => m.hdr,
            Msg::NameDistr(m) => m.hdr,
            Msg::Fragment(m) => m.hdr,
            Msg::Discovery(_) => return None,
            Msg::Raw(r) => {
                let w1 = crate::field::word(&r.header, 1);
                let w2 = crate::field::word(&r.header, 2);
                return Some((SeqNo((w2 >> 16) as u16), SeqNo(w2 as u16), SeqNo(w1 as u16)));
            }
        };
        Some((h.ack, h.seqno, h.bcast_ack))
    }

    /// Non-sequenced flag (discovery and broadcast-link packets).
    pub fn non_seq(&self) -> bool {
        match self {
            Msg::Data(d) => d.flags.non_seq,
            Msg::Discovery(d) => d.flags.non_seq,
            Msg::Raw(r) => crate::field::bit(&r.header, 0, 20),
            other => other.int_hdr().is_some_and(|h| h.flags.non_seq),
        }
    }

    /// The shared internal header, for 40-byte internal users.
    pub fn int_hdr(&self) -> Option<&crate::IntHdr> {
        match self {
            Msg::BcastProto(m) => Some(&m.hdr),
            Msg::Bundle(m) => Some(&m.hdr),
            Msg::LinkProto(m) => Some(&m.hdr),
            Msg::ConnMgr(m) => Some(&m.hdr),
            Msg::GroupProto(m) => Some(&m.hdr),
            Msg::Tunnel(m) => Some(&m.hdr),
            Msg::NameDistr(m) => Some(&m.hdr),
            Msg::Fragment(m) => Some(&m.hdr),
            _ => None,
        }
    }

    /// Previous node (word 3).
    pub fn prev_node(&self) -> NodeAddr {
        match self {
            Msg::Data(d) => d.prev_node,
            Msg::Discovery(d) => d.prev_node,
            Msg::Raw(r) => NodeAddr(crate::field::word(&r.header, 3)),
            other => other.int_hdr().map(|h| h.prev_node).unwrap_or_default(),
        }
    }

    /// Originating and destination node, where the header carries them.
    pub fn nodes(&self) -> Option<(NodeAddr, NodeAddr)> {
        match self {
            Msg::Data(d) if d.hsize >= 32 => Some((d.orig_node, d.dest_node)),
            Msg::Data(_) | Msg::Discovery(_) => None,
            Msg::Raw(r) if r.header.len() >= 32 => {
                Some((NodeAddr(crate::field::word(&r.header, 6)), NodeAddr(crate::field::word(&r.header, 7))))
            }
            Msg::Raw(_) => None,
            other => other.int_hdr().map(|h| (h.orig_node, h.dest_node)),
        }
    }
}

impl fmt::Display for Msg {
    /// One line: user/type, size, link fields, then the fields that matter for the user.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}B", self.user(), self.type_name(), self.buffer_len())?;
        if self.non_seq() {
            f.write_str(" N")?;
        }
        if let Some((a, s, b)) = self.link_words() {
            write!(f, " seq={} ack={} bcack={}", s, a, b)?;
        }
        if let Some((o, d)) = self.nodes() {
            write!(f, " {o}->{d}")?;
        }
        match self {
            Msg::Data(d) => {
                write!(f, " port {}->{}", d.orig_port.0, d.dest_port.0)?;
                if d.hsize >= 40 {
                    write!(f, " name={}:{}", d.name_type.0, d.name_inst.0)?;
                }
                if d.msg_type.is_group() {
                    write!(f, " grp_bc={}{}", d.grp_bc_seqno(), if d.grp_ack_req() { " ackreq" } else { "" })?;
                } else if d.hsize >= 44 {
                    write!(f, " upper={}", d.word10)?;
                }
                if d.err != crate::ErrorCode::Ok {
                    write!(f, " err={}", d.err)?;
                }
                write!(f, " data={}B", d.payload.len())
            }
            Msg::LinkProto(l) => {
                write!(f, " sess={} next={} lastbc={}", l.session, l.next_sent, l.last_bcast_sent)?;
                if l.gap != 0 {
                    write!(f, " gap={}", l.gap)?;
                }
                if l.bcast_gap != 0 {
                    write!(f, " bcgap={}", l.bcast_gap)?;
                }
                if l.max_pkt_div4 != 0 {
                    write!(f, " mtu={}", l.max_pkt())?;
                }
                if let Some(n) = l.if_name().filter(|_| l.msg_type != crate::LinkProtoType::State) {
                    write!(f, " if={n}")?;
                }
                for (on, s) in [
                    (l.probe, " probe"),
                    (l.keepalive(), " keepalive"),
                    (l.redundant_link, " redundant"),
                    (l.bc_ack_invalid, " bcackinv"),
                    (l.peer_stopping, " stopping"),
                ] {
                    if on {
                        f.write_str(s)?;
                    }
                }
                Ok(())
            }
            Msg::Discovery(d) => {
                write!(
                    f,
                    " from={} dom={} net={} caps={:#05x} sig={:#06x}",
                    d.prev_node, d.dest_domain, d.net_id, d.capabilities, d.signature
                )?;
                if let Some(m) = d.media.mac() {
                    write!(f, " mac={m}")?;
                }
                if let Some(id) = d.node_id {
                    write!(f, " id={id}")?;
                }
                if d.suggested.0 != 0 {
                    write!(f, " suggest={}", d.suggested)?;
                }
                Ok(())
            }
            Msg::BcastProto(b) => write!(f, " lastbc={} w5={:#x}", b.last_bcast_sent, b.word5),
            Msg::Bundle(b) => write!(f, " count={} imp={}", b.msg_count, b.importance),
            Msg::Fragment(fr) => write!(f, " no={} imp={} data={}B", fr.frag_no, fr.importance, fr.payload.len()),
            Msg::NameDistr(n) => {
                write!(f, " nseq={}", n.name_seqno)?;
                if n.bulk {
                    f.write_str(" bulk")?;
                }
                if n.last_bulk {
                    f.write_str(" last")?;
                }
                for it in &n.items {
                    write!(f, " {{{},{},{} port={}}}", it.stype.0, it.lower.0, it.upper.0, it.port.0)?;
                }
                Ok(())
            }
            Msg::GroupProto(g) => write!(f, " port {}->{} bc={} adv={}", g.orig_port.0, g.dest_port.0, g.bc, g.adv_win),
            Msg::ConnMgr(c) => {
                write!(f, " port {}->{} acked={} adv={}", c.orig_port.0, c.dest_port.0, c.acked, c.adv_win)
            }
            Msg::Tunnel(t) => write!(f, " data={}B", t.payload.len()),
            Msg::Raw(r) => write!(f, " data={}B", r.payload.len()),
        }
    }
}
