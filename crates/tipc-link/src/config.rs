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
    /// STATE, replicast, 128-bit identities and gap-ACK records.
    pub const OURS: u16 =
        SYN_BIT | BCAST_SYNCH | BCAST_STATE_NACK | BLOCK_FLOWCTL | BCAST_RCAST | NODE_ID128 | GAP_ACK_BLOCK;
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
    /// Our bearer's own media address (a MAC, or a UDP address and port),
    /// which discovery announces.
    pub media: MediaAddr,
    /// Our bearer's MTU (largest TIPC message).
    pub mtu: usize,
    /// Interface name sent in RESET/ACTIVATE.
    pub if_name: String,
    /// Link tolerance (50 ms – 30 s; default 1.5 s).
    pub tolerance: Duration,
    /// Send window in packets (default 50, up to 8191).
    pub window: u16,
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
