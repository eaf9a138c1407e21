//! The port table: which sockets exist on this node.

use std::collections::BTreeMap;

use tipc_wire::PortId;

use super::{Links, SocketLayer};

/// Open ports (true: a connection socket) and the generator of new port
/// numbers.
#[derive(Debug)]
pub(super) struct Ports {
    open: BTreeMap<PortId, bool>,
    next: u32,
}

impl Ports {
    pub(super) fn new(seed: u64) -> Ports {
        Ports { open: BTreeMap::new(), next: (seed as u32 | 0x4000_0000) & 0x7fff_ffff }
    }
    pub(super) fn contains(&self, p: PortId) -> bool {
        self.open.contains_key(&p)
    }
    /// Whether `p` is open as a connection socket (SEQPACKET, STREAM).
    pub(super) fn is_conn(&self, p: PortId) -> bool {
        self.open.get(&p).copied().unwrap_or(false)
    }
    /// Every open port, ascending, and whether it is a connection socket's.
    pub(super) fn iter(&self) -> impl Iterator<Item = (PortId, bool)> + '_ {
        self.open.iter().map(|(p, c)| (*p, *c))
    }
}

impl SocketLayer {
    /// Opens a connectionless port (socket: RDM, or a group member) and
    /// returns its id: odd, below 2³¹, never one in use, drawn from a
    /// sequence the seed starts.
    pub fn open_port(&mut self) -> PortId {
        self.open_kind(false)
    }

    /// Opens a port for a connection socket (SEQPACKET or STREAM; see
    /// [`SocketLayer::listen`] and [`SocketLayer::connect`]); numbered as
    /// [`SocketLayer::open_port`].
    pub fn open_conn_port(&mut self) -> PortId {
        self.open_kind(true)
    }

    fn open_kind(&mut self, conn: bool) -> PortId {
        loop {
            let t = &mut self.ports;
            t.next = t.next.wrapping_mul(1_103_515_245).wrapping_add(12_345) & 0x7fff_ffff;
            // both parities, alternating: the lowest bit picks a socket's
            // link where two share a node's traffic (its selector)
            if t.next == 0 {
                continue;
            }
            let p = PortId(t.next);
            if let std::collections::btree_map::Entry::Vacant(e) = t.open.entry(p) {
                e.insert(conn);
                return p;
            }
        }
    }

    /// Closes a port: leaves its group, ends its connection or stops its
    /// listening (see [`SocketLayer::listen`]), and withdraws its bindings.
    /// Closing a port that is not open does nothing.
    pub fn close_port(&mut self, p: PortId, links: &mut impl Links) {
        if self.groups.contains_key(&p) {
            let _ = self.group_leave(p, links);
        }
        self.close_conn(p, links);
        // newest binding first, as the kernel withdraws a closing socket's
        for k in self.bindings.keys_of(p, None).into_iter().rev() {
            self.withdraw_key(k, links);
        }
        self.ports.open.remove(&p);
        self.mcast.forget(p);
    }

    /// Whether `p` is an open port.
    pub fn is_open(&self, p: PortId) -> bool {
        self.ports.contains(p)
    }
}
