//! # tipc — userspace TIPC over raw Ethernet
//!
//! The facade of the tipc-rs workspace. It will hold the stack runtime (the
//! thread that drives the sans-IO link and group cores over the Ethernet
//! bearer), the seeded simulator and the public group-socket API. For now it
//! re-exports the wire codec, [`wire`].
#![forbid(unsafe_code)]

pub use tipc_wire as wire;
