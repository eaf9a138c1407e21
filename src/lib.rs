//! # tipc-rs — userspace TIPC over raw Ethernet
//!
//! The package is `tipc-rs` and its library is `tipc_rs`: the name `tipc` on
//! the crate registry belongs to bindings of the kernel's AF_TIPC sockets,
//! and a program may well use both side by side.
//!
//! The facade of the tipc-rs workspace: [`NodeCore`] (the link layer and
//! the port table of one node, sans-IO), the seeded in-memory simulator
//! ([`sim`]), the shared fault model ([`fault`]), and re-exports of the
//! layers: [`wire`], [`link`], [`bearer`]. (The network-namespace rig and
//! the fault relay that the veth tests, benches and demo run on are in the
//! workspace's unpublished `tipc-testkit` crate.)
//!
//! On a real interface, [`Stack`] runs a node and hands out [`PortSocket`]s
//! and [`GroupSocket`]s (see their docs). The same protocol code runs on
//! the simulator without privileges — two nodes, one group, a broadcast:
//!
//! ```
//! use tipc_rs::sim::SimNet;
//! use tipc_rs::wire::{Duration, Instance, ServiceType};
//! use tipc_rs::{CoreEvent, Dest, GroupEvent, GroupSpec, Mode, Scope, SendOpts};
//!
//! let mut net = SimNet::new(7);
//! let [a, b] = [net.add_node("node-a", |_| {}), net.add_node("node-b", |_| {})];
//! net.run_for(Duration::from_secs(2)); // address trial, discovery, link up
//! let spec = |i| GroupSpec { stype: ServiceType(4242), instance: Instance(i), scope: Scope::Cluster,
//!                            loopback: false, member_events: true };
//! let pa = net.with(a, |c, _| c.open_port());
//! let pb = net.with(b, |c, _| c.open_port());
//! net.with(a, |c, _| c.group_join(pa, spec(1))).unwrap();
//! net.with(b, |c, _| c.group_join(pb, spec(2))).unwrap();
//! net.run_for(Duration::from_millis(100));
//! net.with(a, |c, now| c.send(now, pa, Dest::GroupBroadcast, "hi".into(), SendOpts::default())).unwrap();
//! net.run_for(Duration::from_millis(100));
//! let got: Vec<GroupEvent> = net.take_events(b).into_iter().filter_map(|(_, e)| match e {
//!     CoreEvent::Group { event, .. } => Some(event),
//!     _ => None,
//! }).collect();
//! assert!(matches!(got[0], GroupEvent::MemberUp { instance: Instance(1), .. }));
//! assert!(matches!(&got[1], GroupEvent::Message { mode: Mode::Broadcast, data, .. } if &data[..] == b"hi"));
//! ```
#![forbid(unsafe_code)]

pub mod core;
pub mod error;
pub mod fault;
pub mod sim;
pub mod stack;
pub mod stats;

pub use crate::core::{CoreEvent, CoreStats, McastMethod, NodeCore, PortMessage};
pub use crate::error::Error;
pub use crate::stack::ReadyFd;
#[cfg(feature = "tokio")]
pub use crate::stack::{AsyncConnSocket, AsyncGroupSocket, AsyncPortSocket};
pub use crate::stack::{
    BearerSpec, CONNECT_TIMEOUT, ConnKind, ConnSocket, Eth, GroupDelivery, GroupSocket, LinkSettings, PortSocket,
    Stack, StackBuilder, StackEvent, Subscriber, Udp,
};
pub use bytes::Bytes;
pub use tipc_bearer as bearer;
pub use tipc_crypto as crypto;
pub use tipc_group as group;
pub use tipc_group::topology;
pub use tipc_group::{ConnectTo, Dest, GroupEvent, GroupSpec, Mode, SendOpts};
pub use tipc_link as link;
pub use tipc_link::Conflict;
pub use tipc_wire as wire;
pub use tipc_wire::Scope;

/// The README's code blocks, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
