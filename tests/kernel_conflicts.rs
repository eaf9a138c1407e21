//! A tipc-rs node and a Linux 6.1 node configured with the same identity on
//! one segment end as two kernel nodes do: whichever comes second is moved
//! to another address by the first one's refusal of its trial, and the two
//! link (net/tipc/node.c `tipc_node_try_addr`).

mod common;

use std::time::Duration;

use common::kernel::{Cleanup, KernelPeer, Plug, kernel_rig, make_bridges};
use tipc_rs::wire::NodeAddr;
use tipc_rs::{Conflict, StackEvent};

const ID: &str = "same-id";

/// Whether our stack reported a conflict matching `f` (waits a little).
fn reported(events: &crossbeam_channel::Receiver<StackEvent>, f: impl Fn(&Conflict) -> bool) -> bool {
    while let Ok(e) = events.recv_timeout(Duration::from_secs(2)) {
        if let StackEvent::Conflict(c) = e {
            eprintln!("conflict: {c}");
            if f(&c) {
                return true;
            }
        }
    }
    false
}

#[test]
fn same_identity_kernel_first_then_ours() {
    let Some(brns) = kernel_rig("same identity, kernel first", "kdupa") else { return };
    let _cleanup = Cleanup(brns.clone());
    let kernel = KernelPeer::up("kd", &brns, ID);
    let kaddr: NodeAddr = kernel.addr.parse().expect("kernel address");
    std::thread::sleep(Duration::from_secs(1));
    let plug = Plug::new("kdupa", &brns, 0);
    let stack = common::start_node(&plug.ns, ID);
    let events = stack.events();
    let ours = stack.wait_ready(Duration::from_secs(10)).expect("our address");
    assert_ne!(ours, kaddr, "both nodes hold {ours}");
    let up = stack.wait_for_nodes(1, Duration::from_secs(20)).expect("a link to the kernel node");
    assert_eq!(up, vec![kaddr]);
    assert!(kernel.wait_link(ID, Duration::from_secs(10)), "the kernel lists no link up");
    assert!(
        reported(&events, |c| matches!(c, Conflict::AddressTaken { addr, .. } if *addr == kaddr)),
        "we moved without saying so"
    );
    drop(stack);
    drop(plug);
    drop(kernel);
}

#[test]
fn same_identity_ours_first_then_the_kernel() {
    let Some(brns) = kernel_rig("same identity, ours first", "kdupb") else { return };
    let _cleanup = Cleanup(brns.clone());
    make_bridges(&brns, &["br0"]);
    let plug = Plug::new("kdupb", &brns, 0);
    let stack = common::start_node(&plug.ns, ID);
    let events = stack.events();
    let ours = stack.wait_ready(Duration::from_secs(10)).expect("our address");
    let kernel = KernelPeer::up("kd", &brns, ID);
    let kaddr: NodeAddr = kernel.addr.parse().expect("kernel address");
    assert_ne!(kaddr, ours, "both nodes hold {ours}");
    let up = stack.wait_for_nodes(1, Duration::from_secs(20)).expect("a link to the kernel node");
    assert_eq!(up, vec![kaddr]);
    assert!(kernel.wait_link(ID, Duration::from_secs(10)), "the kernel lists no link up");
    assert!(
        reported(
            &events,
            |c| matches!(c, Conflict::TrialRefused { same_identity: true, proposed, .. } if *proposed == ours)
        ),
        "we refused the kernel's trial without saying so"
    );
    drop(stack);
    drop(plug);
    drop(kernel);
}
