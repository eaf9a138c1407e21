//! The UDP bearer with a Linux 6.1 kernel node (tools/kernel-peer): the
//! kernel runs `udp:u0` (its Ethernet bearer disabled), we run a UDP
//! bearer on the same IPv4 subnet; in multicast mode (the kernel's default
//! group 228.0.18.103) and, separately, in replicast mode with each side
//! listing the other. Both times: a link, names both ways, RDM both ways
//! and a group in all four modes both ways.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::kernel::{KernelPeer, Plug, kernel_rig, remove_ns, services_both_ways};
use tipc_rs::Stack;
use tipc_rs::wire::{NodeAddr, NodeId};

const KERNEL_IP: &str = "10.91.0.1";
const OUR_IP: &str = "10.91.0.2";

fn scenario(tag: &str, replicast: bool) {
    let what = format!("UDP bearer with a kernel node ({})", if replicast { "replicast" } else { "multicast" });
    let Some(brns) = kernel_rig(&what, tag) else { return };
    let kernel = KernelPeer::up_with("ku", &brns, "kernel-udp", &["--ipv4", &format!("{KERNEL_IP}/24")]);
    let (out, ok) = kernel.exec(&["tipc", "bearer", "disable", "media", "eth", "device", "eth0"]);
    assert!(ok, "disable eth: {out}");
    let mut enable = vec!["tipc", "bearer", "enable", "media", "udp", "name", "u0", "localip", KERNEL_IP];
    if replicast {
        enable.extend(["remoteip", OUR_IP]);
    }
    let (out, ok) = kernel.exec(&enable);
    assert!(ok, "enable udp: {out}");
    let plug = Plug::new(tag, &brns, 0);
    plug.ns.ip(&["addr", "add", &format!("{OUR_IP}/24"), "dev", tipc_testkit::netns::NODE_IF]).expect("our address");
    let local: SocketAddr = format!("{OUR_IP}:6118").parse().expect("addr");
    let peer: SocketAddr = format!("{KERNEL_IP}:6118").parse().expect("addr");
    let stack = plug
        .ns
        .spawn("start", move || {
            let mut b = Stack::builder().udp(local).udp_name("u1").node_id(NodeId::from_text("ours-udp").expect("id"));
            if replicast {
                b = b.udp_peer(peer);
            }
            b.start()
        })
        .expect("spawn")
        .join()
        .expect("thread")
        .expect("stack on UDP");
    let kaddr: NodeAddr = kernel.addr.parse().expect("kernel address");
    assert_eq!(stack.wait_for_nodes(1, Duration::from_secs(30)).expect("link up"), vec![kaddr]);
    assert!(kernel.wait_link("ours-udp", Duration::from_secs(10)), "the kernel's link to us");
    let links = stack.links();
    assert_eq!(links[0].peer_media, tipc_rs::wire::MediaAddr::Udp(peer), "{links:?}");
    assert!(links[0].name.ends_with(":u1-kernel-udp:u0"), "{}", links[0].name);

    services_both_ways(&stack, &kernel, kaddr);
    stack.shutdown();
    drop(plug);
    drop(kernel);
    remove_ns(&brns);
}

#[test]
fn udp_multicast_with_a_kernel_node() {
    scenario("kudpm", false);
}

#[test]
fn udp_replicast_with_a_kernel_node() {
    scenario("kudpr", true);
}
