//! Configuration of the link layer.

use tipc_wire::{Duration, MediaAddr, NodeAddr, NodeId};

/// Capability bits (discovery word 1 bits 15–27).
pub mod caps {
    /// Connection set-up needs SYN.
    pub const SYN_BIT: u16 = 0x001;
    /// Broadcast receive sync from the BCAST_PROTOCOL init message.
    pub const BCAST_SYNCH: u16 = 0x002;
    /// Broadcast gaps reported inside unicast STATE messages.
    pub const BCAST_STATE_NACK: u16 = 0x004;
    /// Connection flow control in blocks.
    pub const BLOCK_FLOWCTL: u16 = 0x008;
    /// Accepts replicast.
    pub const BCAST_RCAST: u16 = 0x010;
    /// 16-byte node identity in discovery.
    pub const NODE_ID128: u16 = 0x020;
    /// STATE messages numbered.
    pub const LINK_PROTO_SEQNO: u16 = 0x040;
    /// Multicast method switching.
    pub const MCAST_RBCTL: u16 = 0x080;
    /// Gap-ACK records in STATE messages.
    pub const GAP_ACK_BLOCK: u16 = 0x100;
    /// Enhanced tunnelling.
    pub const TUNNEL_ENHANCED: u16 = 0x200;
    /// Stream Nagle.
    pub const NAGLE: u16 = 0x400;
    /// Name updates on the broadcast link.
    pub const NAMED_BCAST: u16 = 0x800;

    /// What this implementation advertises: connection set-up by SYN and
    /// connection flow control in 1 KiB blocks (tipc-group's connection
    /// sockets), broadcast sync from the init message, broadcast NACKs in
    /// STATE, replicast, 128-bit identities, gap-ACK records and enhanced
    /// tunnelling (header-only SYNCH, fragmented FAILOVER).
    pub const OURS: u16 = SYN_BIT
        | BCAST_SYNCH
        | BCAST_STATE_NACK
        | BLOCK_FLOWCTL
        | BCAST_RCAST
        | NODE_ID128
        | GAP_ACK_BLOCK
        | TUNNEL_ENHANCED;
}

/// How the node's 32-bit address is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrMode {
    /// The kernel's way: the hash of the identity, confirmed by a 1 s trial.
    Hashed,
    /// A fixed legacy address (`Z.C.N`); no trial.
    Fixed(NodeAddr),
}

/// Link-layer configuration of one node.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// The node identity.
    pub node_id: NodeId,
    /// How the address is chosen.
    pub addr_mode: AddrMode,
    /// Cluster (network) id; default 4711.
    pub net_id: u32,
    /// The first bearer's (bearer 0's) own media address (a MAC, or a UDP
    /// address and port), which discovery announces. Further bearers are
    /// enabled with [`crate::LinkLayer::enable_bearer`].
    pub media: MediaAddr,
    /// The first bearer's MTU (largest TIPC message).
    pub mtu: usize,
    /// The first bearer's name: the interface name sent in RESET/ACTIVATE
    /// and used in link names (`eth0`, or the part after `udp:`).
    pub if_name: String,
    /// The first bearer's link tolerance (50 ms – 30 s; default 1.5 s).
    pub tolerance: Duration,
    /// The first bearer's send window in packets (default 50, up to 8191).
    pub window: u16,
    /// The first bearer's link priority (0–31, default 10): of two links to
    /// one node the higher-priority one carries the traffic, equal ones
    /// share it (net/tipc/node.c `__tipc_node_link_up`).
    pub priority: u8,
    /// Advertised capabilities ([`caps::OURS`] by default).
    pub capabilities: u16,
    /// Seed of every random choice (signature, sessions).
    pub seed: u64,
    /// Address trial length (kernel: 1 s).
    pub trial_period: Duration,
}

impl LinkConfig {
    /// Defaults for a node with `node_id` on a bearer with media address
    /// `media` (a [`tipc_wire::MacAddr`] or a UDP `SocketAddr`) and `mtu`.
    pub fn new(node_id: NodeId, media: impl Into<MediaAddr>, mtu: usize) -> Self {
        LinkConfig {
            node_id,
            addr_mode: AddrMode::Hashed,
            net_id: 4711,
            media: media.into(),
            mtu,
            if_name: "eth0".into(),
            tolerance: Duration::from_millis(1500),
            window: 50,
            priority: DEFAULT_PRIORITY,
            capabilities: caps::OURS,
            seed: 0x7469_7063,
            trial_period: Duration::from_millis(1000),
        }
    }
    /// The tolerance clamped to the legal range.
    pub fn tolerance(&self) -> Duration {
        Duration::from_micros(self.tolerance.as_micros().clamp(50_000, 30_000_000))
    }
    /// Supervision interval: min(tolerance / 4, 500 ms).
    pub fn tick(&self) -> Duration {
        let t = self.tolerance().div(4);
        if t > Duration::from_millis(500) { Duration::from_millis(500) } else { t }
    }
}

/// The default link priority of a bearer (net/tipc/bearer.h
/// `TIPC_MEDIA_LINK_PRI`).
pub const DEFAULT_PRIORITY: u8 = 10;
/// The highest link priority (net/tipc/bearer.h `TIPC_MAX_LINK_PRI`).
pub const MAX_PRIORITY: u8 = 31;
/// Most bearers one node runs (net/tipc/bearer.h `MAX_BEARERS`); bearer
/// ids are 0, 1 and 2, in the order they are enabled.
pub const MAX_BEARERS: usize = 3;

/// One bearer's settings: its media address and the link settings `tipc
/// bearer set` changes (priority, tolerance, window, MTU), used for every
/// link the bearer makes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BearerSettings {
    /// Our media address on the bearer (a MAC, or a UDP address and port),
    /// which its discovery announces.
    pub media: MediaAddr,
    /// Largest TIPC message on the bearer, in bytes.
    pub mtu: usize,
    /// The bearer's name as links name it (`eth1`, or the part after `udp:`).
    pub name: String,
    /// Link priority, 0–31 (default [`DEFAULT_PRIORITY`]).
    pub priority: u8,
    /// Link tolerance (clamped to 50 ms – 30 s).
    pub tolerance: Duration,
    /// Send window in packets (16–8191).
    pub window: u16,
}

impl BearerSettings {
    /// A bearer at `media` named `name` with `mtu` and the default
    /// priority, tolerance (1.5 s) and window (50).
    pub fn new(media: impl Into<MediaAddr>, name: &str, mtu: usize) -> BearerSettings {
        BearerSettings {
            media: media.into(),
            mtu,
            name: name.to_string(),
            priority: DEFAULT_PRIORITY,
            tolerance: Duration::from_millis(1500),
            window: 50,
        }
    }
    /// The tolerance clamped to the legal range.
    pub fn tolerance(&self) -> Duration {
        Duration::from_micros(self.tolerance.as_micros().clamp(50_000, 30_000_000))
    }
}

impl LinkConfig {
    /// The first bearer's settings, as the config gives them.
    pub fn first_bearer(&self) -> BearerSettings {
        BearerSettings {
            media: self.media,
            mtu: self.mtu,
            name: self.if_name.clone(),
            priority: self.priority.min(MAX_PRIORITY),
            tolerance: self.tolerance,
            window: self.window,
        }
    }
}
