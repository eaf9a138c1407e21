//! Typed identifiers: no bare `u32` crosses a module boundary.

use core::fmt;
use core::str::FromStr;

use crate::WireError;

/// Length of a node identity in bytes.
pub const NODE_ID_LEN: usize = 16;

/// A node's 16-byte identity, as configured or derived from a MAC address.
///
/// The identity is opaque; the 32-bit [`NodeAddr`] used on the wire is a hash
/// of it ([`NodeId::hash_addr`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; NODE_ID_LEN]);

impl NodeId {
    /// An identity from text of at most 16 bytes, stored as the bytes of the
    /// text followed by zeros (what `tipc node set identity TEXT` does).
    pub fn from_text(text: &str) -> Result<NodeId, WireError> {
        let b = text.as_bytes();
        if b.is_empty() || b.len() > NODE_ID_LEN {
            return Err(WireError::Overflow { field: "node identity (1..=16 bytes)", value: b.len() as u64 });
        }
        let mut id = [0u8; NODE_ID_LEN];
        id[..b.len()].copy_from_slice(b);
        Ok(NodeId(id))
    }

    /// The identity the kernel derives from an Ethernet bearer's MAC when none
    /// was configured: the six MAC bytes followed by ten zero bytes.
    pub fn from_mac(mac: MacAddr) -> NodeId {
        let mut id = [0u8; NODE_ID_LEN];
        id[..6].copy_from_slice(&mac.0);
        NodeId(id)
    }

    /// The identity the kernel derives from a UDP bearer's local address
    /// when none was configured: the 4 IPv4 address bytes followed by 12
    /// zero bytes, or the 16 IPv6 address bytes (net/tipc/udp_media.c
    /// `tipc_udp_enable`).
    pub fn from_ip(ip: core::net::IpAddr) -> NodeId {
        let mut id = [0u8; NODE_ID_LEN];
        match ip {
            core::net::IpAddr::V4(v4) => id[..4].copy_from_slice(&v4.octets()),
            core::net::IpAddr::V6(v6) => id.copy_from_slice(&v6.octets()),
        }
        NodeId(id)
    }

    /// The identity the kernel sets when a legacy numeric address is
    /// configured without an identity: the address in lower-case hex, as text.
    pub fn from_legacy_addr(addr: NodeAddr) -> NodeId {
        let text = format!("{:x}", addr.0);
        let mut id = [0u8; NODE_ID_LEN];
        id[..text.len()].copy_from_slice(text.as_bytes());
        NodeId(id)
    }

    /// Whether all sixteen bytes are zero (no identity set).
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    /// The 32-bit node address: the XOR of the four big-endian words of the
    /// identity, or their OR if the XOR is zero.
    pub fn hash_addr(&self) -> NodeAddr {
        let w = |i: usize| u32::from_be_bytes([self.0[4 * i], self.0[4 * i + 1], self.0[4 * i + 2], self.0[4 * i + 3]]);
        let x = w(0) ^ w(1) ^ w(2) ^ w(3);
        if x != 0 { NodeAddr(x) } else { NodeAddr(w(0) | w(1) | w(2) | w(3)) }
    }

    /// Whether the kernel would print this identity as text (every byte a
    /// letter, digit, one of `. : _ - @`, or NUL).
    pub fn is_text(&self) -> bool {
        self.0.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b':' | b'_' | b'-' | b'@' | 0))
    }
}

impl fmt::Display for NodeId {
    /// Formats the identity as the kernel's `tipc node` commands do: as text
    /// when it is text (up to the first NUL), else as 32 hex digits with
    /// trailing `0` digits removed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_text() {
            let end = self.0.iter().position(|&c| c == 0).unwrap_or(NODE_ID_LEN);
            let s = core::str::from_utf8(&self.0[..end]).map_err(|_| fmt::Error)?;
            return f.write_str(s);
        }
        let mut hex = String::with_capacity(32);
        for b in self.0 {
            hex.push_str(&format!("{b:02x}"));
        }
        let trimmed = hex.trim_end_matches('0');
        f.write_str(trimmed)
    }
}
impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}
impl FromStr for NodeId {
    type Err = WireError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::from_text(s)
    }
}

/// A 32-bit node address as carried in headers (the hash of a [`NodeId`]).
///
/// Displayed as 8 lower-case hex digits, as `tipcmsg` and the kernel's
/// tools print it; [`NodeAddr::zcn`] gives the legacy `Z.C.N` form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeAddr(pub u32);

impl NodeAddr {
    /// "This node" / unspecified.
    pub const ZERO: NodeAddr = NodeAddr(0);
    /// The legacy zone.cluster.node form: zone bits 24–31, cluster 12–23, node 0–11.
    pub fn zcn(self) -> (u8, u16, u16) {
        ((self.0 >> 24) as u8, ((self.0 >> 12) & 0xfff) as u16, (self.0 & 0xfff) as u16)
    }
    /// Builds an address from the legacy zone.cluster.node triple.
    pub fn from_zcn(zone: u8, cluster: u16, node: u16) -> Result<NodeAddr, WireError> {
        if cluster > 0xfff || node > 0xfff {
            return Err(WireError::Overflow { field: "Z.C.N", value: u64::from(cluster.max(node)) });
        }
        Ok(NodeAddr((u32::from(zone) << 24) | (u32::from(cluster) << 12) | u32::from(node)))
    }
    /// Displays as legacy `Z.C.N`.
    pub fn display_zcn(self) -> String {
        let (z, c, n) = self.zcn();
        format!("{z}.{c}.{n}")
    }
}
impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}
impl fmt::Debug for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{:08x}>", self.0)
    }
}
impl FromStr for NodeAddr {
    type Err = WireError;
    /// Parses 8 hex digits (optionally `0x`-prefixed) or legacy `Z.C.N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || WireError::BadField { field: "node address", value: 0 };
        if s.contains('.') {
            let mut it = s.split('.');
            let z = it.next().and_then(|v| v.parse::<u8>().ok()).ok_or_else(bad)?;
            let c = it.next().and_then(|v| v.parse::<u16>().ok()).ok_or_else(bad)?;
            let n = it.next().and_then(|v| v.parse::<u16>().ok()).ok_or_else(bad)?;
            if it.next().is_some() {
                return Err(bad());
            }
            return NodeAddr::from_zcn(z, c, n);
        }
        let h = s.strip_prefix("0x").unwrap_or(s);
        u32::from_str_radix(h, 16).map(NodeAddr).map_err(|_| bad())
    }
}

