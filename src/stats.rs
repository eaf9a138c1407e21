//! A snapshot of a running node, printable as tables in the manner of the
//! kernel's `tipc link stat show`, `tipc nametable show` and `tipc node list`.

use std::fmt;

use tipc_group::Publication;
use tipc_link::LinkInfo;
use tipc_wire::{NodeAddr, NodeId};

pub use tipc_group::MemberStats;

/// Everything [`crate::Stack::stats`] reports.
///
/// It serialises with serde (`serde_json::to_string(&stack.stats())`):
/// node identities, node addresses and media addresses as the text the
/// kernel's `tipc` tool prints (an address as 8 hex digits), scopes by
/// name, states by their variant name, durations (a link's tolerance) in
/// whole microseconds, everything else as numbers. Its `Display` prints
/// the same snapshot as tables.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StackStats {
    /// Our identity.
    pub node_id: NodeId,
    /// Our address.
    pub address: Option<NodeAddr>,
    /// One row per peer link.
    pub links: Vec<LinkInfo>,
    /// Broadcast link: packets sent, retransmitted, in flight, waiting
    /// (in JSON an object with those four names).
    #[serde(serialize_with = "bcast_json")]
    pub bcast: (u64, u64, usize, usize),
    /// Group members seen by local group sockets.
    pub members: Vec<MemberStats>,
    /// Every open socket of this node: kind, bindings, group, peer.
    pub sockets: Vec<tipc_group::SocketInfo>,
    /// The name table.
    pub names: Vec<Publication>,
    /// Bearer counters.
    pub bearer: Option<tipc_bearer::BearerStats>,
    /// The bearer: name, own media address, MTU.
    pub bearer_info: Option<tipc_bearer::IfInfo>,
    /// Every enabled bearer (bearer 0 included), with its settings and
    /// counters: what `tipc bearer show` and `tipc bearer get` give.
    pub bearers: Vec<BearerRow>,
    /// Link-layer counters.
    pub layer: tipc_link::LayerStats,
    /// Node-level counters (names, ports, groups).
    pub core: crate::core::CoreStats,
    /// Encryption: frames encrypted and opened, drops by reason, key
    /// exchange, key slots in use (never key material).
    pub crypto: tipc_crypto::CryptoStats,
}

/// One enabled bearer of a node.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BearerRow {
    /// Its id (0–2, in enable order).
    pub id: u8,
    /// Name, own media address, MTU, link priority, tolerance, window.
    pub settings: tipc_link::BearerSettings,
    /// Counters of its socket.
    pub stats: Option<tipc_bearer::BearerStats>,
    /// A UDP bearer's replicast peers, given and learned from discovery
    /// (empty in multicast mode and on Ethernet).
    pub replicast: Vec<std::net::SocketAddr>,
}

/// The broadcast link's four figures as a JSON object.
fn bcast_json<S: serde::Serializer>(b: &(u64, u64, usize, usize), s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("BcastStats", 4)?;
    st.serialize_field("sent", &b.0)?;
    st.serialize_field("retransmitted", &b.1)?;
    st.serialize_field("in_flight", &b.2)?;
    st.serialize_field("waiting", &b.3)?;
    st.end()
}

impl BearerRow {
    /// The kernel's bearer name: `eth:IFACE` or `udp:NAME`.
    pub fn name(&self) -> String {
        let media = if matches!(self.settings.media, tipc_wire::MediaAddr::Udp(_)) { "udp" } else { "eth" };
        format!("{media}:{}", self.settings.name)
    }
}

impl fmt::Display for StackStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = self.address.map_or("-".to_string(), |a| a.to_string());
        writeln!(f, "Node {} ({addr})", self.node_id)?;
        for b in &self.bearers {
            let s = &b.settings;
            writeln!(
                f,
                "Bearer {} {} at {}, MTU {}, priority {}, tolerance {} ms, window {}",
                b.id,
                b.name(),
                s.media,
                s.mtu,
                s.priority,
                s.tolerance().as_micros() / 1000,
                s.window
            )?;
        }
        writeln!(
            f,
            "{:<18} {:<10} {:<3} {:<12} {:<7} {:>5} {:>4} {:>9} {:>9} {:>7} {:>6} {:>5} {:>6} {:>6} {:>5} {:>6}",
            "Peer",
            "Address",
            "Br",
            "State",
            "Active",
            "MTU",
            "Win",
            "Sent",
            "Received",
            "Retx",
            "NACKs",
            "Dups",
            "Defer",
            "Cong",
            "Fover",
            "Synch"
        )?;
        for l in &self.links {
            writeln!(
                f,
                "{:<18} {:<10} {:<3} {:<12} {:<7} {:>5} {:>4} {:>9} {:>9} {:>7} {:>6} {:>5} {:>6} {:>6} {:>5} {:>6}",
                l.peer_id.to_string(),
                l.peer.to_string(),
                l.bearer,
                format!("{:?}", l.state),
                if l.active {
                    "active"
                } else if l.state == tipc_link::LinkState::Established {
                    "standby"
                } else {
                    "-"
                },
                l.mtu,
                l.window,
                l.stats.sent_pkts,
                l.stats.recv_pkts,
                l.stats.retransmitted,
                l.stats.recv_nacks,
                l.stats.duplicates,
                l.stats.deferred,
                if l.congested { "yes" } else { "no" },
                l.stats.failovers,
                l.stats.synchs
            )?;
        }
        let (s, r, q, b) = self.bcast;
        writeln!(f, "broadcast-link: sent {s}, retransmitted {r}, in flight {q}, backlog {b}")?;
        for (id, bs) in self.bearers.iter().filter_map(|b| b.stats.map(|s| (b.id, s))) {
            writeln!(
                f,
                "bearer {id}: rx {} frames / {} bytes, tx {} frames / {} bytes, dropped {} (malformed {}, kernel {})",
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
        let c = &self.crypto;
        if c.master || c.tx_active != 0 || c.tx_pending != 0 || c.rx_dropped() > 0 {
            writeln!(
                f,
                "crypto: AES-{}-GCM{}, tx key {} (pending {}), encrypted {}, opened {}, dropped {} \
                 (no key {}, bad tag {}, replay {}, unknown key {}, clear {}, malformed {}), \
                 rekeys {}, switches {}, key messages sent {} / taken {} / refused {}",
                c.bits,
                if c.master { " master" } else { "" },
                c.tx_active,
                c.tx_pending,
                c.tx_encrypted,
                c.rx_decrypted,
                c.rx_dropped(),
                c.rx_no_key,
                c.rx_bad_tag,
                c.rx_replay,
                c.rx_unknown_key,
                c.rx_clear,
                c.rx_malformed,
                c.rekeys,
                c.tx_switches,
                c.key_msgs_sent,
                c.key_msgs_received,
                c.key_msgs_refused
            )?;
        }
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
