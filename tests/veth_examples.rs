//! The LAN examples and pcap recording, run as a user would, over veth.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::rig;
use tipc_rs::netns::{Lab, NODE_IF};
use tipc_rs::wire::{Instance, NodeId, ServiceType};
use tipc_rs::{GroupEvent, GroupSpec, Scope, Stack};

fn example(name: &str) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let p = dir.join("debug/examples").join(name);
    assert!(p.exists(), "{} not built (cargo test builds the examples)", p.display());
    p
}

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
