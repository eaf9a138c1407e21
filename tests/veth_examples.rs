//! The LAN examples and pcap recording, run as a user would, over veth.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::rig;
use tipc_rs::wire::{Instance, NodeId, ServiceType};
use tipc_rs::{GroupEvent, GroupSpec, Scope, Stack};
use tipc_testkit::netns::{Lab, NODE_IF};

use common::example;

#[test]
fn anycast_servers_share_the_requests_of_a_client() {
    let Some(lab) = rig("anycast example", || Lab::bridge("vany", 3)) else { return };
    let srv = |i: usize| {
        Command::new("ip")
            .args(["netns", "exec", lab.node(i).name()])
            .arg(example("anycast_server"))
            .args([
                "--iface",
                NODE_IF,
                "--node-id",
                &format!("srv-{i}"),
                "--name",
                &format!("srv{i}"),
                "--seconds",
                "12",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("server")
    };
    let s1 = srv(1);
    let s2 = srv(2);
    let out = Command::new("ip")
        .args(["netns", "exec", lab.node(0).name()])
        .arg(example("anycast_client"))
        .args(["--iface", NODE_IF, "--node-id", "client", "--requests", "20", "--servers", "2"])
        .output()
        .expect("client");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "client failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let a1 = text.lines().filter(|l| l.starts_with("srv1 answers")).count();
    let a2 = text.lines().filter(|l| l.starts_with("srv2 answers")).count();
    assert_eq!(a1 + a2, 20, "{text}");
    assert_eq!((a1, a2), (10, 10), "round robin over two servers:\n{text}");
    for mut s in [s1, s2] {
        let _ = s.kill();
        let _ = s.wait();
    }
}

#[test]
fn pcap_of_a_group_session_decodes_in_tshark() {
    let Some(lab) = rig("pcap + tshark", || Lab::pair("vpcap")) else { return };
    if !common::have_tool("tshark", "tshark") {
        return;
    }
    let pcap = std::env::temp_dir().join(format!("tipc-pcap-{}.pcap", std::process::id()));
    let p2 = pcap.clone();
    let a = lab
        .node(0)
        .spawn("a", move || {
            Stack::builder().iface(NODE_IF).node_id(NodeId::from_text("pcap-a").expect("id")).pcap(&p2).start()
        })
        .expect("spawn")
        .join()
        .expect("a")
        .expect("stack a");
    let b = lab
        .node(1)
        .spawn("b", || Stack::builder().iface(NODE_IF).node_id(NodeId::from_text("pcap-b").expect("id")).start())
        .expect("spawn")
        .join()
        .expect("b")
        .expect("stack b");
    a.wait_for_nodes(1, Duration::from_secs(10)).expect("link");
    let spec = |i| GroupSpec {
        stype: ServiceType(4711),
        instance: Instance(i),
        scope: Scope::Cluster,
        loopback: false,
        member_events: true,
    };
    let ga = a.group_socket().expect("socket");
    let gb = b.group_socket().expect("socket");
    ga.join(spec(1)).expect("join");
    gb.join(spec(2)).expect("join");
    while ga.members().is_empty() || gb.members().is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    ga.broadcast(Bytes::from_static(b"hello")).expect("bcast");
    ga.send_anycast(Instance(2), Bytes::from(vec![3u8; 5000])).expect("anycast (fragmented)");
    let mut got = 0;
    while got < 2 {
        if let Ok(GroupEvent::Message { .. }) = gb.recv_timeout(Duration::from_secs(5)) {
            got += 1;
        }
    }
    drop((ga, gb));
    a.shutdown();
    b.shutdown();
    let all = Command::new("tshark").arg("-r").arg(&pcap).output().expect("tshark");
    let frames = String::from_utf8_lossy(&all.stdout).lines().count();
    let tipc = Command::new("tshark").arg("-r").arg(&pcap).args(["-Y", "tipc"]).output().expect("tshark");
    let tipc_frames = String::from_utf8_lossy(&tipc.stdout).lines().count();
    let bad = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-Y", "_ws.malformed", "-T", "fields", "-e", "frame.number", "-e", "tipc.usr"])
        .output()
        .expect("tshark");
    let bad = String::from_utf8_lossy(&bad.stdout).to_string();
    let _ = std::fs::remove_file(&pcap);
    eprintln!("{frames} frames, {tipc_frames} decoded as TIPC; malformed (frame, user):\n{bad}");
    assert!(frames > 20);
    assert_eq!(tipc_frames, frames, "every frame decodes as TIPC");
    for l in bad.lines() {
        let user = l.split_whitespace().nth(1).unwrap_or("");
        assert_eq!(
            user, "9",
            "only GROUP_PROTOCOL frames (which Wireshark 4.0 mis-decodes) may show as malformed: {l}"
        );
    }
}

/// Lines of a child's stream, each with the time it arrived.
fn lines_of(r: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<(std::time::Instant, String)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send((std::time::Instant::now(), l)).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (up to `limit`) for a line containing `what`; returns when it came.
fn wait_line(
    rx: &std::sync::mpsc::Receiver<(std::time::Instant, String)>,
    what: &str,
    limit: Duration,
    seen: &mut Vec<String>,
) -> Option<std::time::Instant> {
    let end = std::time::Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok((t, l)) => {
                let hit = l.contains(what);
                seen.push(l);
                if hit {
                    return Some(t);
                }
            }
            Err(_) => return None,
        }
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    let st = Command::new("kill").args([sig, &child.id().to_string()]).status().expect("kill");
    assert!(st.success(), "kill {sig}");
}

/// Waits up to `limit` for a child to exit.
fn exit_within(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// SIGUSR1 prints statistics while an example waits (on stdin, on a
/// socket); SIGTERM leaves the group so the others see LEFT at once — long
/// before link supervision (tolerance 1.5 s) could notice a dead node — and
/// exits 0 with the exit statistics.
#[test]
fn examples_answer_usr1_at_once_and_leave_cleanly_on_term() {
    let Some(lab) = rig("example signals", || Lab::bridge("vsig", 3)) else { return };
    let in_ns = |i: usize, name: &str, args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", lab.node(i).name()])
            .arg(example(name))
            .args(["--iface", NODE_IF])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect(name)
    };
    let mut obs = in_ns(0, "group_member", &["--node-id", "sig-obs", "-e", "join:4711:1", "recv:60000"]);
    let obs_out = lines_of(obs.stdout.take().expect("stdout"));
    let mut chat = in_ns(1, "group_chat", &["--node-id", "sig-chat", "--member", "2"]);
    let chat_err = lines_of(chat.stderr.take().expect("stderr"));
    let mut member = in_ns(2, "group_member", &["--node-id", "sig-member", "-e", "join:4711:3", "recv:60000"]);
    let member_err = lines_of(member.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    for m in ["member=4711:2", "member=4711:3"] {
        // the two join in either order: look at what was seen already too
        let want = format!("JOINED {m}");
        let up = seen.iter().any(|l: &String| l.contains(&want))
            || wait_line(&obs_out, &want, Duration::from_secs(20), &mut seen).is_some();
        assert!(up, "observer never saw {m} join: {seen:?}");
    }

    // SIGUSR1 while group_chat waits for a line on stdin, and while
    // group_member waits in a receive: statistics naming the peers at once
    for (who, child, err) in [("group_chat", &chat, &chat_err), ("group_member", &member, &member_err)] {
        let sent = std::time::Instant::now();
        signal(child, "-USR1");
        let mut lines = Vec::new();
        let at = wait_line(err, "sig-obs", Duration::from_secs(3), &mut lines);
        let at = at.unwrap_or_else(|| panic!("{who}: no statistics after SIGUSR1: {lines:?}"));
        eprintln!("{who}: statistics {:.1} ms after SIGUSR1", at.duration_since(sent).as_secs_f64() * 1e3);
    }

    // SIGTERM: exit 0 with statistics, and the observer sees LEFT at once
    for (who, child, err, m) in
        [("group_member", &mut member, &member_err, "4711:3"), ("group_chat", &mut chat, &chat_err, "4711:2")]
    {
        let sent = std::time::Instant::now();
        signal(child, "-TERM");
        let status = exit_within(child, Duration::from_secs(10));
        assert!(status.is_some_and(|s| s.success()), "{who}: SIGTERM gave {status:?}, not a clean exit 0");
        let mut lines = Vec::new();
        assert!(
            wait_line(err, "sig-obs", Duration::from_secs(1), &mut lines).is_some(),
            "{who}: no exit statistics: {lines:?}"
        );
        let left = wait_line(&obs_out, &format!("LEFT member={m}"), Duration::from_secs(5), &mut seen);
        let left = left.unwrap_or_else(|| panic!("{who}: observer saw no LEFT: {seen:?}"));
        let after = left.duration_since(sent);
        eprintln!("{who}: LEFT seen {:.1} ms after SIGTERM", after.as_secs_f64() * 1e3);
        assert!(after < Duration::from_millis(1000), "{who}: LEFT after {after:?}: a timeout, not a clean leave");
    }
    signal(&obs, "-TERM");
    assert!(exit_within(&mut obs, Duration::from_secs(10)).is_some_and(|s| s.success()), "observer exits 0");
}

/// Runs example `name` in namespace `ns` with `args`, its output piped.
fn spawn_example(ns: &tipc_testkit::netns::Netns, name: &str, args: &[&str]) -> std::process::Child {
    Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(example(name))
        .args(["--iface", NODE_IF])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_echo_client_and_server_talk_over_a_connection() {
    let Some(lab) = rig("echo examples", || Lab::pair("vecho")) else { return };
    let srv = spawn_example(lab.node(1), "echo_server", &["--node-id", "echo-srv", "--seconds", "20"]);
    let out =
        spawn_example(lab.node(0), "echo_client", &["--node-id", "echo-cli", "--requests", "50", "--size", "9000"])
            .wait_with_output()
            .expect("client");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "client failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("50 answers of 9000 bytes checked"), "{text}");
    let mut srv = srv;
    let _ = srv.kill();
    let so = srv.wait_with_output().expect("server");
    let st = String::from_utf8_lossy(&so.stdout);
    assert!(st.contains("ended after 50 messages: closed by the client"), "{st}");
}

#[test]
fn file_copy_moves_a_file_intact() {
    let Some(lab) = rig("file copy example", || Lab::pair("vfcp")) else { return };
    let dir = std::env::temp_dir().join(format!("tipc-fcp-{}", std::process::id()));
    let inbox = dir.join("in");
    std::fs::create_dir_all(&inbox).expect("dirs");
    let src = dir.join("payload.bin");
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&src, &data).expect("write");
    let srv = spawn_example(
        lab.node(1),
        "file_copy",
        &["--node-id", "fcp-srv", "serve", "--dir", inbox.to_str().expect("utf-8"), "--files", "1"],
    );
    let out = spawn_example(lab.node(0), "file_copy", &["--node-id", "fcp-cli", "send", src.to_str().expect("utf-8")])
        .wait_with_output()
        .expect("sender");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "sender failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let so = srv.wait_with_output().expect("server");
    let st = String::from_utf8_lossy(&so.stdout).to_string();
    let fnv_of = |s: &str| s.split_whitespace().find_map(|w| w.strip_prefix("fnv=")).map(str::to_string);
    assert!(st.contains("received payload.bin") && st.contains("5000000 bytes"), "{st}");
    assert_eq!(fnv_of(&st), fnv_of(&text), "the checksums differ:\n{st}\n{text}");
    assert_eq!(std::fs::read(inbox.join("payload.bin")).expect("copy"), data);
    let _ = std::fs::remove_dir_all(&dir);
}
