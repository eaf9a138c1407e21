//! The `tipc-rs` tool against in-process nodes (UDP on loopback, no
//! privileges) that serve control sockets: each view prints what the
//! node's own `stats()` says, and a wrong or absent socket gives a clear
//! error.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tipc_rs::wire::{Instance, ServiceRange, ServiceType};
use tipc_rs::{ConnKind, GroupSpec, Scope, Stack};

/// A directory of its own under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tipc-inspect-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

fn at(ip: &str) -> std::net::SocketAddr {
    format!("{ip}:6118").parse().expect("address")
}

/// Runs the tool; (exit success, stdout, stderr).
fn tool(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tipc-rs")).args(args).output().expect("tipc-rs runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// The tool's JSON for `args` (with `--socket sock -j`).
fn json(sock: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--socket", sock.to_str().expect("utf-8 path"), "-j"];
    all.extend_from_slice(args);
    let (ok, out, err) = tool(&all);
    assert!(ok, "tipc-rs {args:?}: {err}");
    serde_json::from_str(&out).expect("JSON")
}

#[test]
fn every_view_prints_what_the_nodes_own_statistics_say() {
    let dir = scratch("views");
    let sock = dir.join("a.sock");
    let a = Stack::builder()
        .udp(at("127.79.16.1"))
        .udp_peer(at("127.79.16.2"))
        .control_socket(&sock)
        .start()
        .expect("node a");
    let b = Stack::builder().udp(at("127.79.16.2")).udp_peer(at("127.79.16.1")).start().expect("node b");
    a.wait_for_nodes(1, Duration::from_secs(15)).expect("link");
    assert_eq!(std::fs::metadata(&sock).expect("socket file").permissions().mode() & 0o777, 0o600, "owner only");
    // a group member on each node, a bound port socket and a listener on a
    let spec = |i| GroupSpec {
        stype: ServiceType(4715),
        instance: Instance(i),
        scope: Scope::Cluster,
        loopback: false,
        member_events: false,
    };
    let ga = a.group_socket().expect("socket");
    ga.join(spec(1)).expect("join");
    let gb = b.group_socket().expect("socket");
    gb.join(spec(2)).expect("join");
    let rdm = a.port_socket().expect("socket");
    rdm.bind(ServiceRange::single(ServiceType(1016), Instance(7)), Scope::Node).expect("bind");
    let l = a.conn_socket(ConnKind::Seqpacket).expect("socket");
    l.bind(ServiceRange::single(ServiceType(1017), Instance(1)), Scope::Cluster).expect("bind");
    l.listen().expect("listen");
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while ga.members().is_empty() {
        assert!(std::time::Instant::now() < end, "the members never met");
        std::thread::sleep(Duration::from_millis(10));
    }
    gb.broadcast(Bytes::from_static(b"x")).expect("broadcast");
    std::thread::sleep(Duration::from_millis(100));
    let st = serde_json::to_value(a.stats()).expect("stats as JSON");

    // what does not move while nothing is sent: equal as a whole
    assert_eq!(json(&sock, &["nametable", "show"]), st["names"]);
    assert_eq!(json(&sock, &["socket", "list"]), st["sockets"]);
    assert_eq!(json(&sock, &["bearer", "list"]), serde_json::json!(["udp:udp"]));
    let sockets = st["sockets"].as_array().expect("sockets");
    assert_eq!(sockets.len(), 3, "{sockets:?}");
    assert!(sockets.iter().any(|s| s["listening"] == true && s["bindings"][0]["range"]["type"] == 1017));
    assert!(sockets.iter().any(|s| s["group_type"] == 4715 && s["group_instance"] == 1));
    // nodes and links: names, peers and states
    let nodes = json(&sock, &["node", "list"]);
    assert_eq!(nodes[0]["identity"], st["node_id"]);
    assert_eq!(nodes[0]["hash"], st["address"]);
    assert_eq!((&nodes[1]["identity"], &nodes[1]["hash"]), (&st["links"][0]["peer_id"], &st["links"][0]["peer"]));
    assert_eq!(nodes[1]["state"], "up");
    let name = st["links"][0]["name"].as_str().expect("link name").to_string();
    let list = json(&sock, &["link", "list"]);
    assert_eq!(list, serde_json::json!([{ "broadcast-link": "up" }, { name.clone(): "up" }]));
    let shown = json(&sock, &["link", "stat", "show", &name]);
    for k in ["name", "peer", "peer_id", "state", "active", "mtu", "window", "tolerance", "priority"] {
        assert_eq!(shown[0][k], st["links"][0][k], "link stat show: {k}");
    }
    let sent = st["links"][0]["stats"]["sent_pkts"].as_u64().expect("a counter");
    assert!(shown[0]["stats"]["sent_pkts"].as_u64().expect("a counter") >= sent, "counters only grow");
    assert_eq!(json(&sock, &["link", "stat", "show"]).as_array().map(Vec::len), Some(2), "broadcast link and the link");
    // the group as a's member socket sees it, whole and filtered
    let members = json(&sock, &["group", "show"]);
    assert_eq!(members.as_array().map(Vec::len), Some(1));
    assert_eq!(members[0]["member"], st["members"][0]["member"]);
    assert_eq!(members[0]["group"], 4715);
    assert_eq!(json(&sock, &["group", "show", "4715"]), members);
    assert_eq!(json(&sock, &["group", "show", "9999"]), serde_json::json!([]));

    // the text views say the same things
    let s = sock.to_str().expect("path");
    let (ok, out, _) = tool(&["-s", s, "link", "list"]);
    assert!(ok && out.contains("broadcast-link: up") && out.contains(&format!("{name}: up")), "{out}");
    let (ok, out, _) = tool(&["-s", s, "nametable", "show"]);
    assert!(ok && out.starts_with("Type") && out.contains("1016") && out.contains("node"), "{out}");
    let (ok, out, _) = tool(&["-s", s, "socket", "list"]);
    assert!(ok && out.contains("listening") && out.contains("member of group 4715 as 1"), "{out}");
    let (ok, out, _) = tool(&["-s", s, "link", "stat", "show", &name]);
    assert!(ok && out.contains("ACTIVE") && out.contains("Tolerance:1500 ms"), "{out}");
    let (ok, _, err) = tool(&["-s", s, "link", "stat", "show", "nosuchlink"]);
    assert!(!ok && err.contains("no link named nosuchlink"), "{err}");

    // stopping the node removes its socket
    drop((ga, rdm, l));
    a.shutdown();
    assert!(!sock.exists(), "the control socket went with the node");
    drop(gb);
    b.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_or_absent_socket_gives_a_clear_error() {
    let dir = scratch("errors");
    // none given
    let (ok, _, err) = tool(&["link", "list"]);
    assert!(!ok && err.contains("no control socket given"), "{err}");
    // nothing there
    let absent = dir.join("absent.sock");
    let (ok, _, err) = tool(&["-s", absent.to_str().expect("path"), "link", "list"]);
    assert!(!ok && err.contains("no control socket at") && err.contains("absent.sock"), "{err}");
    // a plain file
    let file = dir.join("file");
    std::fs::write(&file, b"not a socket").expect("file");
    let (ok, _, err) = tool(&["-s", file.to_str().expect("path"), "link", "list"]);
    assert!(!ok && err.contains("nobody answers"), "{err}");
    // a socket that answers something else
    let other = dir.join("other.sock");
    let l = std::os::unix::net::UnixListener::bind(&other).expect("bind");
    let t = std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let (mut c, _) = l.accept().expect("accept");
        let mut line = String::new();
        std::io::BufReader::new(&c).read_line(&mut line).expect("request");
        c.write_all(b"hello\n").expect("answer");
    });
    let (ok, _, err) = tool(&["-s", other.to_str().expect("path"), "link", "list"]);
    assert!(!ok && err.contains("not JSON"), "{err}");
    t.join().expect("fake server");
    // a live node's socket path is refused to a second node, a stale one reused
    let sock = dir.join("n.sock");
    // (replicast to a peer that is not there: multicast mode would take
    // port 6118 of every address)
    let node = |ip: &str| Stack::builder().udp(at(ip)).udp_peer(at("127.79.17.9")).control_socket(&sock);
    let a = node("127.79.17.1").start().expect("node");
    let second = node("127.79.17.2").start();
    assert!(matches!(second, Err(tipc_rs::Error::ControlSocket { .. })), "{second:?}");
    a.kill();
    // killed: the file is gone too (the stack's drop removes it)
    let stale = std::os::unix::net::UnixListener::bind(&sock).expect("a stale socket nobody serves");
    drop(stale);
    let b = node("127.79.17.3").start().expect("takes the stale path");
    assert!(json(&sock, &["node", "list"])[0]["identity"].is_string(), "the new node answers");
    b.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The path of one of the workspace's examples (`cargo test` builds them
/// beside the tests).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let p = exe.parent().and_then(|d| d.parent()).expect("target dir").join("examples").join(name);
    assert!(p.exists(), "{} not built (a workspace `cargo test` builds the examples)", p.display());
    p
}

