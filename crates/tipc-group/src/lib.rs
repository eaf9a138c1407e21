//! # tipc-group — name table, name distribution and communication groups (sans-IO)
//!
//! This crate will hold the kernel's `name_table.c`, `name_distr.c` and
//! `group.c` responsibilities as deterministic state machines: service
//! bindings and lookups (anycast round robin, multicast sets), bulk and
//! incremental name distribution, and TIPC communication groups — member
//! state machine, JOINED/LEFT events, per-member windows in 1 KiB blocks
//! (ADV / ACK / RECLAIM / REMIT) and broadcast ordering. It has no code
//! yet; the wire formats it will use live in [`tipc_wire`].
#![forbid(unsafe_code)]
