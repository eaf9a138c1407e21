//! Parallel links with a Linux 6.1 kernel node (tools/kernel-peer): the
//! kernel VM and our node each have two Ethernet bearers, on two bridges;
//! the second (br1) has priority 20 on both sides, so it carries all the
//! traffic. Mid-stream — RDM and group broadcasts in both directions — br1
//! fails for 3 s: the kernel and we fail over to the br0 link with the
//! kernel's tunnel protocol (FAILOVER_MSG), then the br1 links return and
//! synch (SYNCH_MSG). Every message arrives once and in order on both
//! sides, no member leaves, and br1 carries the traffic again.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::kernel::{Cleanup, KernelPeer, Plug, kernel_rig, make_bridges, wait_until};
use tipc_rs::link::LinkState;
use tipc_rs::wire::{Instance, NodeAddr, NodeId, ServiceRange, ServiceType};
use tipc_rs::{Eth, GroupEvent, GroupSpec, Scope, Stack, Udp};
use tipc_testkit::netns::{NODE_IF, NODE_IF2};

/// Messages per batch and batches per stream (each direction, each kind).
const BATCH: u32 = 300;
const BATCHES: u32 = 8;

/// The kernel's links to `peer_id` that are up.
fn kernel_links_up(kernel: &KernelPeer, peer_id: &str) -> usize {
    let (s, _) = kernel.exec(&["tipc", "link", "list"]);
    s.lines().filter(|l| l.contains(peer_id) && l.trim_end().ends_with("up")).count()
}

/// The sequence numbers in `log` of messages `PREFIX#N`, in order, as
/// `(batch, n)`.
fn numbered(log: &str, prefix: &str) -> Vec<(u32, u32)> {
    log.lines()
        .filter_map(|l| {
            let d = l.split("data=\"").nth(1)?.split('"').next()?;
            let rest = d.strip_prefix(prefix)?;
            let (b, n) = rest.split_once('#')?;
            Some((b.parse().ok()?, n.parse().ok()?))
        })
        .collect()
}

/// Whether `got` is every batch's 1..=BATCH, once each, in order.
fn in_order(got: &[(u32, u32)]) -> Result<(), String> {
    let want: Vec<(u32, u32)> = (0..BATCHES).flat_map(|b| (1..=BATCH).map(move |n| (b, n))).collect();
    if got == want.as_slice() {
        return Ok(());
    }
    let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    Err(format!(
        "{} of {} messages; first difference at {at}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        got.get(at),
        want.get(at)
    ))
}

/// A kernel stream: `BATCHES` batches of `BATCH` messages `PREFIX<b>#<n>`
/// by `step` (e.g. `send:1000:100:` or `bcast:`), 250 ms apart.
fn kernel_stream(step: &str, prefix: &str) -> String {
    let mut s = format!("count:{BATCH}");
    for b in 0..BATCHES {
        s.push_str(&format!(" {step}{prefix}{b} sleep:250"));
    }
    s
}

#[test]
fn a_bridge_failing_under_two_kernel_links_loses_nothing() {
    scenario("kfover", false);
}

/// The same with the preferred links on UDP (link MTU 14 000) and the
/// standby on Ethernet (1 500): the packets the failed UDP link hands over
/// — bundles of up to 14 000 bytes — travel as tunnel fragments both ways
/// (net/tipc/link.c `tipc_link_tnl_prepare`).
#[test]
fn a_udp_link_failing_over_to_ethernet_splits_its_packets() {
    scenario("kfoudp", true);
}

const KERNEL_IP2: &str = "10.92.0.1";
const OUR_IP2: &str = "10.92.0.2";

