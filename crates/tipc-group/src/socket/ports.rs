//! The port table: which sockets exist on this node.

use std::collections::BTreeSet;

use tipc_wire::PortId;

use super::{Links, SocketLayer};

/// Open ports and the generator of new port numbers.
#[derive(Debug)]
pub(super) struct Ports {
    open: BTreeSet<PortId>,
    next: u32,
}

impl Ports {
    pub(super) fn new(seed: u64) -> Ports {
        Ports { open: BTreeSet::new(), next: (seed as u32 | 0x4000_0000) & 0x7fff_ffff }
    }
    pub(super) fn contains(&self, p: PortId) -> bool {
        self.open.contains(&p)
    }
}

impl SocketLayer {
    /// Opens a port (socket) and returns its id: odd, below 2³¹, never one
    /// in use, drawn from a sequence the seed starts.
    pub fn open_port(&mut self) -> PortId {
        loop {
            let t = &mut self.ports;
            t.next = t.next.wrapping_mul(1_103_515_245).wrapping_add(12_345) & 0x7fff_ffff;
            let p = PortId(t.next | 1);
            if t.open.insert(p) {
                return p;
            }
        }
    }

    /// Closes a port: leaves its group and withdraws its bindings. Closing
    /// a port that is not open does nothing.
    pub fn close_port(&mut self, p: PortId, links: &mut impl Links) {
        if self.groups.contains_key(&p) {
            let _ = self.group_leave(p, links);
        }
        for k in self.bindings.keys_of(p, None) {
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
