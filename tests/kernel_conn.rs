//! Connection sockets between tipc-rs and a Linux 6.1 node, both ways:
//! SEQPACKET messages of 1, 1 500, 9 000 and 66 000 bytes echoed, 16 MiB
//! STREAM transfers each way to a reader that starts late (the sender
//! waits, nothing is lost: the kernel would reject data beyond its window
//! with OVERLOAD and end the connection), a killed kernel process and a
//! killed node of ours ending the connection on the other side, a connect
//! to an unbound name failing at once on both, and the importance we set
//! adopted by the kernel (its ACK and echoes come back at HIGH). The
//! kernel side runs tools/kernel-peer's `tipc-client`.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::kernel::{Cleanup, KernelPeer, Plug, kernel_rig};
use tipc_rs::wire::{DataType, ErrorCode, Importance, Instance, Msg, NodeAddr, ServiceRange, ServiceType};
use tipc_rs::{ConnKind, Error, Scope, Stack};

const SVC: ServiceType = ServiceType(1000);
const PATTERN: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// tipc-client's `@N` payload.
fn pattern(n: usize) -> Bytes {
    Bytes::from((0..n).map(|k| PATTERN[k % PATTERN.len()]).collect::<Vec<u8>>())
}

fn fnv(h: u64, data: &[u8]) -> u64 {
    data.iter().fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

/// Our node in `plug`, recording frames to `pcap` when given.
fn start(plug: &Plug, name: &str, pcap: Option<std::path::PathBuf>) -> Stack {
    let name = name.to_string();
    let s = plug
        .ns
        .spawn("start", move || {
            let mut b = Stack::builder()
                .iface(tipc_testkit::netns::NODE_IF)
                .node_id(tipc_rs::wire::NodeId::from_text(&name).expect("id"));
            if let Some(p) = pcap {
                b = b.pcap(p);
            }
            b.start()
        })
        .expect("spawn")
        .join()
        .expect("thread")
        .expect("stack");
    s.wait_for_nodes(1, Duration::from_secs(20)).expect("a link to the kernel node");
    s
}

/// Waits until our name table holds `SVC`:`inst` (bound on the kernel).
fn wait_name(s: &Stack, inst: u32) {
    let end = Instant::now() + Duration::from_secs(20);
    while !s.name_table().iter().any(|p| p.range.stype == SVC && p.range.lower.0 <= inst && inst <= p.range.upper.0) {
        assert!(Instant::now() < end, "the kernel's binding of {inst} never reached us");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Connects a new socket of `kind` to `SVC`:`inst`, bound on the kernel:
/// tipc-client binds before it listens, and a SYN between the two comes
/// back refused (as to any kernel client), so a refusal is tried again.
fn connect(s: &Stack, kind: ConnKind, inst: u32, imp: Importance) -> tipc_rs::ConnSocket {
    wait_name(s, inst);
    for _ in 0..50 {
        let c = s.conn_socket(kind).expect("socket");
        c.set_importance(imp);
        match c.connect(SVC, Instance(inst)) {
            Ok(()) => return c,
            Err(Error::ConnRefused(_)) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("connect to {inst}: {e}"),
        }
    }
    panic!("the kernel never listened on {inst}");
}

/// Waits until the kernel's name table holds `SVC`:`inst` (bound by us).
fn wait_kernel_name(k: &KernelPeer, inst: u32) {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (t, _) = k.exec(&["tipc", "nametable", "show"]);
        if t.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() > 2 && w[0] == "1000" && w[1] == inst.to_string()
        }) {
            return;
        }
        assert!(Instant::now() < end, "our binding of {inst} never reached the kernel:\n{t}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn seqpacket_both_ways_with_the_importance_we_set() {
    let Some(brns) = kernel_rig("connections: seqpacket", "kcsp") else { return };
    let _cleanup = Cleanup(brns.clone());
    let kernel = KernelPeer::up("kq", &brns, "conn-kernel");
    let plug = Plug::new("kcsp", &brns, 0);
    let pcap = std::env::temp_dir().join(format!("kernel_conn_{}.pcap", std::process::id()));
    let stack = start(&plug, "conn-ours", Some(pcap.clone()));
    let kaddr: NodeAddr = kernel.addr.parse().expect("kernel address");
    let sizes = [1usize, 1500, 9000, 66_000];

    // our client, their server
    kernel.spawn("/tmp/srv", "tipc-client -t seqpacket bind:1000:1 listen accept:30000 echo:30000");
    let c = connect(&stack, ConnKind::Seqpacket, 1, Importance::High);
    assert_eq!(c.peer().map(|p| p.node), Some(kaddr));
    for len in sizes {
        let m = pattern(len);
        c.send(m.clone()).expect("send");
        let back = c.recv_timeout(Duration::from_secs(10)).expect("echo").expect("not the end");
        assert_eq!(back, m, "{len} bytes echoed whole by the kernel");
    }
    drop(c);
    let srv = kernel.wait_file("/tmp/srv", Duration::from_secs(10), |s| s.contains("PEER-CLOSED"));
    assert!(srv.contains("PEER-CLOSED err=2(no_port)"), "our close as the kernel saw it:\n{srv}");

    // their client, our server
    let l = stack.conn_socket(ConnKind::Seqpacket).expect("socket");
    l.bind(ServiceRange::single(SVC, Instance(2)), Scope::Cluster).expect("bind");
    l.listen().expect("listen");
    let server = std::thread::spawn(move || {
        let (c, peer) = l.accept_timeout(Duration::from_secs(30)).expect("accept");
        let mut lens = Vec::new();
        let end = loop {
            match c.recv_timeout(Duration::from_secs(20)) {
                Ok(Some(m)) => {
                    lens.push(m.len());
                    c.send(m).expect("echo");
                }
                other => break other,
            }
        };
        (peer, lens, end)
    });
    wait_kernel_name(&kernel, 2);
    let steps = sizes.iter().map(|n| format!("csend:@{n} recv-n:1:10000")).collect::<Vec<_>>().join(" ");
    let (out, ok) = kernel.exec(&["sh", "-c", &format!("tipc-client -t seqpacket connect:1000:2 {steps} close")]);
    assert!(ok, "the kernel client failed:\n{out}");
    let ours = stack.address().expect("address");
    assert!(out.lines().any(|l| l.starts_with(&format!("CONNECTED peer={ours}:"))), "{out}");
    for n in sizes {
        let want = if n >= 64 { format!("len={n} data=@{n}(pattern ok)") } else { format!("len={n} data=") };
        assert!(out.lines().any(|l| l.starts_with("RECV") && l.contains(&want)), "no echo of {n} bytes:\n{out}");
    }
    let (peer, lens, end) = server.join().expect("server");
    assert_eq!(peer.node, kaddr);
    assert_eq!(lens, sizes.to_vec(), "message boundaries kept");
    assert!(matches!(end, Err(Error::ConnReset(ErrorCode::NoPort))), "the kernel's close: {end:?}");

    // the kernel adopted our importance: its ACK and its echoes to our
    // client came back at HIGH (user 2; net/tipc/socket.c tipc_accept)
    drop(stack);
    let frames = tipc_rs::wire::pcap::read_pcap_file(&pcap).expect("pcap");
    let _ = std::fs::remove_file(&pcap);
    let from_kernel_conn: Vec<(u8, usize)> = frames
        .iter()
        .filter_map(|f| Msg::parse(f.data.slice(14..)).ok())
        .filter_map(|m| match m {
            Msg::Data(d) if d.msg_type == DataType::Conn && d.origin() == kaddr && d.err == ErrorCode::Ok => {
                Some((u8::from(d.importance), d.payload.len()))
            }
            _ => None,
        })
        .collect();
    assert!(from_kernel_conn.contains(&(2, 0)), "the kernel's ACK at HIGH: {from_kernel_conn:?}");
    // (the longer echoes arrive as fragments; the 1-byte one is whole)
    assert!(from_kernel_conn.contains(&(2, 1)), "its echo at HIGH: {from_kernel_conn:?}");
    drop(plug);
    drop(kernel);
}

#[test]
fn stream_16_mib_each_way_to_a_late_reader() {
    let Some(brns) = kernel_rig("connections: stream", "kcst") else { return };
    let _cleanup = Cleanup(brns.clone());
    let kernel = KernelPeer::up("kr", &brns, "stream-kernel");
    let plug = Plug::new("kcst", &brns, 0);
    let stack = start(&plug, "stream-ours", None);
    const TOTAL: usize = 16 << 20;

    // ours to the kernel, which starts reading after 3 s: we must wait
    kernel.spawn("/tmp/sink", "tipc-client -t stream bind:1000:3 listen accept:30000 sleep:3000 sink:16777216:60000");
    let c = connect(&stack, ConnKind::Stream, 3, Importance::Low);
    let data: Bytes = Bytes::from((0..TOTAL).map(|i| (i as u8).wrapping_mul(13).wrapping_add(1)).collect::<Vec<u8>>());
    let t0 = Instant::now();
    let mut refused = 0;
    let mut off = 0;
    while off < TOTAL {
        let piece = data.slice(off..(off + 100_000).min(TOTAL));
        let n = match c.try_send(piece.clone()) {
            Ok(n) => n,
            Err(Error::WouldBlock(_)) => {
                refused += 1;
                c.send(piece.clone())
                    .unwrap_or_else(|e| panic!("send: {e}; kernel: {}", kernel.exec(&["cat", "/tmp/sink"]).0));
                piece.len()
            }
            Err(e) => panic!("send: {e}; kernel: {}", kernel.exec(&["cat", "/tmp/sink"]).0),
        };
        off += n;
    }
    eprintln!("16 MiB to the kernel in {:?}; {refused} sends had to wait", t0.elapsed());
    let out = kernel.wait_file("/tmp/sink", Duration::from_secs(60), |s| s.contains("DONE"));
    assert!(
        out.contains(&format!("SINK len={TOTAL} fnv={:016x}", fnv(FNV0, &data))),
        "the kernel got something else:\n{out}"
    );
    assert!(refused > 0, "the kernel's window never held us back");
    drop(c);

    // the kernel to ours; we start reading after 3 s
    let l = stack.conn_socket(ConnKind::Stream).expect("socket");
    l.bind(ServiceRange::single(SVC, Instance(4)), Scope::Cluster).expect("bind");
    l.listen().expect("listen");
    wait_kernel_name(&kernel, 4);
    kernel.spawn("/tmp/src", "tipc-client -t stream connect:1000:4 count:256 csend:@65536 sleep:20000");
    let (c, _) = l.accept_timeout(Duration::from_secs(30)).expect("accept");
    std::thread::sleep(Duration::from_secs(3));
    let mut want = FNV0;
    for _ in 0..256 {
        want = fnv(want, &pattern(65_536));
    }
    let (mut h, mut got) = (FNV0, 0usize);
    let mut buf = vec![0u8; 50_000];
    while got < TOTAL {
        let n = c.read_timeout(&mut buf, Duration::from_secs(20)).expect("read");
        assert!(n > 0, "the stream ended after {got} bytes");
        h = fnv(h, &buf[..n]);
        got += n;
    }
    assert_eq!((got, h), (TOTAL, want), "16 MiB from the kernel, in order and intact");
    let src = kernel.wait_file("/tmp/src", Duration::from_secs(5), |s| s.contains("SENT"));
    assert!(src.contains("SENT mode=conn len=65536 count=256"), "{src}");
    drop(stack);
    drop(plug);
    drop(kernel);
}

#[test]
fn a_killed_peer_ends_the_connection_and_unbound_names_fail_at_once() {
    let Some(brns) = kernel_rig("connections: kills", "kckl") else { return };
    let _cleanup = Cleanup(brns.clone());
    let kernel = KernelPeer::up("kk", &brns, "kill-kernel");
    let plug = Plug::new("kckl", &brns, 0);
    let stack = start(&plug, "kill-ours", None);

    // a name nobody binds: at once, on both sides
    let c = stack.conn_socket(ConnKind::Seqpacket).expect("socket");
    let t0 = Instant::now();
    assert!(matches!(c.connect(SVC, Instance(99)), Err(Error::NoService(1000, 99))));
    assert!(t0.elapsed() < Duration::from_secs(1));
    let (out, _) = kernel.exec(&["tipc-client", "-t", "seqpacket", "connect:1000:99"]);
    assert!(out.contains("ERROR connect 1000:99") && out.contains("EHOSTUNREACH"), "{out}");

    // the kernel's server process is killed: our client sees the reset
    kernel.spawn("/tmp/srv", "tipc-client -t seqpacket bind:1000:5 listen accept:30000 recv:60000");
    let c = connect(&stack, ConnKind::Seqpacket, 5, Importance::Low);
    kernel.exec(&["sh", "-c", "sleep 0.5; killall -9 tipc-client"]);
    let r = c.recv_timeout(Duration::from_secs(10));
    assert!(matches!(r, Err(Error::ConnReset(ErrorCode::NoPort))), "{r:?}");

    // our node dies: the kernel's connection ends with NO_NODE
    let l = stack.conn_socket(ConnKind::Seqpacket).expect("socket");
    l.bind(ServiceRange::single(SVC, Instance(6)), Scope::Cluster).expect("bind");
    l.listen().expect("listen");
    wait_kernel_name(&kernel, 6);
    kernel.spawn("/tmp/cli", "tipc-client -t seqpacket connect:1000:6 recv:30000");
    let (sc, _) = l.accept_timeout(Duration::from_secs(30)).expect("accept");
    kernel.wait_file("/tmp/cli", Duration::from_secs(10), |s| s.contains("CONNECTED"));
    let t0 = Instant::now();
    stack.kill();
    // the sockets go after the node: nothing more leaves it
    drop((sc, l, c));
    let out = kernel.wait_file("/tmp/cli", Duration::from_secs(20), |s| s.contains("PEER-CLOSED"));
    let took = t0.elapsed();
    eprintln!("the kernel saw the end {took:?} after the kill");
    assert!(out.contains("PEER-CLOSED err=3(no_node)"), "{out}");
    // the kernel's link tolerance is 1.5 s; its file is polled every 0.3 s
    assert!(took < Duration::from_secs(8), "{took:?}");
    drop(plug);
    drop(kernel);
}

/// Lines with node addresses and ports replaced, for comparing the two
/// clients' output.
fn shape(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| {
            l.split_whitespace()
                .map(|w| match w.split_once('=') {
                    Some((k @ ("peer" | "from"), _)) => format!("{k}=*"),
                    _ => w.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn group_member_prints_the_lines_tipc_client_prints() {
    let Some(brns) = kernel_rig("connections: group_member", "kcgm") else { return };
    let _cleanup = Cleanup(brns.clone());
    let kernel = KernelPeer::up("kg", &brns, "gm-kernel");
    let plug = Plug::new("kcgm", &brns, 0);
    let gm = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(["netns", "exec", plug.ns.name()])
            .arg(common::example("group_member"))
            .args(["--iface", tipc_testkit::netns::NODE_IF, "--node-id", "gm-ours", "-t", "seqpacket"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("group_member")
    };
    let client =
        ["sleep:2000", "connect:1000:7", "csend:ping", "recv-n:1:5000", "csend:@3000", "recv-n:1:5000", "close"];
    let server = ["bind:1000:7", "listen", "accept:30000", "echo:4000"];

    // a kernel server, our client
    kernel.spawn("/tmp/ksrv", &format!("tipc-client -t seqpacket {}", server.join(" ")));
    let ours_client = gm(&client).wait_with_output().expect("group_member client");
    let ours_client = String::from_utf8_lossy(&ours_client.stdout).to_string();
    let kernel_server = kernel.wait_file("/tmp/ksrv", Duration::from_secs(15), |s| s.contains("DONE"));

    // our server, a kernel client
    let srv = gm(&server);
    let (kernel_client, _) = kernel.exec(&["sh", "-c", &format!("tipc-client -t seqpacket {}", client.join(" "))]);
    let ours_server = srv.wait_with_output().expect("group_member server");
    let ours_server = String::from_utf8_lossy(&ours_server.stdout).to_string();

    eprintln!("our client:\n{ours_client}\nthe kernel's client:\n{kernel_client}");
    eprintln!("our server:\n{ours_server}\nthe kernel's server:\n{kernel_server}");
    assert!(ours_client.contains("DONE status=ok"), "{ours_client}");
    assert_eq!(shape(&ours_client), shape(&kernel_client), "the clients' lines differ");
    assert_eq!(shape(&ours_server), shape(&kernel_server), "the servers' lines differ");
    assert!(ours_server.contains("PEER-CLOSED err=2(no_port)"), "{ours_server}");
    drop(plug);
    drop(kernel);
}