macro_rules! u32_id {
    ($(#[$m:meta])* $name:ident, $fmt:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub u32);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, $fmt, self.0)
            }
        }
        impl From<u32> for $name {
            fn from(v: u32) -> Self {
                $name(v)
            }
        }
    };
}

u32_id!(
    /// A socket's 32-bit port number, unique within its node.
    PortId, "port:{}"
);
u32_id!(
    /// A service (name) type; for groups, the group id. Types below 64 are reserved.
    ServiceType, "type:{}"
);

impl ServiceType {
    /// The first type a socket may bind or join as a group: 0–63 belong to
    /// TIPC itself (node state, topology service, …), and the kernel refuses
    /// them with EACCES (net/tipc/socket.c, `TIPC_RESERVED_TYPES`).
    pub const FIRST_USER: ServiceType = ServiceType(64);

    /// Whether this type is reserved for TIPC itself (below [`ServiceType::FIRST_USER`]).
    pub fn is_reserved(self) -> bool {
        self < Self::FIRST_USER
    }
}
u32_id!(
    /// A service instance; for groups, the member id.
    Instance, "inst:{}"
);

/// A closed range of instances of one service type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ServiceRange {
    /// Service type.
    pub stype: ServiceType,
    /// Lowest instance.
    pub lower: Instance,
    /// Highest instance (≥ lower).
    pub upper: Instance,
}

impl ServiceRange {
    /// A range of one instance.
    pub fn single(stype: ServiceType, inst: Instance) -> Self {
        ServiceRange { stype, lower: inst, upper: inst }
    }
    /// Whether `inst` lies in the range.
    pub fn contains(&self, inst: Instance) -> bool {
        self.lower <= inst && inst <= self.upper
    }
    /// Whether two ranges of the same type overlap.
    pub fn overlaps(&self, o: &ServiceRange) -> bool {
        self.stype == o.stype && self.lower <= o.upper && o.lower <= self.upper
    }
}
impl fmt::Display for ServiceRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.stype, self.lower, self.upper)
    }
}

/// A socket address: node and port. In a group this identifies a member.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId {
    /// The member's node.
    pub node: NodeAddr,
    /// The member's port on that node.
    pub port: PortId,
}
impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.port.0)
    }
}
impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.port.0)
    }
}

/// A bearer's index on its node (0..=2; network plane `'A' + id`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct BearerId(pub u8);

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// Whether the group (multicast) bit is set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}
impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}
impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl FromStr for MacAddr {
    type Err = WireError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(':') {
            let slot = out.get_mut(n).ok_or(WireError::BadField { field: "mac", value: 0 })?;
            *slot = u8::from_str_radix(part, 16).map_err(|_| WireError::BadField { field: "mac", value: 0 })?;
            n += 1;
        }
        if n != 6 {
            return Err(WireError::BadField { field: "mac", value: n as u32 });
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_identities_hash_as_in_the_captures() {
        let a = NodeId::from_mac(MacAddr([0x52, 0x54, 0, 0, 0, 0x0a]));
        assert_eq!(a.hash_addr(), NodeAddr(0x525e_0000));
        assert_eq!(a.to_string(), "52540000000a");
        let b = NodeId::from_text("kernel-b").unwrap();
        assert_eq!(b.hash_addr(), NodeAddr(0x0e09_5f0c));
        assert_eq!(b.to_string(), "kernel-b");
        assert_eq!(NodeAddr(0x525e_0000).display_zcn(), "82.1504.0");
        assert_eq!(NodeAddr(0x0e09_5f0c).display_zcn(), "14.149.3852");
        assert!(NodeId::from_text("seventeen-chars-x").is_err());
        assert_eq!("1.1.10".parse::<NodeAddr>().unwrap(), NodeAddr(0x0100_100a));
        assert_eq!(NodeId::from_legacy_addr(NodeAddr(0x0100_100a)).to_string(), "100100a");
        assert_eq!("52:54:00:00:00:0a".parse::<MacAddr>().unwrap(), MacAddr([0x52, 0x54, 0, 0, 0, 0x0a]));
        // UDP, capture 14: 10.91.0.1 gives identity and address 0a5b0001
        let u = NodeId::from_ip("10.91.0.1".parse().unwrap());
        assert_eq!((u.to_string(), u.hash_addr()), ("0a5b0001".to_string(), NodeAddr(0x0a5b_0001)));
        let v6 = NodeId::from_ip("fd00::1".parse().unwrap());
        assert_eq!(v6.0, "fd00::1".parse::<core::net::Ipv6Addr>().unwrap().octets());
    }

    #[test]
    fn xor_zero_falls_back_to_or() {
        let mut id = [0u8; 16];
        id[0] = 1;
        id[4] = 1;
        assert_eq!(NodeId(id).hash_addr(), NodeAddr(0x0100_0000));
    }
}
