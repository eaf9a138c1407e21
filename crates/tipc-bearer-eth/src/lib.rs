//! # tipc-bearer-eth — the AF_PACKET Ethernet bearer
//!
//! This crate will move TIPC frames (ethertype 0x88CA) on one real
//! interface: a raw packet socket bound to the interface, batched receive
//! and send on dedicated threads, filtering of foreign ethertypes and our own
//! echoes, and counters. It is the only crate with `unsafe` code (in one
//! syscall module). It has no code yet.
#![deny(unsafe_code)]
