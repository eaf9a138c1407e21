//! # tipc-wire — the TIPC wire protocol as Linux 6.1 speaks it
//!
//! The bottom of the tipc-rs stack: every message format a userspace TIPC
//! node exchanges with Linux kernel nodes over Ethernet (ethertype 0x88CA),
//! and nothing else — no state, no IO, no clocks.
//!
//! Two levels, as in smoltcp:
//!
//! * [`Header`] is a checked, zero-copy view over a buffer (normally
//!   [`bytes::Bytes`]). [`Header::new_checked`] applies the kernel's receive
//!   validation once; afterwards no accessor can panic.
//! * Each message family has a parsed representation with `parse` and
//!   `emit`: [`DataMsg`], [`LinkProtoMsg`], [`DiscoveryMsg`],
//!   [`BcastProtoMsg`], [`BundleMsg`], [`FragmentMsg`], [`NameDistrMsg`],
//!   [`GroupProtoMsg`], [`ConnMgrMsg`], [`TunnelMsg`]; [`Msg`] dispatches on
//!   the user and prints any message on one line. Payloads stay slices of
//!   the receive buffer.
//!
//! Identifiers are typed ([`NodeId`], [`NodeAddr`], [`PortId`],
//! [`ServiceType`], [`Instance`], [`SeqNo`]); protocol code points keep
//! unknown values as `Unknown(n)`. [`pcap`] reads and writes capture files.
//!
//! ```
//! use bytes::Bytes;
//! use tipc_wire::{DataMsg, DataType, Msg, NodeAddr, PortId};
//!
//! let mut m = DataMsg::new(DataType::Direct, Bytes::from_static(b"hello"));
//! m.orig_node = NodeAddr(0x525e_0000);
//! m.dest_node = NodeAddr(0x0e09_5f0c);
//! m.dest_port = PortId(42);
//! let wire = Msg::Data(m.clone()).to_bytes().unwrap();
//! assert_eq!(wire.len(), 32 + 5);
//! assert_eq!(Msg::parse(wire).unwrap(), Msg::Data(m));
//! ```
#![forbid(unsafe_code)]

pub mod bundle;
mod data;
mod discovery;
mod error;
pub mod eth;
pub mod field;
pub mod fragment;
mod gap_ack;
mod header;
mod ids;
mod internal;
mod msg;
mod name_distr;
pub mod pcap;
mod seqno;
#[cfg(feature = "serde")]
mod serde_impls;
mod time;
mod user;

#[cfg(any(test, feature = "proptest"))]
pub mod strategy;

pub use bundle::{BundleBuilder, BundleIter, align4};
pub use data::{DataMsg, GRP_ACK_REQ};
pub use discovery::{DiscoveryMsg, MEDIA_TYPE_ETH, MEDIA_TYPE_UDP, MediaAddr, TxDest};
pub use error::WireError;
pub use eth::{ETH_HLEN, EthFrame};
pub use fragment::{Reassembler, Reassembly, fragment};
pub use gap_ack::{GapAckBlock, GapAckRecord};
pub use header::*;
pub use ids::*;
pub use internal::*;
pub use msg::{Msg, RawMsg};
pub use name_distr::PublItem;
pub use seqno::SeqNo;
pub use time::{Duration, Instant};
pub use user::*;

pub use bytes::Bytes;
