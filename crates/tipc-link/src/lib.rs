//! # tipc-link — discovery, reliable links and the broadcast link (sans-IO)
//!
//! The kernel's `discover.c`, `link.c`, `node.c` and `bcast.c` as one
//! deterministic state machine, [`LinkLayer`]: address trial and neighbour
//! discovery with the kernel's back-off on each of up to three bearers
//! ([`LinkLayer::enable_bearer`]), links with sessions and RESET /
//! ACTIVATE / STATE — up to two parallel ones per peer node, with the
//! kernel's active slots, failover and synch over the tunnel protocol
//! (net/tipc/node.c `tipc_node_check_state`, link.c
//! `tipc_link_tnl_prepare`) —, supervision by probes within the
//! tolerance, sequenced delivery with a send window, acks, NACKs (gap
//! reports and gap-ACK blocks) and rate-limited retransmission, a deferred
//! queue for out-of-order packets, per-importance backlog limits that push
//! back on senders, fragmentation and bundling, and the broadcast link
//! (sending with a window every peer acknowledges, reception with acks in
//! every packet).
//!
//! [`LinkLayer`] wires parts that each own their state: discovery (our
//! address, the trial and request timers per bearer), the peer nodes
//! (each with its links), the tunnel protocol between parallel links, the
//! broadcast link, and one table of every timer keyed by
//! [`TimerKind`], from which [`LinkLayer::poll_timeout`] and
//! [`LinkLayer::next_timer`] are computed.
//!
//! It never reads a clock, sleeps, locks or does IO. Time is passed in:
//!
//! ```
//! use tipc_link::{LinkConfig, LinkLayer};
//! use tipc_wire::{Instant, MacAddr, NodeId};
//!
//! let cfg = LinkConfig::new(NodeId::from_text("node-a").unwrap(), MacAddr([2, 0, 0, 0, 0, 1]), 1500);
//! let mut layer = LinkLayer::new(cfg, Instant::ZERO);
//! layer.handle_timeout(Instant::ZERO);
//! // the address trial starts with a broadcast DSC_TRIAL
//! let t = layer.poll_transmit().unwrap();
//! assert!(t.dst.is_broadcast());
//! assert!(layer.poll_timeout().is_some());
//! ```
#![forbid(unsafe_code)]

mod bcast;
mod config;
mod crypto;
mod discovery;
mod error;
mod event;
mod layer;
mod link;
mod node;
mod stats;
#[cfg(test)]
mod testkit;
mod timers;
mod tunnel;

pub use bcast::BC_WINDOW;
pub use config::{AddrMode, BearerSettings, DEFAULT_PRIORITY, LinkConfig, MAX_BEARERS, MAX_PRIORITY, caps};
pub use error::{LinkError, Refused};
pub use event::{Conflict, LinkEvent, Transmit, TxDest};
pub use layer::LinkLayer;
pub use link::{ACK_EVERY, FAST_PROBE, LinkState, RCV_WINDOW};
pub use node::{LinkInfo, MAX_LINKS_PER_NODE, MAX_PEERS, PEER_EXPIRY};
pub use stats::{LayerStats, LinkStats};
pub use timers::TimerKind;
/// The crypto layer's types the link layer takes and reports.
pub use tipc_crypto::{CryptoStats, KeyRole, KeySpec};
