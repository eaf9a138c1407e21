//! Interoperability of names, the broadcast link and communication groups
//! with real Linux 6.1 kernel nodes (tools/kernel-peer).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::kernel::{KernelPeer, Plug, kernel_rig, remove_ns, wait_until};
use tipc_rs::wire::{Instance, MemberId, NodeAddr, ServiceRange, ServiceType};
use tipc_rs::{GroupEvent, GroupSocket, GroupSpec, Mode, Scope};

fn range(t: u32, lo: u32, hi: u32) -> ServiceRange {
    ServiceRange { stype: ServiceType(t), lower: Instance(lo), upper: Instance(hi) }
}

#[test]
fn names_and_broadcast_link_with_a_kernel_node() {
    let Some(brns) = kernel_rig("kernel names interop", "knames") else { return };
    let kernel = KernelPeer::up("kn", &brns, "kernel-n1");
    let plug = Plug::new("knames", &brns, 0);
    let stack = common::start_node(&plug.ns, "user-n1");
    let kaddr: NodeAddr = kernel.addr.parse().expect("addr");
    stack.wait_for_nodes(1, Duration::from_secs(20)).expect("link up");

    // our cluster binding shows in the kernel's table, the node-scope one does not
    let sock = stack.port_socket().expect("socket");
    sock.bind(range(1000, 100, 100), Scope::Cluster).expect("bind");
    sock.bind(range(1000, 200, 200), Scope::Node).expect("bind node");
    kernel.spawn("/tmp/kb.log", "tipc-client bind:1001:7 recv-n:1:30000");
    let mut table = String::new();
    wait_until("our publication in the kernel table", Duration::from_secs(10), || {
        table = kernel.exec(&["tipc", "nametable", "show"]).0;
        table.lines().any(|l| l.starts_with("1000") && l.contains(" 100 ") && l.contains("user-n1"))
    });
    assert!(!table.lines().any(|l| l.starts_with("1000") && l.contains(" 200 ")), "node scope stays local:\n{table}");
    wait_until("the kernel's publication in our table", Duration::from_secs(10), || {
        stack.name_table().iter().any(|p| p.range == range(1001, 7, 7) && p.node == kaddr)
    });

    // kernel send:TYPE:INST and a range multicast reach our socket
    let (out, ok) = kernel.exec(&["tipc-client", "send:1000:100:named-hi", "send-range:1000:90:110:range-hi"]);
    assert!(ok, "{out}");
    let m = sock.recv_timeout(Duration::from_secs(10)).expect("named");
    assert_eq!((&m.data[..], m.dest), (&b"named-hi"[..], Some(range(1000, 100, 100))));
    let m = sock.recv_timeout(Duration::from_secs(10)).expect("range");
    assert_eq!((&m.data[..], m.dest), (&b"range-hi"[..], Some(range(1000, 90, 110))));
    // ours reaches the kernel's binding
    sock.send_to_name(ServiceType(1001), Instance(7), Bytes::from_static(b"to-kernel-bind"), false).expect("send");
    let log = kernel.wait_file("/tmp/kb.log", Duration::from_secs(10), |s| s.contains("DONE"));
    assert!(log.contains("data=\"to-kernel-bind\"") && log.contains("DONE status=ok"), "{log}");
    // the kernel's binding went with its socket
    wait_until("the kernel's withdrawal", Duration::from_secs(10), || {
        !stack.name_table().iter().any(|p| p.range == range(1001, 7, 7))
    });
    // our withdrawal disappears from the kernel
    sock.unbind(range(1000, 100, 100));
    wait_until("our withdrawal in the kernel", Duration::from_secs(10), || {
        !kernel.exec(&["tipc", "nametable", "show"]).0.lines().any(|l| l.starts_with("1000") && l.contains(" 100 "))
    });

    // kernel traffic forced onto its broadcast link: 2 x 300 messages (the
    // window is 50, so the second burst arrives only if our acks move it)
    sock.bind(range(1000, 50, 55), Scope::Cluster).expect("bind");
    std::thread::sleep(Duration::from_millis(500));
    for burst in 0..2 {
        let (out, ok) =
            kernel.exec(&["tipc-client", "-m", "broadcast", "count:300", &format!("send-range:1000:50:55:bc{burst}")]);
        assert!(ok && out.contains("DONE status=ok"), "kernel broadcast sender:\n{out}");
        for i in 1..=300 {
            let m = sock.recv_timeout(Duration::from_secs(15)).unwrap_or_else(|e| panic!("burst {burst} #{i}: {e}"));
            assert_eq!(m.data, Bytes::from(format!("bc{burst}#{i}")), "in order");
        }
    }
    let (st, _) = kernel.exec(&["tipc", "link", "stat", "show", "link", "broadcast-link"]);
    eprintln!("kernel broadcast link:\n{st}");
    let tx = st.lines().find(|l| l.trim_start().starts_with("TX packets:")).unwrap_or_default().to_string();
    let pkts: u64 =
        tx.split_whitespace().nth(1).and_then(|v| v.trim_start_matches("packets:").parse().ok()).unwrap_or(0);
    assert!(pkts >= 600 / 20, "the kernel used its broadcast link: {tx}");
    drop(sock);
    stack.shutdown();
    drop(plug);
    drop(kernel);
    remove_ns(&brns);
}

