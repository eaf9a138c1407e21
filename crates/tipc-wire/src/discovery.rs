//! LINK_CONFIG (user 13): neighbour discovery, with its 60-byte header, the
//! media-address block and the 16-byte node identity.

use bytes::Bytes;

use crate::field::set_word;
use crate::header::{check_out, put, write_word0};
use crate::{DiscoveryType, Flags, Header, MAX_H_SIZE, MacAddr, NodeAddr, NodeId, User, WireError};

/// Media type of Ethernet in the media-address block.
pub const MEDIA_TYPE_ETH: u8 = 1;

/// Media type of UDP in the media-address block (net/tipc/udp_media.c
/// `TIPC_MEDIA_TYPE_UDP`).
pub const MEDIA_TYPE_UDP: u8 = 3;

/// The address family of an IPv4 UDP media address, as an Ethertype.
const UDP_FAMILY_V4: u16 = 0x0800;
/// The address family of an IPv6 UDP media address, as an Ethertype.
const UDP_FAMILY_V6: u16 = 0x86DD;

/// The 32-byte media-address block (header bytes 20–51).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaAddr {
    /// Ethernet: bytes 0–2 zero, byte 3 = 1, bytes 4–9 the MAC, rest zero.
    Eth(MacAddr),
    /// UDP: bytes 0–2 zero, byte 3 = 3, bytes 4–5 the family as an
    /// Ethertype (0x0800 IPv4, 0x86DD IPv6), bytes 6–7 the port, then the
    /// IPv4 (8–11) or IPv6 (8–23) address, rest zero — the bearer's own
    /// local address (net/tipc/udp_media.c `tipc_udp_addr2msg`).
    Udp(core::net::SocketAddr),
    /// Any other layout, kept as is.
    Other([u8; 32]),
}

impl MediaAddr {
    /// Reads the block.
    pub fn read(b: &[u8; 32]) -> MediaAddr {
        let zeros = |r: core::ops::Range<usize>| b[r].iter().all(|&x| x == 0);
        if zeros(0..3) && b[3] == MEDIA_TYPE_ETH && zeros(10..32) {
            let mut m = [0u8; 6];
            m.copy_from_slice(&b[4..10]);
            MediaAddr::Eth(MacAddr(m))
        } else if zeros(0..3) && b[3] == MEDIA_TYPE_UDP {
            let family = u16::from_be_bytes([b[4], b[5]]);
            let port = u16::from_be_bytes([b[6], b[7]]);
            match family {
                UDP_FAMILY_V4 if zeros(12..32) => {
                    let ip = core::net::Ipv4Addr::new(b[8], b[9], b[10], b[11]);
                    MediaAddr::Udp(core::net::SocketAddr::new(ip.into(), port))
                }
                UDP_FAMILY_V6 if zeros(24..32) => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&b[8..24]);
                    let ip = core::net::Ipv6Addr::from(a);
                    MediaAddr::Udp(core::net::SocketAddr::new(ip.into(), port))
                }
                _ => MediaAddr::Other(*b),
            }
        } else {
            MediaAddr::Other(*b)
        }
    }
    /// Encodes the block.
    pub fn to_block(&self) -> [u8; 32] {
        match self {
            MediaAddr::Eth(m) => {
                let mut b = [0u8; 32];
                b[3] = MEDIA_TYPE_ETH;
                b[4..10].copy_from_slice(&m.0);
                b
            }
            MediaAddr::Udp(a) => {
                let mut b = [0u8; 32];
                b[3] = MEDIA_TYPE_UDP;
                b[6..8].copy_from_slice(&a.port().to_be_bytes());
                match a.ip() {
                    core::net::IpAddr::V4(ip) => {
                        b[4..6].copy_from_slice(&UDP_FAMILY_V4.to_be_bytes());
                        b[8..12].copy_from_slice(&ip.octets());
                    }
                    core::net::IpAddr::V6(ip) => {
                        b[4..6].copy_from_slice(&UDP_FAMILY_V6.to_be_bytes());
                        b[8..24].copy_from_slice(&ip.octets());
                    }
                }
                b
            }
            MediaAddr::Other(b) => *b,
        }
    }
    /// The MAC, when this is an Ethernet address.
    pub fn mac(&self) -> Option<MacAddr> {
        match self {
            MediaAddr::Eth(m) => Some(*m),
            MediaAddr::Udp(_) | MediaAddr::Other(_) => None,
        }
    }
    /// The IP address and port, when this is a UDP address.
    pub fn udp(&self) -> Option<core::net::SocketAddr> {
        match self {
            MediaAddr::Udp(a) => Some(*a),
            MediaAddr::Eth(_) | MediaAddr::Other(_) => None,
        }
    }
}

/// Where a frame goes on the bearer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxDest {
    /// Every node the bearer reaches: the Ethernet broadcast address, or
    /// on UDP the multicast group or each replicast peer (the kernel's
    /// `tipc_bearer_bc_xmit`, udp_media.c `tipc_udp_send_msg`).
    Broadcast,
    /// One neighbour, at the media address it announced in discovery.
    Unicast(MediaAddr),
}

impl TxDest {
    /// Whether this goes to every node.
    pub fn is_broadcast(&self) -> bool {
        matches!(self, TxDest::Broadcast)
    }
    /// The destination MAC on Ethernet ([`MacAddr::BROADCAST`] for a
    /// broadcast); `None` for a neighbour on another medium.
    pub fn mac(&self) -> Option<MacAddr> {
        match self {
            TxDest::Broadcast => Some(MacAddr::BROADCAST),
            TxDest::Unicast(m) => m.mac(),
        }
    }
}

