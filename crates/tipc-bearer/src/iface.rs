//! Interface lookup: index, MAC, state and MTU.

use std::os::fd::AsRawFd;

use tipc_wire::MacAddr;

use crate::{BearerError, sys};

/// The smallest MTU TIPC accepts (largest header plus an internal header).
pub const MIN_MTU: usize = 100;

/// What the bearer knows about its interface (on UDP: its name, address
/// and MTU).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct IfInfo {
    /// Interface name (on UDP the bearer's name).
    pub name: String,
    /// Kernel interface index (Ethernet; 0 on UDP).
    pub index: u32,
    /// The bearer's own media address, which discovery announces: the
    /// MAC, or the UDP address and port.
    pub media: tipc_wire::MediaAddr,
    /// MTU in bytes (the largest TIPC message, Ethernet header excluded).
    pub mtu: usize,
}

/// Looks up `name` in the calling thread's network namespace and returns its
/// index and MAC; fails if it is missing or down (via `pnet`).
pub fn lookup_interface(name: &str) -> Result<(u32, MacAddr), BearerError> {
    lookup(name)
}

/// Looks up `name` in the calling thread's network namespace: index, MAC and
/// whether it is up (via `pnet`). The MTU is read separately once a socket exists.
pub(crate) fn lookup(name: &str) -> Result<(u32, MacAddr), BearerError> {
    let ifs = pnet_datalink::interfaces();
    let i = ifs.iter().find(|i| i.name == name).ok_or_else(|| BearerError::NoSuchInterface(name.to_string()))?;
    if !i.is_up() {
        return Err(BearerError::InterfaceDown(name.to_string()));
    }
    let mac = i.mac.map(|m| MacAddr(m.octets())).unwrap_or_default();
    Ok((i.index, mac))
}

/// Reads the MTU through an open socket and checks it against [`MIN_MTU`].
pub(crate) fn mtu(sock: &socket2::Socket, name: &str) -> Result<usize, BearerError> {
    let mtu = sys::if_mtu(sock.as_raw_fd(), name).map_err(BearerError::io("SIOCGIFMTU"))?;
    if mtu < MIN_MTU {
        return Err(BearerError::MtuTooSmall { name: name.to_string(), mtu, min: MIN_MTU });
    }
    Ok(mtu)
}
