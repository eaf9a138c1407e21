//! Interoperability of our links with a real Linux 6.1 kernel node
//! (tools/kernel-peer): link set-up both ways, supervision for 60 s,
//! messages by port id both ways (60 000 bytes, a burst of 1 000), and the
//! link coming back after the kernel's bearer is disabled and re-enabled.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::kernel::{KernelPeer, Plug, kernel_rig, remove_ns};
use tipc_rs::StackEvent;
use tipc_rs::wire::{NodeAddr, PortId};

const PATTERN: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

#[test]
fn kernel_peer_links_exchanges_and_recovers() {
    let Some(brns) = kernel_rig("kernel link interop", "klink") else { return };
    let kernel = KernelPeer::up("kl", &brns, "kernel-1");
    let plug = Plug::new("klink", &brns, 0);
    let stack = common::start_node(&plug.ns, "user-1");
    let events = stack.events();
    let kaddr: NodeAddr = kernel.addr.parse().expect("kernel address");

    // link up on both sides
    let t0 = Instant::now();
    let up = stack.wait_for_nodes(1, Duration::from_secs(20)).expect("our link-up event");
    assert_eq!(up, vec![kaddr]);
    assert!(kernel.wait_link("user-1", Duration::from_secs(10)), "kernel lists the link up");
    eprintln!("link up after {:?}", t0.elapsed());
    let me = stack.address().expect("address");

    // kernel -> us: hello, 60 000 bytes, 1 000 small ones
    let sock = stack.port_socket().expect("socket");
    let port = sock.id().port.0;
    let dst = format!("{me}:{port}");
    let (out, ok) = kernel.exec(&[
        "tipc-client",
        &format!("send-port:{dst}:hello"),
        &format!("send-port:{dst}:@60000"),
        "count:1000",
        &format!("send-port:{dst}:small"),
    ]);
    assert!(ok && out.contains("DONE status=ok"), "kernel send failed:\n{out}");
    let m = sock.recv_timeout(Duration::from_secs(10)).expect("hello");
    assert_eq!((&m.data[..], m.from_node), (&b"hello"[..], kaddr));
    let m = sock.recv_timeout(Duration::from_secs(10)).expect("60000");
    assert_eq!(m.data.len(), 60_000);
    assert!(m.data.iter().enumerate().all(|(k, &b)| b == PATTERN[k % PATTERN.len()]), "60 000-byte payload intact");
    for i in 1..=1000 {
        let m = sock.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|e| panic!("small #{i}: {e}"));
        assert_eq!(m.data, Bytes::from(format!("small#{i}")), "in order");
    }

    // us -> kernel
    kernel.spawn("/tmp/r.log", "tipc-client self recv-n:1002:60000");
    let s = kernel.wait_file("/tmp/r.log", Duration::from_secs(20), |s| s.contains("SELF"));
    let kport: u32 = s
        .lines()
        .find_map(|l| l.split("port=").nth(1))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no SELF line: {s}"));
    sock.send_to(kaddr, PortId(kport), Bytes::from_static(b"hello-kernel")).expect("send");
    sock.send_to(
        kaddr,
        PortId(kport),
        Bytes::from((0..60_000).map(|k| PATTERN[k % PATTERN.len()]).collect::<Vec<u8>>()),
    )
    .expect("send 60000");
    for i in 1..=1000 {
        sock.send_to(kaddr, PortId(kport), Bytes::from(format!("burst#{i}"))).expect("burst");
    }
    let log = kernel.wait_file("/tmp/r.log", Duration::from_secs(60), |s| s.contains("DONE"));
    assert!(log.contains("DONE status=ok"), "kernel receiver:\n{}", &log[log.len().saturating_sub(2000)..]);
    assert_eq!(log.matches("RECV ").count(), 1002);
    assert!(log.contains("data=\"hello-kernel\""));
    assert!(log.contains("len=60000 data=@60000(pattern ok)"));
    assert!(log.contains("data=\"burst#1000\""));

    // still up after 60 s, probes answered
    std::thread::sleep(Duration::from_secs(60));
    assert!(kernel.wait_link("user-1", Duration::from_secs(1)), "link up after 60 s");
    assert!(stack.up_nodes().contains(&kaddr));
    assert!(events.try_iter().all(|e| !matches!(e, StackEvent::NodeDown(_))), "no link loss");
    let (st, _) = kernel.exec(&["tipc", "link", "stat", "show"]);
    let probes = st.lines().find(|l| l.contains("RX states:")).unwrap_or_default().to_string();
    eprintln!("kernel: {probes}");
    let ours = &stack.links()[0].stats;
    assert!(ours.recv_probes > 50 && ours.sent_states > 50, "probes both ways: {ours:?}");

    // bearer disabled and re-enabled in the kernel: the link comes back
    let (_, ok) = kernel.exec(&["tipc", "bearer", "disable", "media", "eth", "device", "eth0"]);
    assert!(ok);
    let down = events.recv_timeout(Duration::from_secs(10)).expect("an event");
    assert_eq!(down, StackEvent::NodeDown(kaddr));
    std::thread::sleep(Duration::from_secs(3));
    let (_, ok) = kernel.exec(&["tipc", "bearer", "enable", "media", "eth", "device", "eth0"]);
    assert!(ok);
    let t1 = Instant::now();
    loop {
        match events.recv_timeout(Duration::from_secs(20)) {
            Ok(StackEvent::NodeUp(a)) if a == kaddr => break,
            Ok(_) => {}
            Err(e) => panic!("link did not come back: {e}"),
        }
    }
    eprintln!("link back {:?} after re-enable", t1.elapsed());
    assert!(kernel.wait_link("user-1", Duration::from_secs(10)));
    drop(sock);
    stack.shutdown();
    drop(plug);
    drop(kernel);
    remove_ns(&brns);
}
