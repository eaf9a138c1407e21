//! A snapshot of a running node, printable as tables in the manner of the
//! kernel's `tipc link stat show`, `tipc nametable show` and `tipc node list`.

use std::fmt;

use tipc_group::Publication;
use tipc_link::LinkInfo;
use tipc_wire::{NodeAddr, NodeId};

pub use tipc_group::MemberStats;

/// Everything [`crate::Stack::stats`] reports.
#[derive(Clone, Debug)]
pub struct StackStats {
    /// Our identity.
    pub node_id: NodeId,
    /// Our address.
    pub address: Option<NodeAddr>,
    /// One row per peer link.
    pub links: Vec<LinkInfo>,
    /// Broadcast link: packets sent, retransmitted, in flight, waiting.
    pub bcast: (u64, u64, usize, usize),
    /// Group members seen by local group sockets.
    pub members: Vec<MemberStats>,
    /// The name table.
    pub names: Vec<Publication>,
    /// Bearer counters.
    pub bearer: Option<tipc_bearer::BearerStats>,
    /// The bearer: name, own media address, MTU.
    pub bearer_info: Option<tipc_bearer::IfInfo>,
    /// Link-layer counters.
    pub layer: tipc_link::LayerStats,
    /// Node-level counters (names, ports, groups).
    pub core: crate::core::CoreStats,
}

impl fmt::Display for StackStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = self.address.map_or("-".to_string(), |a| a.to_string());
        writeln!(f, "Node {} ({addr})", self.node_id)?;
        if let Some(b) = &self.bearer_info {
            let media = if matches!(b.media, tipc_wire::MediaAddr::Udp(_)) { "udp" } else { "eth" };
            writeln!(f, "Bearer {media}:{} at {}, MTU {}", b.name, b.media, b.mtu)?;
        }
        writeln!(
            f,
            "{:<18} {:<10} {:<12} {:>5} {:>4} {:>9} {:>9} {:>7} {:>6} {:>5} {:>6} {:>6}",
            "Peer", "Address", "State", "MTU", "Win", "Sent", "Received", "Retx", "NACKs", "Dups", "Defer", "Cong"
        )?;
        for l in &self.links {
            writeln!(
                f,
                "{:<18} {:<10} {:<12} {:>5} {:>4} {:>9} {:>9} {:>7} {:>6} {:>5} {:>6} {:>6}",
                l.peer_id.to_string(),
                l.peer.to_string(),
                format!("{:?}", l.state),
                l.mtu,
                l.window,
                l.stats.sent_pkts,
                l.stats.recv_pkts,
                l.stats.retransmitted,
                l.stats.recv_nacks,
                l.stats.duplicates,
                l.stats.deferred,
                if l.congested { "yes" } else { "no" }
            )?;
        }
        let (s, r, q, b) = self.bcast;
        writeln!(f, "broadcast-link: sent {s}, retransmitted {r}, in flight {q}, backlog {b}")?;
        if let Some(bs) = self.bearer {
            writeln!(
                f,
                "bearer: rx {} frames / {} bytes, tx {} frames / {} bytes, dropped {} (malformed {}, kernel {})",
                bs.rx_frames,
                bs.rx_bytes,
                bs.tx_frames,
                bs.tx_bytes,
                bs.rx_dropped(),
                bs.drop_malformed,
                bs.drop_kernel
            )?;
        }
        writeln!(
            f,
            "malformed frames {}, foreign {}, broadcast dropped {}, nodes refused {} / forgotten {}",
            self.layer.malformed,
            self.layer.foreign,
            self.layer.bcast_dropped,
            self.layer.peers_refused,
            self.layer.peers_forgotten
        )?;
        writeln!(
            f,
            "messages: malformed {}, no port {}, bad name updates {}, names refused {}, not member {}",
            self.core.malformed, self.core.no_port, self.core.bad_names, self.core.names_refused, self.core.not_member
        )?;
        if !self.members.is_empty() {
            writeln!(
                f,
                "{:<12} {:<22} {:>8} {:<11} {:>7} {:>6} {:>6}",
                "Socket", "Member", "Instance", "State", "Window", "Adv", "Queued"
            )?;
            for m in &self.members {
                writeln!(
                    f,
                    "{:<12} {:<22} {:>8} {:<11} {:>7} {:>6} {:>6}",
                    m.socket.0,
                    m.member.to_string(),
                    m.instance,
                    format!("{:?}", m.state),
                    m.window,
                    m.advertised,
                    m.queued
                )?;
            }
        }
        writeln!(f, "{:<10} {:<10} {:<10} {:<8} {:<12} Node", "Type", "Lower", "Upper", "Scope", "Port")?;
        for p in &self.names {
            writeln!(
                f,
                "{:<10} {:<10} {:<10} {:<8} {:<12} {}",
                p.range.stype.0,
                p.range.lower.0,
                p.range.upper.0,
                p.scope.name(),
                p.port.0,
                p.node
            )?;
        }
        Ok(())
    }
}
