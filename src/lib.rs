//! # tipc — userspace TIPC over raw Ethernet
//!
//! The facade of the tipc-rs workspace: [`NodeCore`] (the link layer and
//! the port table of one node, sans-IO), the seeded in-memory simulator
//! ([`sim`]), the shared fault model ([`fault`]), the network-namespace rig
//! ([`netns`]) and fault relay ([`relay`]), and re-exports of the layers:
//! [`wire`], [`link`], [`bearer`].
#![forbid(unsafe_code)]

pub mod core;
pub mod error;
pub mod fault;
pub mod netns;
pub mod relay;
pub mod sim;
pub mod stack;
pub mod stats;

pub use crate::core::{CoreEvent, McastMethod, NodeCore, PortMessage};
pub use crate::error::Error;
pub use crate::stack::{GroupDelivery, GroupSocket, PortSocket, ServiceEvent, Stack, StackBuilder, StackEvent};
pub use bytes::Bytes;
pub use tipc_bearer_eth as bearer;
pub use tipc_group as group;
pub use tipc_group::{GroupEvent, GroupSpec, Mode};
pub use tipc_link as link;
pub use tipc_wire as wire;
pub use tipc_wire::Scope;
