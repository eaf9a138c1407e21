//! `group_chat` between our node and a Linux kernel node, both ways; the
//! pcap of the session decodes in tshark.

mod common;

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::kernel::{KernelPeer, Plug, kernel_rig, remove_ns};
use tipc_testkit::netns::NODE_IF;

#[test]
fn group_chat_with_a_kernel_member() {
    let Some(brns) = kernel_rig("group_chat with the kernel", "kchat") else { return };
    if !common::have_tool("tshark", "tshark") {
        return;
    }
    let kernel = KernelPeer::up("kc", &brns, "kernel-chat");
    let plug = Plug::new("kchat", &brns, 0);
    let exe = common::example("group_chat");
    let pcap = std::env::temp_dir().join(format!("tipc-chat-{}.pcap", std::process::id()));
    kernel.spawn(
        "/tmp/chat.log",
        "tipc-client -e join:4711:9 wait-members:1:40000 bcast:hello-from-kernel recv-n:1:40000 sleep:500 leave",
    );
    let mut chat = Command::new("ip")
        .args(["netns", "exec", plug.ns.name()])
        .arg(&exe)
        .args(["--iface", NODE_IF, "--node-id", "user-chat", "--member", "5", "--pcap"])
        .arg(&pcap)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("group_chat");
    let stdout = chat.stdout.take().expect("stdout");
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut lines = Vec::new();
    let end = Instant::now() + Duration::from_secs(40);
    while !lines.iter().any(|l: &String| l.contains("hello-from-kernel")) {
        assert!(Instant::now() < end, "no kernel message; chat printed: {lines:?}");
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    assert!(lines.iter().any(|l| l.contains("member 9") && l.contains("joined")), "{lines:?}");
    let mut stdin = chat.stdin.take().expect("stdin");
    writeln!(stdin, "hello-from-user").expect("type a line");
    let log = kernel.wait_file("/tmp/chat.log", Duration::from_secs(30), |s| s.contains("DONE"));
    assert!(log.contains("EVENT JOINED member=4711:5"), "{log}");
    assert!(log.contains("data=\"hello-from-user\""), "{log}");
    assert!(log.contains("DONE status=ok"), "{log}");
    // the kernel left: the chat says so
    let end = Instant::now() + Duration::from_secs(10);
    while !lines.iter().any(|l| l.contains("member 9") && l.contains("left")) {
        assert!(Instant::now() < end, "no LEFT: {lines:?}");
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    drop(stdin);
    let out = chat.wait_with_output().expect("chat exits");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stats = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(stats.contains("kernel-chat"), "stats at exit name the peer:\n{stats}");
    // the session's pcap decodes as TIPC
    let all = Command::new("tshark").arg("-r").arg(&pcap).output().expect("tshark");
    let n = String::from_utf8_lossy(&all.stdout).lines().count();
    let t = Command::new("tshark").arg("-r").arg(&pcap).args(["-Y", "tipc"]).output().expect("tshark");
    let nt = String::from_utf8_lossy(&t.stdout).lines().count();
    let _ = std::fs::remove_file(&pcap);
    assert!(n > 10 && n == nt, "{nt} of {n} frames decode as TIPC");
    drop(plug);
    drop(kernel);
    remove_ns(&brns);
}
