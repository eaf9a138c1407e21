//! # tipc — userspace TIPC over raw Ethernet
//!
//! The facade of the tipc-rs workspace. It will hold the stack runtime (the
//! thread that drives the sans-IO link and group cores over the Ethernet
//! bearer), the seeded simulator and the public group-socket API. Today it
//! re-exports the wire codec ([`wire`]) and the bearer ([`bearer`]) and
//! holds the shared test tooling: the seeded fault model ([`fault`]), the
//! network-namespace rig ([`netns`]) and the fault-injecting relay
//! ([`relay`]).
#![forbid(unsafe_code)]

pub mod fault;
pub mod netns;
pub mod relay;

pub use tipc_bearer_eth as bearer;
pub use tipc_wire as wire;