fn collect(sock: &GroupSocket, into: &mut Vec<GroupEvent>, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if let Ok(e) = sock.recv_timeout(Duration::from_millis(50)) {
            if e != GroupEvent::Unblocked {
                into.push(e);
            }
        }
    }
}

fn texts(ev: &[GroupEvent]) -> Vec<(Mode, String)> {
    ev.iter()
        .filter_map(|e| match e {
            GroupEvent::Message { mode, data, .. } => Some((*mode, String::from_utf8_lossy(data).to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn mixed_group_of_kernel_and_userspace_members() {
    let Some(brns) = kernel_rig("kernel group interop", "kgroup") else { return };
    let k1 = KernelPeer::up("kg", &brns, "kernel-g1");
    let k2 = KernelPeer::up("kg", &brns, "kernel-g2");
    let p1 = Plug::new("kgroup", &brns, 0);
    let p2 = Plug::new("kgroup", &brns, 1);
    let s1 = common::start_node(&p1.ns, "user-g1");
    let s2 = common::start_node(&p2.ns, "user-g2");
    s1.wait_for_nodes(3, Duration::from_secs(30)).expect("u1 links");
    s2.wait_for_nodes(3, Duration::from_secs(30)).expect("u2 links");
    // kernel members: k1 = instance 1 (sends every mode), k2 = instance 2 (receives)
    k2.spawn("/tmp/k2.log", "tipc-client -e join:4711:2 wait-members:3:40000 recv:14000 leave");
    k1.spawn(
        "/tmp/k1.log",
        "tipc-client -e join:4711:1 wait-members:3:40000 sleep:1500 bcast:k1-bcast mcast:2:k1-mcast count:4 anycast:2:k1-any count:1 unicast-member:3:k1-uni recv:5000 leave",
    );
    let spec = |i: u32| GroupSpec {
        stype: ServiceType(4711),
        instance: Instance(i),
        scope: Scope::Cluster,
        loopback: false,
        member_events: true,
    };
    let u1 = s1.group_socket().expect("socket");
    let u2 = s2.group_socket().expect("socket");
    u1.join(spec(2)).expect("join u1");
    u2.join(spec(3)).expect("join u2");
    let (mut e1, mut e2) = (Vec::new(), Vec::new());
    let end = Instant::now() + Duration::from_secs(30);
    while u1.members().len() < 3 || u2.members().len() < 3 {
        assert!(Instant::now() < end, "members: u1 {:?} u2 {:?}", u1.members(), u2.members());
        collect(&u1, &mut e1, Duration::from_millis(100));
        collect(&u2, &mut e2, Duration::from_millis(100));
    }
    let k1_id = u1.members().into_iter().find(|(_, i)| *i == Instance(1)).map(|(m, _)| m).expect("k1 member");
    // ours send every mode
    u2.broadcast(Bytes::from_static(b"u2-bcast")).expect("bcast");
    u2.send_multicast(Instance(2), Bytes::from_static(b"u2-mcast")).expect("mcast");
    for i in 0..4 {
        u2.send_anycast(Instance(2), Bytes::from(format!("u2-any{i}"))).expect("anycast");
    }
    u2.send_unicast(k1_id, Bytes::from_static(b"u2-uni")).expect("unicast");
    collect(&u1, &mut e1, Duration::from_secs(4));
    collect(&u2, &mut e2, Duration::from_secs(1));
    let l1 = k1.wait_file("/tmp/k1.log", Duration::from_secs(30), |s| s.contains("DONE"));
    assert!(l1.contains("DONE status=ok"), "the kernel sender finished (never blocked forever):\n{l1}");
    collect(&u1, &mut e1, Duration::from_secs(2));
    collect(&u2, &mut e2, Duration::from_secs(1));
    u1.leave().expect("leave");
    u2.leave().expect("leave");
    let l2 = k2.wait_file("/tmp/k2.log", Duration::from_secs(30), |s| s.contains("DONE"));
    eprintln!("k1:\n{l1}\nk2:\n{l2}");

    // JOINED seen on both sides
    for l in [&l1, &l2] {
        assert!(l.contains("EVENT JOINED member=4711:2 from="), "{l}");
        assert!(l.contains("EVENT JOINED member=4711:3 from="), "{l}");
    }
    for e in [&e1, &e2] {
        assert!(e.iter().any(|x| matches!(x, GroupEvent::MemberUp { instance, .. } if *instance == Instance(1))));
    }
    // kernel -> us, every mode; the multicast to instance 2 reached k2 and u1
    let t1 = texts(&e1);
    let t2 = texts(&e2);
    assert!(t1.contains(&(Mode::Broadcast, "k1-bcast".into())) && t2.contains(&(Mode::Broadcast, "k1-bcast".into())));
    assert!(t1.iter().any(|t| t.1 == "k1-mcast"), "u1 (instance 2) got the multicast: {t1:?}");
    assert!(l2.contains("data=\"k1-mcast\""), "k2 (instance 2) got the multicast");
    assert!(t2.contains(&(Mode::Unicast, "k1-uni".into())), "{t2:?}");
    let any_u1 = t1.iter().filter(|t| t.1.starts_with("k1-any")).count();
    let any_k2 = l2.matches("data=\"k1-any").count();
    assert_eq!(any_u1 + any_k2, 4, "each kernel anycast reached one member");
    assert!(any_u1 > 0 && any_k2 > 0, "kernel anycast alternates: u1 {any_u1}, k2 {any_k2}");
    // us -> kernel, every mode; our anycasts alternate between k2 and u1
    assert!(
        l1.contains("data=\"u2-bcast\"") && l2.contains("data=\"u2-bcast\"") && t1.iter().any(|t| t.1 == "u2-bcast")
    );
    assert!(l2.contains("data=\"u2-mcast\"") && t1.iter().any(|t| t.1 == "u2-mcast"));
    assert!(!l1.contains("data=\"u2-mcast\""), "instance 1 does not get multicasts to 2");
    assert!(l1.contains("data=\"u2-uni\""));
    let ours_u1 = t1.iter().filter(|t| t.1.starts_with("u2-any")).count();
    let ours_k2 = l2.matches("data=\"u2-any").count();
    assert_eq!(ours_u1 + ours_k2, 4);
    assert!(ours_u1 > 0 && ours_k2 > 0, "our anycast alternates: u1 {ours_u1}, k2 {ours_k2}");
    // LEFT on both sides: k1 left before us; we left before k2 finished
    assert!(e1.iter().any(|x| matches!(x, GroupEvent::MemberDown { member, .. } if *member == k1_id)), "{e1:?}");
    assert!(l2.contains("EVENT LEFT member=4711:2") && l2.contains("EVENT LEFT member=4711:3"), "{l2}");
    let _ = MemberId { node: NodeAddr(0), port: tipc_rs::wire::PortId(0) };
    drop((u1, u2));
    s1.shutdown();
    s2.shutdown();
    drop((p1, p2));
    drop((k1, k2));
    remove_ns(&brns);
}
