//! How a multicast travels: one copy per destination node over unicast
//! links (replicast) or one message on the broadcast link, chosen per
//! sending socket by the kernel's rule (net/tipc/bcast.c,
//! `tipc_bcast_select_xmit_method`).

use std::collections::{BTreeMap, BTreeSet};

use tipc_wire::{DataMsg, Duration, Instant, Msg, NodeAddr, PortId};

use super::{Links, SocketLayer};

/// A multicast is replicated over unicast links when it reaches at most
/// `1 + peers × REPLICAST_RATIO / 100` nodes (the kernel's default
/// `rc_ratio` and its `bc_threshold`, net/tipc/bcast.c).
pub const REPLICAST_RATIO: usize = 10;

/// How long a method chosen by the automatic rule sticks before the rule may
/// change it (the kernel's `TIPC_METHOD_EXPIRE` of 5 s, net/tipc/bcast.c), so a
/// sender's messages to one receiver cannot overtake each other.
pub const METHOD_EXPIRE: Duration = Duration::from_secs(5);

/// How multicasts of a socket travel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum McastMethod {
    /// The kernel's rule: replicast to few nodes, the broadcast link to many.
    #[default]
    Auto,
    /// Always one copy per destination node over unicast links.
    Replicast,
    /// Always the broadcast link.
    Broadcast,
}

/// Each socket's method, and the last automatic choice with its time.
#[derive(Debug, Default)]
pub(super) struct Methods {
    set: BTreeMap<PortId, McastMethod>,
    auto: BTreeMap<PortId, (bool, Instant)>,
}

impl Methods {
    pub(super) fn forget(&mut self, port: PortId) {
        self.set.remove(&port);
        self.auto.remove(&port);
    }

    /// Whether a multicast from `port` to `dests` of `peers` nodes goes by
    /// replicast (`force`: it must, e.g. an ack-requesting group broadcast).
    fn replicast(&mut self, port: PortId, dests: usize, peers: usize, force: bool, now: Instant) -> bool {
        match self.set.get(&port).copied().unwrap_or_default() {
            _ if force => true,
            McastMethod::Replicast => true,
            McastMethod::Broadcast => false,
            McastMethod::Auto => {
                let want = dests <= 1 + peers * REPLICAST_RATIO / 100;
                match self.auto.get(&port).copied() {
                    Some((cur, since)) if cur != want && now.since(since) < METHOD_EXPIRE => cur,
                    Some((cur, _)) if cur == want => cur,
                    _ => {
                        self.auto.insert(port, (want, now));
                        want
                    }
                }
            }
        }
    }
}

impl SocketLayer {
    /// Chooses how multicasts from `port` travel (tipcmsg's `-m`).
    pub fn set_mcast_method(&mut self, port: PortId, m: McastMethod) {
        self.mcast.set.insert(port, m);
    }

    /// Sends `m` (a multicast or group broadcast/multicast) to those of
    /// `nodes` with a link up, by replicast or on the broadcast link.
    pub(super) fn multicast_out(
        &mut self,
        m: DataMsg,
        nodes: &BTreeSet<NodeAddr>,
        force_replicast: bool,
        links: &mut impl Links,
    ) {
        let reachable = nodes.iter().filter(|n| links.is_up(**n)).count();
        if reachable == 0 {
            return;
        }
        let peers = links.up_count();
        let now = self.now;
        if self.mcast.replicast(m.orig_port, reachable, peers, force_replicast, now) {
            let up: Vec<NodeAddr> = nodes.iter().copied().filter(|n| links.is_up(*n)).collect();
            for n in up {
                let mut c = m.clone();
                c.dest_node = n;
                if let Ok(b) = Msg::Data(c).to_bytes() {
                    self.stats.replicast_copies += 1;
                    self.outbox.send_keep(now, n, b, links);
                }
            }
        } else {
            let mut c = m;
            c.dest_node = NodeAddr(0);
            if let Ok(b) = Msg::Data(c).to_bytes() {
                self.stats.bcast_sends += 1;
                self.outbox.broadcast_keep(now, b, links);
            }
        }
    }
}
