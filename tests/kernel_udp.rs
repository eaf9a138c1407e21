//! The UDP bearer with a Linux 6.1 kernel node (tools/kernel-peer): the
//! kernel runs `udp:u0` (its Ethernet bearer disabled), we run a UDP
//! bearer on the same IPv4 subnet; in multicast mode (the kernel's default
//! group 228.0.18.103) and, separately, in replicast mode with each side
//! listing the other. Both times: a link, names both ways, RDM both ways
//! and a group in all four modes both ways.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::kernel::{KernelPeer, Plug, kernel_rig, remove_ns, wait_until};
use tipc_rs::wire::{Instance, NodeAddr, NodeId, ServiceRange, ServiceType};
use tipc_rs::{GroupEvent, GroupSpec, Mode, Scope, Stack};

const KERNEL_IP: &str = "10.91.0.1";
const OUR_IP: &str = "10.91.0.2";

fn range(t: u32, i: u32) -> ServiceRange {
    ServiceRange::single(ServiceType(t), Instance(i))
}

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

    // names both ways
    let sock = stack.port_socket().expect("socket");
    sock.bind(range(1000, 100), Scope::Cluster).expect("bind");
    kernel.spawn("/tmp/kb.log", "tipc-client bind:1001:7 recv-n:1:30000");
    wait_until("our binding in the kernel's table", Duration::from_secs(15), || {
        kernel.exec(&["tipc", "nametable", "show"]).0.lines().any(|l| l.starts_with("1000") && l.contains(" 100 "))
    });
    wait_until("the kernel's binding in ours", Duration::from_secs(15), || {
        stack.name_table().iter().any(|p| p.range == range(1001, 7) && p.node == kaddr)
    });
    // RDM both ways
    let (out, ok) = kernel.exec(&["tipc-client", "send:1000:100:kernel-to-us"]);
    assert!(ok, "{out}");
    let m = sock.recv_timeout(Duration::from_secs(10)).expect("the kernel's message");
    assert_eq!(&m.data[..], b"kernel-to-us");
    sock.send_to_name(ServiceType(1001), Instance(7), Bytes::from_static(b"us-to-kernel"), false).expect("send");
    let log = kernel.wait_file("/tmp/kb.log", Duration::from_secs(15), |s| s.contains("DONE"));
    assert!(log.contains("data=\"us-to-kernel\"") && log.contains("DONE status=ok"), "{log}");

    // a group of two, every mode both ways
    kernel.spawn(
        "/tmp/kg.log",
        "tipc-client -e join:4711:1 wait-members:1:30000 sleep:1500 bcast:k-bcast mcast:2:k-mcast anycast:2:k-any unicast-member:2:k-uni recv:6000 leave",
    );
    let g = stack.group_socket().expect("group socket");
    let spec = GroupSpec {
        stype: ServiceType(4711),
        instance: Instance(2),
        scope: Scope::Cluster,
        loopback: false,
        member_events: true,
    };
    g.join(spec).expect("join");
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while g.members().is_empty() {
        assert!(Instant::now() < end, "the kernel member never joined");
        if let Ok(e) = g.recv_timeout(Duration::from_millis(100)) {
            got.push(e);
        }
    }
    let k = g.members()[0].0;
    g.broadcast(Bytes::from_static(b"u-bcast")).expect("bcast");
    g.send_multicast(Instance(1), Bytes::from_static(b"u-mcast")).expect("mcast");
    g.send_anycast(Instance(1), Bytes::from_static(b"u-any")).expect("anycast");
    g.send_unicast(k, Bytes::from_static(b"u-uni")).expect("unicast");
    let end = Instant::now() + Duration::from_secs(8);
    while Instant::now() < end {
        if let Ok(e) = g.recv_timeout(Duration::from_millis(100)) {
            got.push(e);
        }
    }
    let log = kernel.wait_file("/tmp/kg.log", Duration::from_secs(20), |s| s.contains("DONE"));
    eprintln!("kernel member:\n{log}");
    let texts: Vec<(Mode, String)> = got
        .iter()
        .filter_map(|e| match e {
            GroupEvent::Message { mode, data, .. } => Some((*mode, String::from_utf8_lossy(data).to_string())),
            _ => None,
        })
        .collect();
    // (a multicast or anycast that reaches one member arrives as the
    // kernel sends it to one socket; only broadcast and unicast say so)
    assert!(texts.contains(&(Mode::Broadcast, "k-bcast".into())), "{texts:?}");
    assert!(texts.contains(&(Mode::Unicast, "k-uni".into())), "{texts:?}");
    for t in ["k-mcast", "k-any"] {
        assert!(texts.iter().any(|x| x.1 == t), "{t}: {texts:?}");
    }
    assert_eq!(texts.len(), 4, "each once: {texts:?}");
    for t in ["u-bcast", "u-mcast", "u-any", "u-uni"] {
        assert!(log.contains(&format!("data=\"{t}\"")), "the kernel got {t}:\n{log}");
    }
    assert!(log.contains("DONE status=ok"), "{log}");
    assert!(got.iter().any(|e| matches!(e, GroupEvent::MemberDown { .. })), "the kernel member's LEFT");
    drop(g);
    drop(sock);
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
