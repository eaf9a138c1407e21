//! # tipc-testkit — the rigs of the tipc-rs tests, benches and demo
//!
//! Not part of the published library: the root package `tipc-rs` has this
//! crate as a dev-dependency, for its veth tests, its benches and the veth
//! mode of `examples/cluster_demo.rs`.
//!
//! * [`netns`]: private network namespaces joined by veth pairs or a
//!   bridge ([`netns::Lab`], [`netns::Netns`]), built with `ip` and removed on drop.
//! * [`relay`]: a seeded fault-injecting frame relay between namespaces
//!   ([`relay::Relay`]), applying `tipc_rs::fault` to every frame it switches.
//! * [`sys`]: the system calls the rigs, tests and benches need — entering
//!   a namespace, CPU pinning, dropping capabilities, raw frame IO — made
//!   through `nix`, `socket2` and `caps`. The crate has no `unsafe` code of
//!   its own; the raw socket itself is the bearer's
//!   ([`tipc_bearer::open_packet_socket`]).
#![forbid(unsafe_code)]

pub mod netns;
pub mod relay;
pub mod sys;