/// `tipc-rs` against the nodes of a running `cluster_demo` (UDP on
/// loopback, held after the demo): its views agree with the statistics
/// each node wrote of itself when the hold began.
#[test]
fn the_tool_reads_a_running_cluster_demo() {
    use std::io::BufRead;
    let dir = scratch("demo");
    let mut demo = Command::new(example("cluster_demo"))
        .args(["--udp", "--messages", "50", "--hold", "--control-socket", dir.to_str().expect("path")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cluster_demo runs");
    let out = demo.stdout.take().expect("stdout");
    let mut held = false;
    for line in std::io::BufReader::new(out).lines() {
        let line = line.expect("a line");
        if line.contains("Holding the cluster") {
            held = true;
            break;
        }
    }
    assert!(held, "cluster_demo never held its nodes");
    let sock = dir.join("node0.sock");
    let own: Value = serde_json::from_slice(&std::fs::read(dir.join("node0.json")).expect("node0.json")).expect("JSON");
    assert_eq!(json(&sock, &["nametable", "show"]), own["names"]);
    assert_eq!(json(&sock, &["socket", "list"]), own["sockets"]);
    let links = json(&sock, &["link", "list"]);
    let want: Vec<Value> = std::iter::once(serde_json::json!({ "broadcast-link": "up" }))
        .chain(own["links"].as_array().expect("links").iter().map(|l| {
            let mut m = serde_json::Map::new();
            m.insert(
                l["name"].as_str().expect("name").into(),
                Value::from(if l["state"] == "Established" { "up" } else { "down" }),
            );
            Value::Object(m)
        }))
        .collect();
    assert_eq!(links, Value::Array(want));
    let nodes = json(&sock, &["node", "list"]);
    assert_eq!(nodes[0]["identity"], "demo-0");
    assert_eq!(nodes.as_array().map(Vec::len), Some(4), "this node and its three peers: {nodes}");
    // the node the demo killed is down; its own socket went with it
    assert!(nodes.as_array().expect("nodes").iter().any(|n| n["state"] == "down"), "{nodes}");
    let members = json(&sock, &["group", "show", "4711"]);
    assert_eq!(members, own["members"]);
    // SIGTERM ends the demo cleanly
    let pid = demo.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success());
    let status = demo.wait().expect("demo exits");
    assert!(status.success(), "{status}");
    assert!(!sock.exists(), "the nodes' sockets went with them");
    let _ = std::fs::remove_dir_all(&dir);
}