impl From<MediaAddr> for TxDest {
    /// One neighbour at that address.
    fn from(m: MediaAddr) -> Self {
        TxDest::Unicast(m)
    }
}

impl From<MacAddr> for TxDest {
    /// The broadcast MAC goes to every node, any other to one neighbour.
    fn from(m: MacAddr) -> Self {
        if m.is_broadcast() { TxDest::Broadcast } else { TxDest::Unicast(MediaAddr::Eth(m)) }
    }
}

impl From<MacAddr> for MediaAddr {
    fn from(m: MacAddr) -> Self {
        MediaAddr::Eth(m)
    }
}

impl From<core::net::SocketAddr> for MediaAddr {
    fn from(a: core::net::SocketAddr) -> Self {
        MediaAddr::Udp(a)
    }
}

impl core::fmt::Display for MediaAddr {
    /// A MAC as `52:54:00:00:00:0a`, a UDP address as `10.91.0.1:6118`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MediaAddr::Eth(m) => write!(f, "{m}"),
            MediaAddr::Udp(a) => write!(f, "{a}"),
            MediaAddr::Other(b) => write!(f, "media type {}", b[3]),
        }
    }
}

/// A discovery message: REQ, RESP, TRIAL or TRIAL_FAIL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryMsg {
    /// Message type.
    pub msg_type: DiscoveryType,
    /// Word-0 flags (non-sequenced is set by the kernel).
    pub flags: Flags,
    /// Word 1 bits 15–27: capability bitmap.
    pub capabilities: u16,
    /// Word 1 bits 0–15 as received: the node signature, whose bit 15 is
    /// overwritten by capability bit 0 (the kernel writes capabilities last).
    pub signature: u16,
    /// Word 2: destination domain (0 in REQ/TRIAL; the target in RESP/TRIAL_FAIL).
    pub dest_domain: NodeAddr,
    /// Word 3: the sender's (trial) address.
    pub prev_node: NodeAddr,
    /// Word 4: network (cluster) id.
    pub net_id: u32,
    /// Words 5–12: the sender's media address.
    pub media: MediaAddr,
    /// Word 13: the sender's per-namespace hash mix (any constant for a remote peer).
    pub peer_net_hash: u32,
    /// Word 14: suggested address (TRIAL_FAIL only).
    pub suggested: NodeAddr,
    /// The 16-byte node identity after the header (absent from old peers).
    pub node_id: Option<NodeId>,
}

impl DiscoveryMsg {
    /// Capabilities of Linux 6.1.
    pub const LINUX_6_1_CAPS: u16 = 0x0fff;

    /// Parses from a checked view.
    pub fn parse(h: &Header<Bytes>) -> Result<Self, WireError> {
        if h.user() != User::LinkConfig {
            return Err(WireError::WrongUser { found: h.user().into(), expected: "LINK_CONFIG" });
        }
        if h.header_len() != MAX_H_SIZE {
            return Err(WireError::BadHeaderSize { hsize: h.header_len(), what: "LINK_CONFIG" });
        }
        let p = h.payload_slice();
        let node_id = match p.len() {
            0 => None,
            16 => {
                let mut id = [0u8; 16];
                id.copy_from_slice(p);
                Some(NodeId(id))
            }
            n => return Err(WireError::BadPayload { what: "LINK_CONFIG", len: n }),
        };
        let mut block = [0u8; 32];
        block.copy_from_slice(h.header_bytes().get(20..52).ok_or(WireError::Truncated { need: 52, have: 0 })?);
        Ok(DiscoveryMsg {
            msg_type: DiscoveryType::from(h.msg_type()),
            flags: h.flags(),
            capabilities: h.bits(1, 15, 13) as u16,
            signature: h.bits(1, 0, 16) as u16,
            dest_domain: NodeAddr(h.word(2)),
            prev_node: NodeAddr(h.word(3)),
            net_id: h.word(4),
            media: MediaAddr::read(&block),
            peer_net_hash: h.word(13),
            suggested: NodeAddr(h.word(14)),
            node_id,
        })
    }
    /// Encoded length (60, or 76 with an identity).
    pub fn buffer_len(&self) -> usize {
        MAX_H_SIZE + if self.node_id.is_some() { 16 } else { 0 }
    }
    /// Writes the message into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let n = self.buffer_len();
        check_out(buf, n)?;
        buf[..MAX_H_SIZE].fill(0);
        write_word0(buf, User::LinkConfig.into(), MAX_H_SIZE, self.flags, n);
        put(buf, 1, 29, 3, u32::from(u8::from(self.msg_type)));
        put(buf, 1, 0, 16, u32::from(self.signature));
        put(buf, 1, 15, 13, u32::from(self.capabilities));
        set_word(buf, 2, self.dest_domain.0);
        set_word(buf, 3, self.prev_node.0);
        set_word(buf, 4, self.net_id);
        buf[20..52].copy_from_slice(&self.media.to_block());
        set_word(buf, 13, self.peer_net_hash);
        set_word(buf, 14, self.suggested.0);
        if let Some(id) = self.node_id {
            buf[MAX_H_SIZE..n].copy_from_slice(&id.0);
        }
        Ok(())
    }
}
