//! # tipc-link — discovery, reliable links and the broadcast link (sans-IO)
//!
//! This crate will hold the kernel's `discover.c`, `link.c`, `node.c` and
//! `bcast.c` responsibilities as deterministic state machines driven by
//! `handle_frame` / `handle_timeout` / `poll_transmit` / `poll_timeout` /
//! `poll_event`, with time passed in: neighbour discovery with the
//! kernel's back-off and address trial, the link FSM with sessions,
//! RESET / ACTIVATE / STATE supervision, sequenced delivery with windows,
//! acks, gap reports and retransmission, fragmentation and bundling, and the
//! reliable broadcast link. It has no code yet; the wire formats it will
//! use live in [`tipc_wire`].
#![forbid(unsafe_code)]