fn scenario(tag: &str, udp: bool) {
    let what = format!("parallel links with a kernel node ({})", if udp { "UDP + Ethernet" } else { "two Ethernet" });
    let Some(brns) = kernel_rig(&what, tag) else { return };
    let _cleanup = Cleanup(brns.clone());
    make_bridges(&brns, &["br0", "br1"]);
    let kernel = KernelPeer::up_with("kf", &brns, "kernel-fo", &["--ifname2", "br1"]);
    if udp {
        let (out, ok) = kernel.exec(&["ip", "addr", "add", &format!("{KERNEL_IP2}/24"), "dev", "eth1"]);
        assert!(ok, "eth1 address: {out}");
        let enable =
            ["tipc", "bearer", "enable", "media", "udp", "name", "u1", "localip", KERNEL_IP2, "remoteip", OUR_IP2];
        let (out, ok) = kernel.exec(&enable);
        assert!(ok, "enable udp: {out}");
        let (out, ok) = kernel.exec(&["tipc", "bearer", "set", "priority", "20", "media", "udp", "name", "u1"]);
        assert!(ok, "udp priority: {out}");
    } else {
        let (out, ok) = kernel.exec(&["tipc", "bearer", "enable", "media", "eth", "device", "eth1", "priority", "20"]);
        assert!(ok, "enable eth1: {out}");
    }
    let plug = Plug::new(tag, &brns, 0);
    plug.add(NODE_IF2, "br1", &format!("uq{}", std::process::id() % 100_000));
    if udp {
        plug.ns.ip(&["addr", "add", &format!("{OUR_IP2}/24"), "dev", NODE_IF2]).expect("our address");
    }
    let stack = plug
        .ns
        .spawn("start", move || {
            let b = Stack::builder().bearer(Eth::new(NODE_IF)).node_id(NodeId::from_text("ours-fo").expect("id"));
            let b = if udp {
                let at = |ip: &str| format!("{ip}:6118").parse().expect("address");
                b.bearer(Udp::new(at(OUR_IP2)).peer(at(KERNEL_IP2)).name("u2").priority(20))
            } else {
                b.bearer(Eth::new(NODE_IF2).priority(20))
            };
            b.start()
        })
        .expect("spawn")
        .join()
        .expect("thread")
        .expect("stack");
    let kaddr: NodeAddr = kernel.addr.parse().expect("kernel address");
    let both_up = |s: &Stack| s.links().iter().filter(|l| l.state == LinkState::Established).count() == 2;
    wait_until("our two links", Duration::from_secs(30), || both_up(&stack));
    wait_until("the kernel's two links", Duration::from_secs(20), || kernel_links_up(&kernel, "ours-fo") == 2);
    let names: Vec<String> = stack.links().iter().map(|l| l.name.clone()).collect();
    eprintln!("links: {names:?}");

    // receivers: ours bound to 1000:100 and a group member; the kernel's
    // bound to 1001:7 and a group member
    let sock = stack.port_socket().expect("socket");
    sock.bind(ServiceRange::single(ServiceType(1000), Instance(100)), Scope::Cluster).expect("bind");
    let total = BATCH * BATCHES;
    kernel.spawn("/tmp/krdm.log", &format!("tipc-client bind:1001:7 recv-n:{total}:120000"));
    let g = std::sync::Arc::new(stack.group_socket().expect("group socket"));
    g.join(GroupSpec {
        stype: ServiceType(4711),
        instance: Instance(2),
        scope: Scope::Cluster,
        loopback: false,
        member_events: true,
    })
    .expect("join");
    kernel.spawn(
        "/tmp/kgrp.log",
        &format!(
            "tipc-client -e join:4711:1 wait-members:1:30000 sleep:3000 {} recv-n:{total}:120000",
            kernel_stream("bcast:", "kb")
        ),
    );
    wait_until("the kernel's binding", Duration::from_secs(15), || {
        stack
            .name_table()
            .iter()
            .any(|p| p.range == ServiceRange::single(ServiceType(1001), Instance(7)) && p.node == kaddr)
    });
    wait_until("the kernel member", Duration::from_secs(30), || !g.members().is_empty());
    wait_until("our binding at the kernel", Duration::from_secs(15), || {
        kernel.exec(&["tipc", "nametable", "show"]).0.lines().any(|l| l.starts_with("1000") && l.contains(" 100 "))
    });

    // the streams, each about 2 s long
    kernel.spawn("/tmp/ksend.log", &format!("tipc-client {}", kernel_stream("send:1000:100:", "kr")));
    let rdm_out = stack.port_socket().expect("socket");
    let group_out = g.clone();
    // (two threads: a group sender waiting for the kernel member's window
    // does not hold the RDM stream back)
    let rdm_sender = std::thread::spawn(move || {
        for b in 0..BATCHES {
            for n in 1..=BATCH {
                rdm_out
                    .send_to_name(ServiceType(1001), Instance(7), Bytes::from(format!("ur{b}#{n}")), false)
                    .expect("rdm send");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let group_sender = std::thread::spawn(move || {
        for b in 0..BATCHES {
            for n in 1..=BATCH {
                group_out.broadcast(Bytes::from(format!("ub{b}#{n}"))).expect("group send");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    // one second in, br1 fails for 3 s
    std::thread::sleep(Duration::from_secs(1));
    tipc_testkit::netns::ip(&["-n", &brns, "link", "set", "br1", "down"]).expect("br1 down");
    std::thread::sleep(Duration::from_secs(3));
    let failovers: u64 = stack.links().iter().map(|l| l.stats.failovers).sum();
    tipc_testkit::netns::ip(&["-n", &brns, "link", "set", "br1", "up"]).expect("br1 up");

    // what we received
    let mut rdm = Vec::new();
    while rdm.len() < total as usize {
        let m = sock
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("rdm from the kernel after {}: {e}", rdm.len()));
        rdm.push(String::from_utf8_lossy(&m.data).to_string());
    }
    let mut grp = Vec::new();
    while grp.len() < total as usize {
        match g
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("group from the kernel after {}: {e}", grp.len()))
        {
            GroupEvent::Message { data, .. } => grp.push(String::from_utf8_lossy(&data).to_string()),
            GroupEvent::MemberDown { member, .. } => panic!("the kernel member {member} left"),
            _ => {}
        }
    }
    rdm_sender.join().expect("our RDM sender");
    group_sender.join().expect("our group sender");
    let as_log = |v: &[String]| v.iter().map(|d| format!("data=\"{d}\"\n")).collect::<String>();
    in_order(&numbered(&as_log(&rdm), "kr")).unwrap_or_else(|e| panic!("RDM kernel → us: {e}"));
    in_order(&numbered(&as_log(&grp), "kb")).unwrap_or_else(|e| panic!("group kernel → us: {e}"));
    // what the kernel received
    let krdm = kernel.wait_file("/tmp/krdm.log", Duration::from_secs(60), |s| s.contains("DONE"));
    in_order(&numbered(&krdm, "ur"))
        .unwrap_or_else(|e| panic!("RDM us → kernel: {e}\n{}", &krdm[krdm.len().saturating_sub(2000)..]));
    let kgrp = kernel.wait_file("/tmp/kgrp.log", Duration::from_secs(60), |s| s.contains("DONE"));
    in_order(&numbered(&kgrp, "ub"))
        .unwrap_or_else(|e| panic!("group us → kernel: {e}\n{}", &kgrp[kgrp.len().saturating_sub(2000)..]));
    assert!(!kgrp.contains("EVENT LEFT"), "no member left at the kernel");
    let ksend = kernel.wait_file("/tmp/ksend.log", Duration::from_secs(10), |s| s.contains("DONE"));
    assert!(ksend.contains("DONE status=ok"), "{ksend}");
    assert!(failovers >= 1, "our br1 link failed over: {failovers}");

    // both links come back, and br1 carries the traffic again
    wait_until("our two links again", Duration::from_secs(30), || both_up(&stack));
    wait_until("the kernel's two links again", Duration::from_secs(20), || kernel_links_up(&kernel, "ours-fo") == 2);
    kernel.spawn("/tmp/kafter.log", "tipc-client bind:1001:9 recv-n:50:20000");
    wait_until("the kernel's second binding", Duration::from_secs(15), || {
        stack.name_table().iter().any(|p| p.range == ServiceRange::single(ServiceType(1001), Instance(9)))
    });
    let before: Vec<(u8, u64)> = stack.links().iter().map(|l| (l.bearer, l.stats.sent_pkts)).collect();
    for i in 0..50u32 {
        sock.send_to_name(ServiceType(1001), Instance(9), Bytes::from(format!("after#{i}")), false).expect("send");
    }
    let kafter = kernel.wait_file("/tmp/kafter.log", Duration::from_secs(20), |s| s.contains("DONE"));
    assert!(kafter.contains("DONE status=ok"), "{kafter}");
    let after: Vec<(u8, bool, u64)> =
        stack.links().iter().zip(&before).map(|(l, (_, b))| (l.bearer, l.active, l.stats.sent_pkts - b)).collect();
    eprintln!("{}", stack.stats());
    eprintln!("after the return: (bearer, active, packets) {after:?}");
    assert!(after.iter().any(|&(b, active, n)| b == 1 && active && n > 0), "br1 carries the traffic again: {after:?}");
    let (klinks, _) = kernel.exec(&["tipc", "link", "stat", "show"]);
    eprintln!("kernel links:\n{klinks}");
    let tunnelled: u64 = stack.links().iter().map(|l| l.stats.tunnelled).sum();
    let from_tunnel: u64 = stack.links().iter().map(|l| l.stats.tunnel_delivered).sum();
    eprintln!("we handed {tunnelled} packets to failovers; {from_tunnel} messages came to us through the kernel's");
    // the failure hit traffic in flight both ways: more than the dummies moved
    assert!(tunnelled > 1 && from_tunnel > 0, "{tunnelled} packets handed over, {from_tunnel} received");
    if udp {
        let split: u64 = stack.links().iter().map(|l| l.stats.tunnel_fragments).sum();
        let joined: u64 = stack.links().iter().map(|l| l.stats.tunnel_reassembled).sum();
        eprintln!(
            "UDP → Ethernet: we sent {split} extra tunnel fragments, put together {joined} of the kernel's packets"
        );
        assert!(split > 0 && joined > 0, "tunnel fragments both ways: {split} sent, {joined} reassembled");
    }
    drop(g);
    drop(sock);
    stack.shutdown();
    drop(plug);
    drop(kernel);
}
