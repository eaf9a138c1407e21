//! The UDP bearer on one host, no namespaces: nodes on loopback addresses
//! in replicast mode. In-process stacks run groups, RDM and a connection;
//! and two `group_member` processes run as an unprivileged user (as root
//! the test drops to `nobody` with every capability removed, through
//! util-linux's `setpriv`; otherwise it runs as the calling user) — while
//! the same user is refused a raw Ethernet socket.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tipc_rs::wire::{Instance, ServiceRange, ServiceType};
use tipc_rs::{ConnKind, GroupEvent, Mode, Scope, Stack};

fn at(ip: &str) -> SocketAddr {
    format!("{ip}:6118").parse().expect("address")
}

/// A stack at `local` listing `peers`.
fn node(local: &str, peers: &[&str]) -> Stack {
    let mut b = Stack::builder().udp(at(local));
    for p in peers {
        b = b.udp_peer(at(p));
    }
    b.start().expect("a UDP stack starts without privileges")
}

#[test]
fn three_nodes_on_loopback_run_groups_rdm_and_a_connection() {
    let ips = ["127.79.0.1", "127.79.0.2", "127.79.0.3"];
    let n: Vec<Stack> = (0..3)
        .map(|i| node(ips[i], &ips.iter().enumerate().filter(|(j, _)| *j != i).map(|x| *x.1).collect::<Vec<_>>()))
        .collect();
    for s in &n {
        s.wait_for_nodes(2, Duration::from_secs(15)).expect("links over UDP");
    }
    // the identity the kernel would give: the IPv4 address, then zeros
    assert_eq!(n[0].node_id().to_string(), "7f4f0001");
    // a group: 1 broadcasts, anycasts and multicasts; 2 and 3 receive
    let g = common::join_group(&n);
    g[0].broadcast(Bytes::from_static(b"all")).expect("bcast");
    g[0].send_multicast(Instance(3), Bytes::from_static(b"three")).expect("mcast");
    g[0].send_anycast(Instance(2), Bytes::from_static(b"two")).expect("anycast");
    let texts = |s: &tipc_rs::GroupSocket| {
        let mut v = Vec::new();
        let end = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < end {
            if let Ok(GroupEvent::Message { mode, data, .. }) = s.recv_timeout(Duration::from_millis(50)) {
                v.push((mode, String::from_utf8_lossy(&data).to_string()));
            }
        }
        v
    };
    // (an anycast, and a multicast that finds one member, travel as a
    // unicast to that socket, as in the kernel: TIPC_GRP_UCAST_MSG)
    assert_eq!(texts(&g[1]), vec![(Mode::Broadcast, "all".into()), (Mode::Unicast, "two".into())]);
    assert_eq!(texts(&g[2]), vec![(Mode::Broadcast, "all".into()), (Mode::Unicast, "three".into())]);
    // RDM by name, and a SEQPACKET echo of 66 000 bytes (IP fragments)
    let svc = ServiceRange::single(ServiceType(1000), Instance(1));
    let server = n[2].conn_socket(ConnKind::Seqpacket).expect("socket");
    server.bind(svc, Scope::Cluster).expect("bind");
    server.listen().expect("listen");
    let rdm = n[2].port_socket().expect("socket");
    rdm.bind(ServiceRange::single(ServiceType(1001), Instance(1)), Scope::Cluster).expect("bind");
    let end = Instant::now() + Duration::from_secs(10);
    while n[0].name_table().iter().filter(|p| matches!(p.range.stype.0, 1000 | 1001)).count() < 2 {
        assert!(Instant::now() < end, "names never spread");
        std::thread::sleep(Duration::from_millis(20));
    }
    n[0].port_socket()
        .expect("socket")
        .send_to_name(ServiceType(1001), Instance(1), Bytes::from_static(b"rdm"), false)
        .expect("rdm");
    assert_eq!(&rdm.recv_timeout(Duration::from_secs(5)).expect("rdm arrives").data[..], b"rdm");
    echo_66000(server, &n[0], 1000);
}

/// `server` (listening, bound to `stype`:1) echoes one message; a
/// connection from `client` sends 66 000 bytes (IP fragments on UDP) and
/// gets them back.
fn echo_66000(server: tipc_rs::ConnSocket, client: &Stack, stype: u32) {
    let echo = std::thread::spawn(move || {
        let (c, _) = server.accept_timeout(Duration::from_secs(10)).expect("accept");
        let m = c.recv_timeout(Duration::from_secs(10)).expect("recv").expect("a message");
        c.send(m).expect("echo");
        std::thread::sleep(Duration::from_millis(300));
    });
    let c = client.conn_socket(ConnKind::Seqpacket).expect("socket");
    c.connect(ServiceType(stype), Instance(1)).expect("connect");
    let big = Bytes::from((0..66_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    c.send(big.clone()).expect("send");
    assert_eq!(c.recv_timeout(Duration::from_secs(10)).expect("echo").expect("a message"), big);
    echo.join().expect("server");
}

/// A copy of example `name` that `nobody` can run (the build tree may be
/// private to root), in a new folder of its own: (folder, program).
fn runnable_by_all(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("tipc-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let exe = dir.join(name);
    std::fs::copy(common::example(name), &exe).expect("copy");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (dir, exe)
}

/// Runs an example with `args`, as `nobody` without capabilities when we
/// are root.
fn unprivileged(exe: &std::path::Path, args: &[&str]) -> Command {
    let root = tipc_testkit::netns::privileged();
    let mut c = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]);
        c.arg(exe);
        c
    } else {
        Command::new(exe)
    };
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

#[test]
fn an_unprivileged_user_runs_two_nodes_over_udp() {
    let root = tipc_testkit::netns::privileged();
    if root && !common::have_tool("setpriv", "util-linux") {
        return;
    }
    let (dir, exe) = runnable_by_all("group_member");
    // the same user cannot open a raw Ethernet socket
    let raw = unprivileged(&exe, &["--iface", "lo", "self"]).output().expect("run");
    let raw_err = String::from_utf8_lossy(&raw.stdout).to_string() + &String::from_utf8_lossy(&raw.stderr);
    assert!(!raw.status.success() && raw_err.contains("permission"), "raw Ethernet should be refused: {raw_err}");
    let a = unprivileged(
        &exe,
        &[
            "--udp",
            "127.80.0.1",
            "--udp-peer",
            "127.80.0.2",
            "-e",
            "join:4711:1",
            "wait-members:1:10000",
            "bcast:from-a",
            "recv:2000",
        ],
    )
    .spawn()
    .expect("node a");
    let b = unprivileged(
        &exe,
        &[
            "--udp",
            "127.80.0.2",
            "--udp-peer",
            "127.80.0.1",
            "-e",
            "join:4711:2",
            "wait-members:1:10000",
            "bcast:from-b",
            "recv:2000",
        ],
    )
    .spawn()
    .expect("node b");
    let (a, b) = (a.wait_with_output().expect("a"), b.wait_with_output().expect("b"));
    let _ = std::fs::remove_dir_all(&dir);
    let (oa, ob) = (String::from_utf8_lossy(&a.stdout), String::from_utf8_lossy(&b.stdout));
    eprintln!("a:\n{oa}{}\nb:\n{ob}{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    assert!(oa.contains("data=\"from-b\"") && oa.contains("DONE status=ok"), "{oa}");
    assert!(ob.contains("data=\"from-a\"") && ob.contains("DONE status=ok"), "{ob}");
}

/// `cluster_demo --udp`: the whole demo on UDP loopback addresses, run
/// without privileges (as `nobody` when we are root): every message of
/// every mode delivered, the member's leave and the node's death seen.
#[test]
fn the_demo_runs_over_udp_without_privileges() {
    let root = tipc_testkit::netns::privileged();
    if root && !common::have_tool("setpriv", "util-linux") {
        return;
    }
    let (dir, exe) = runnable_by_all("cluster_demo");
    let out = unprivileged(&exe, &["--udp", "--messages", "200"]).output().expect("run the demo");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Summary (UDP bearers on loopback)") && text.contains("Result: nothing lost"), "{text}");
}

/// Garbage sent to a node's UDP port — empty, short, truncated, lying
/// size fields, random bytes — is counted and dropped: the node neither
/// panics nor loses its link, and still delivers.
#[test]
fn garbage_datagrams_are_counted_and_dropped() {
    let a = node("127.82.0.1", &["127.82.0.2"]);
    let b = node("127.82.0.2", &["127.82.0.1"]);
    a.wait_for_nodes(1, Duration::from_secs(15)).expect("link");
    let junk = std::net::UdpSocket::bind("127.82.0.3:0").expect("socket");
    let to = at("127.82.0.1");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let header = |size: u32, user: u32| ((2u32 << 29) | (user << 25) | (10 << 21) | size).to_be_bytes();
    let mut sent = 0;
    for shape in [&[][..], &[1, 2, 3][..], &header(40, 0)[..], &header(2000, 7)[..], &header(0, 13)[..]] {
        junk.send_to(shape, to).expect("send");
        sent += 1;
    }
    for i in 0..2000 {
        let len = (rnd() % 1500) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        if i % 2 == 0 && len >= 40 {
            // a plausible header with a random user and size
            d[..4].copy_from_slice(&header((rnd() % 2000) as u32, (rnd() % 16) as u32));
        }
        junk.send_to(&d, to).expect("send");
        sent += 1;
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a.up_nodes().len(), 1, "the link survived");
    let bearer = a.bearer_stats().expect("bearer stats");
    let stats = a.stats().to_string();
    eprintln!("{sent} junk datagrams: {bearer:?}\n{stats}");
    assert!(bearer.drop_malformed > 0, "the bearer counted what it dropped: {bearer:?}");
    assert!(stats.contains("Bearer 0 udp:udp at 127.82.0.1:6118, MTU 14000, priority 10"), "{stats}");
    // and it still delivers
    let rx = a.port_socket().expect("socket");
    let to = rx.id();
    b.port_socket().expect("socket").send_to(to.node, to.port, Bytes::from_static(b"still here")).expect("send");
    assert_eq!(&rx.recv_timeout(Duration::from_secs(5)).expect("delivered").data[..], b"still here");
}

/// IPv6: two nodes on [::1] (replicast, ports 6211 and 6212) link and
/// exchange a message; their UDP media addresses are IPv6 ones.
#[test]
fn ipv6_nodes_link_on_loopback() {
    let v6 = |p: u16| SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, p));
    if std::net::UdpSocket::bind(v6(0)).is_err() {
        common::skip("no IPv6 on this host's loopback (::1)");
        return;
    }
    let start = |me: u16, peer: u16, id: &str| {
        Stack::builder()
            .udp(v6(me))
            .udp_peer(v6(peer))
            .node_id(tipc_rs::wire::NodeId::from_text(id).expect("id"))
            .start()
            .expect("stack on IPv6")
    };
    let a = start(6211, 6212, "v6-a");
    let b = start(6212, 6211, "v6-b");
    a.wait_for_nodes(1, Duration::from_secs(15)).expect("link over IPv6");
    assert_eq!(a.links()[0].peer_media, tipc_rs::wire::MediaAddr::Udp(v6(6212)));
    let rx = b.port_socket().expect("socket");
    let to = rx.id();
    a.port_socket().expect("socket").send_to(to.node, to.port, Bytes::from(vec![6u8; 1200])).expect("send");
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).expect("delivered").data.len(), 1200);
}

/// Replicast peers are learned from discovery: three nodes in a ring, each
/// listing only the next (A → B → C → A), end up copying their
/// broadcast-type packets to both others, so the broadcast link reaches
/// everyone; the links stay up and a group broadcast reaches both members.
#[test]
fn replicast_peers_are_learned_from_discovery() {
    let ips = ["127.84.0.1", "127.84.0.2", "127.84.0.3"];
    let n: Vec<Stack> = (0..3).map(|i| node(ips[i], &[ips[(i + 1) % 3]])).collect();
    for s in &n {
        s.wait_for_nodes(2, Duration::from_secs(15)).expect("links over UDP");
    }
    for (i, s) in n.iter().enumerate() {
        let row = s.bearers().remove(0);
        let mut peers = row.replicast.clone();
        peers.sort();
        let others: Vec<SocketAddr> = (0..3).filter(|&j| j != i).map(|j| at(ips[j])).collect();
        assert_eq!(peers, others, "node {i} copies broadcast-type packets to both others");
        assert_eq!(row.stats.expect("stats").peers_learned, 1, "node {i} learned the one it does not list");
    }
    let socks = common::join_group(&n);
    socks[0].broadcast(Bytes::from_static(b"to all")).expect("broadcast");
    for s in &socks[1..] {
        let got = loop {
            if let tipc_rs::GroupEvent::Message { data, .. } =
                s.recv_timeout(Duration::from_secs(5)).expect("broadcast")
            {
                break data;
            }
        };
        assert_eq!(&got[..], b"to all");
    }
    std::thread::sleep(Duration::from_secs(2));
    for s in &n {
        assert_eq!(s.up_nodes().len(), 2, "the links stayed up");
    }
}

/// Encryption over the UDP bearer: two nodes with one master key link and
/// carry a SEQPACKET echo of 66 000 bytes (encrypted
/// packets within the UDP link MTU); a third with another key is not heard.
#[test]
fn an_encrypted_cluster_on_udp() {
    const K: &str = "0x000102030405060708090a0b0c0d0e0f10111213 master";
    const OTHER: &str = "0x202122232425262728292a2b2c2d2e2f30313233 master";
    let ips = ["127.79.1.1", "127.79.1.2", "127.79.1.3"];
    let keyed = |i: usize, key: &str| {
        let mut b = Stack::builder().udp(at(ips[i])).key(key.parse().expect("key"));
        for (j, p) in ips.iter().enumerate() {
            if j != i {
                b = b.udp_peer(at(p));
            }
        }
        b.start().expect("an encrypted UDP stack")
    };
    let n = [keyed(0, K), keyed(1, K), keyed(2, OTHER)];
    n[0].wait_for_nodes(1, Duration::from_secs(15)).expect("a link over UDP");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(n[0].links().len(), 1, "only the node with the same key: {:?}", n[0].links());
    assert!(n[2].links().is_empty(), "the other key links to nobody");
    let svc = ServiceRange::single(ServiceType(1100), Instance(1));
    let server = n[1].conn_socket(ConnKind::Seqpacket).expect("socket");
    server.bind(svc, Scope::Cluster).expect("bind");
    server.listen().expect("listen");
    let end = Instant::now() + Duration::from_secs(10);
    while !n[0].name_table().iter().any(|p| p.range == svc) {
        assert!(Instant::now() < end, "the name never spread");
        std::thread::sleep(Duration::from_millis(20));
    }
    echo_66000(server, &n[0], 1100);
    let s = n[0].crypto_stats();
    assert!(s.tx_encrypted > 20 && s.rx_decrypted > 20 && s.rx_bad_tag > 0, "{s:?}");
    let bs = n[0].bearer_stats().expect("stats");
    assert_eq!(bs.drop_malformed, 0, "encrypted datagrams pass the bearer whole");
    for s in n {
        s.shutdown();
    }
}

/// Two stacks at `a` and `b` listing each other, linked.
fn linked_pair(a: &str, b: &str) -> [Stack; 2] {
    let n = [node(a, &[b]), node(b, &[a])];
    for s in &n {
        s.wait_for_nodes(1, Duration::from_secs(15)).expect("link over UDP");
    }
    n
}

/// `GroupSocket::send_many` delivers a burst whole and in order through a
/// window it exhausts many times over, and once the reader has read
/// everything the sender has its whole window back (no read message is
/// left unreported to flow control).
#[test]
fn send_many_keeps_order_and_a_reader_that_caught_up_reopens_the_whole_window() {
    let n = linked_pair("127.79.5.1", "127.79.5.2");
    let mut g = common::join_group(&n);
    let to = g[1].id();
    // 8 KiB messages: 9 blocks of the 780-block window each
    let size = 8192;
    let burst: Vec<Bytes> = (0..191u32)
        .map(|i| {
            let mut v = vec![0u8; size];
            v[..4].copy_from_slice(&i.to_be_bytes());
            Bytes::from(v)
        })
        .collect();
    // the sender in a thread of its own: if the window never reopened it
    // would wait for ever, and the reader below fails on its timeout
    let g0 = std::sync::Arc::new(g.remove(0));
    let sender = {
        let (g0, burst) = (g0.clone(), burst.clone());
        std::thread::spawn(move || g0.send_many(tipc_rs::Dest::Member(to), &burst).expect("send_many"))
    };
    let mut got = Vec::new();
    while got.len() < burst.len() {
        if let GroupEvent::Message { data, .. } = g[0].recv_timeout(Duration::from_secs(10)).expect("the burst arrives")
        {
            got.push(u32::from_be_bytes(data[..4].try_into().expect("4 bytes")));
        }
    }
    assert_eq!(sender.join().expect("sender"), burst.len());
    assert_eq!(got, (0..191).collect::<Vec<u32>>(), "whole and in order");
    // the reader read everything: the sender's window is back to at
    // least ADV_ACTIVE_LOW (585 blocks), 65 messages of 9 blocks; give
    // the last advertisement time to arrive
    std::thread::sleep(Duration::from_millis(300));
    let mut fit = 0;
    while fit < 100 && g0.try_send_unicast(to, burst[0].clone()).is_ok() {
        fit += 1;
    }
    assert!(fit >= 64, "only {fit} messages of 9 blocks fit the window after the reader caught up");
}

/// `send_many`'s edges: an empty burst sends nothing, a socket that has
/// not joined a group and a member that does not exist are typed errors
/// when the first message fails, and an error after part of a burst went
/// out returns the count sent (the rest, sent again, shows the error).
#[test]
fn send_many_edges_are_counts_or_typed_errors() {
    let n = linked_pair("127.79.6.1", "127.79.6.2");
    let lone = n[0].group_socket().expect("socket");
    let msg = Bytes::from_static(b"m");
    assert!(matches!(
        lone.send_many(tipc_rs::Dest::GroupBroadcast, std::slice::from_ref(&msg)),
        Err(tipc_rs::Error::NotJoined)
    ));
    let g = common::join_group(&n);
    assert_eq!(g[0].send_many(tipc_rs::Dest::Member(g[1].id()), &[]).expect("empty burst"), 0);
    let ghost = tipc_rs::wire::MemberId { node: g[1].id().node, port: tipc_rs::wire::PortId(g[1].id().port.0 ^ 1) };
    assert!(matches!(
        g[0].send_many(tipc_rs::Dest::Member(ghost), std::slice::from_ref(&msg)),
        Err(tipc_rs::Error::NoSuchMember(m)) if m == ghost
    ));
    // three messages, the last one too large: two go, then the count
    let big = Bytes::from(vec![0u8; 70_000]);
    let burst = [msg.clone(), msg.clone(), big.clone()];
    assert_eq!(g[0].send_many(tipc_rs::Dest::Member(g[1].id()), &burst).expect("partial"), 2);
    assert!(g[0].send_many(tipc_rs::Dest::Member(g[1].id()), &burst[2..]).is_err(), "the rest shows the error");
    for _ in 0..2 {
        loop {
            if let GroupEvent::Message { data, .. } = g[1].recv_timeout(Duration::from_secs(5)).expect("delivered") {
                assert_eq!(data, msg);
                break;
            }
        }
    }
}

/// `Stack::stats()` serialises to JSON with the snapshot's own values:
/// identities and addresses as the text `tipc` prints, the link's state
/// and counters, its tolerance in microseconds, the name table with
/// scopes by name, group members, the broadcast link as named figures,
/// and each bearer's settings and counters.
#[test]
fn stats_serialise_to_json_with_the_snapshots_values() {
    let n = linked_pair("127.79.6.1", "127.79.6.2");
    let g = common::join_group(&n);
    g[0].broadcast(Bytes::from_static(b"counted")).expect("broadcast");
    // member events come first
    while !matches!(g[1].recv_timeout(Duration::from_secs(5)).expect("the broadcast"), GroupEvent::Message { .. }) {}
    let s = n[0].stats();
    let j = serde_json::to_value(&s).expect("stats serialise");
    assert_eq!(j["node_id"], s.node_id.to_string());
    assert_eq!(j["address"], s.address.expect("an address").to_string());
    assert_eq!(j["address"].as_str().map(str::len), Some(8), "an address as 8 hex digits");
    let (l, jl) = (&s.links[0], &j["links"][0]);
    assert_eq!(j["links"].as_array().map(Vec::len), Some(s.links.len()));
    assert_eq!(jl["name"], l.name);
    assert_eq!(jl["peer"], l.peer.to_string());
    assert_eq!(jl["peer_id"], l.peer_id.to_string());
    assert_eq!(jl["peer_media"], l.peer_media.to_string());
    assert_eq!(jl["peer_media"], "127.79.6.2:6118");
    assert_eq!(jl["state"], "Established");
    assert_eq!(jl["active"], true);
    assert_eq!(jl["window"], l.window);
    assert_eq!(jl["tolerance"], l.tolerance.as_micros());
    assert_eq!(jl["tolerance"], 1_500_000, "1.5 s in microseconds");
    assert_eq!(jl["stats"]["sent_pkts"], l.stats.sent_pkts);
    assert!(l.stats.sent_pkts > 0 && l.stats.recv_pkts > 0);
    assert_eq!(jl["stats"]["recv_pkts"], l.stats.recv_pkts);
    let jb = &j["bcast"];
    assert_eq!(
        [&jb["sent"], &jb["retransmitted"], &jb["in_flight"], &jb["waiting"]].map(serde_json::Value::as_u64),
        [Some(s.bcast.0), Some(s.bcast.1), Some(s.bcast.2 as u64), Some(s.bcast.3 as u64)]
    );
    // the name table: both members' publications, scope by name
    assert_eq!(j["names"].as_array().map(Vec::len), Some(s.names.len()));
    let mine = s.names.iter().position(|p| p.port == g[0].id().port).expect("own publication");
    let jp = &j["names"][mine];
    assert_eq!((jp["range"]["type"].as_u64(), jp["range"]["lower"].as_u64()), (Some(4711), Some(1)));
    assert_eq!(jp["scope"], "cluster");
    assert_eq!(jp["node"], s.names[mine].node.to_string());
    assert_eq!(jp["port"], s.names[mine].port.0);
    // group members as the socket sees them
    let jm = &j["members"][0];
    assert_eq!(jm["member"]["node"], s.members[0].member.node.to_string());
    assert_eq!(jm["member"]["port"], s.members[0].member.port.0);
    assert_eq!(jm["state"], format!("{:?}", s.members[0].state));
    assert_eq!(jm["window"], s.members[0].window);
    // the bearer: its settings, counters and replicast peers
    let (b, jb) = (&s.bearers[0], &j["bearers"][0]);
    assert_eq!(jb["settings"]["name"], b.settings.name);
    assert_eq!(jb["settings"]["media"], "127.79.6.1:6118");
    assert_eq!(jb["stats"]["rx_frames"], b.stats.expect("counters").rx_frames);
    assert_eq!(jb["replicast"][0], "127.79.6.2:6118");
    assert_eq!(j["core"]["malformed"], s.core.malformed);
    assert_eq!(j["crypto"]["tx_encrypted"], 0);
    // and the tables still print
    assert!(s.to_string().contains("Established"));
}

/// Whether `fd` is readable and writable now (a zero-timeout `poll`).
fn poll_now(fd: &impl std::os::fd::AsFd) -> (bool, bool) {
    use nix::poll::{PollFd, PollFlags, poll};
    let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN | PollFlags::POLLOUT)];
    poll(&mut p, 0u8).expect("poll");
    let r = p[0].revents().unwrap_or(PollFlags::empty());
    (r.contains(PollFlags::POLLIN), r.contains(PollFlags::POLLOUT))
}

/// One epoll set waits on the readiness descriptors of 50 group sockets
/// while another node broadcasts to them and unicasts to each: every
/// message arrives, a descriptor is readable exactly while its socket has
/// something to receive, and every wake-up finds something to read.
#[test]
fn epoll_waits_on_fifty_group_sockets_and_nothing_is_lost() {
    use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
    let n = linked_pair("127.79.7.1", "127.79.7.2");
    let sender = n[0].group_socket().expect("socket");
    let spec = |i: u32| tipc_rs::GroupSpec {
        stype: ServiceType(4712),
        instance: Instance(i),
        scope: Scope::Cluster,
        loopback: false,
        member_events: false,
    };
    sender.join(spec(1000)).expect("join");
    let socks: Vec<tipc_rs::GroupSocket> = (0..50)
        .map(|i| {
            let s = n[1].group_socket().expect("socket");
            s.join(spec(i)).expect("join");
            s
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(15);
    while sender.members().len() < socks.len() {
        assert!(Instant::now() < end, "the members never all met");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ep = Epoll::new(EpollCreateFlags::empty()).expect("epoll");
    for (i, s) in socks.iter().enumerate() {
        let fd = s.ready_fd().expect("readiness descriptor");
        assert_eq!(poll_now(fd), (false, true), "nothing to read yet, nothing blocked");
        ep.add(fd, EpollEvent::new(EpollFlags::EPOLLIN, i as u64)).expect("epoll add");
    }
    let rounds = 20u32;
    let ids: Vec<_> = socks.iter().map(tipc_rs::GroupSocket::id).collect();
    let tx = std::thread::spawn(move || {
        for r in 0..rounds {
            sender.broadcast(Bytes::from(format!("b{r}"))).expect("broadcast");
            for id in &ids {
                sender.send_unicast(*id, Bytes::from(format!("u{r}"))).expect("unicast");
            }
        }
        sender
    });
    let want = 2 * rounds as usize;
    let mut got = vec![Vec::<String>::new(); socks.len()];
    let mut events = [EpollEvent::empty(); 64];
    let mut empty_wakeups = 0;
    while got.iter().any(|g| g.len() < want) {
        assert!(
            Instant::now() < end + Duration::from_secs(15),
            "lost: {:?}",
            got.iter().map(Vec::len).collect::<Vec<_>>()
        );
        let k = ep.wait(&mut events, 1000u16).expect("epoll_wait");
        for ev in &events[..k] {
            let i = ev.data() as usize;
            let mut read = 0;
            while let Some(e) = socks[i].try_recv() {
                if let GroupEvent::Message { data, .. } = e {
                    got[i].push(String::from_utf8_lossy(&data).into_owned());
                }
                read += 1;
            }
            empty_wakeups += usize::from(read == 0);
            assert!(!poll_now(socks[i].ready_fd().expect("fd")).0, "drained: not readable");
        }
    }
    drop(tx.join().expect("sender"));
    for (i, g) in got.iter().enumerate() {
        let b: Vec<&String> = g.iter().filter(|m| m.starts_with('b')).collect();
        let u: Vec<&String> = g.iter().filter(|m| m.starts_with('u')).collect();
        let expect = |p: &str| (0..rounds).map(|r| format!("{p}{r}")).collect::<Vec<_>>();
        assert_eq!(b, expect("b").iter().collect::<Vec<_>>(), "member {i}: broadcasts whole and in order");
        assert_eq!(u, expect("u").iter().collect::<Vec<_>>(), "member {i}: unicasts whole and in order");
    }
    assert_eq!(empty_wakeups, 0, "a descriptor was readable with nothing to read");
}

/// A `try_` send refused for a full window makes the sender's descriptor
/// unwritable; once the receiver has read, it is writable again and the
/// send goes through.
#[test]
fn a_blocked_sender_descriptor_is_unwritable_until_the_window_opens() {
    let n = linked_pair("127.79.8.1", "127.79.8.2");
    let g = common::join_group(&n);
    let to = g[1].id();
    let fd = g[0].ready_fd().expect("fd");
    assert!(poll_now(fd).1, "writable at first");
    // 8 KiB messages: the 780-block window takes about 90
    let big = Bytes::from(vec![7u8; 8192]);
    let mut sent = 0;
    loop {
        match g[0].try_send_unicast(to, big.clone()) {
            Ok(()) => sent += 1,
            Err(tipc_rs::Error::WouldBlock(_)) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(sent < 10_000, "the window never filled");
    }
    assert!(!poll_now(fd).1, "blocked: not writable after {sent} sends");
    // the receiver reads everything; its window grants come back
    let mut read = 0;
    let end = Instant::now() + Duration::from_secs(10);
    while read < sent {
        assert!(Instant::now() < end, "read {read} of {sent}");
        if let Ok(GroupEvent::Message { .. }) = g[1].recv_timeout(Duration::from_secs(1)) {
            read += 1;
        }
    }
    let end = Instant::now() + Duration::from_secs(5);
    while !poll_now(fd).1 {
        assert!(Instant::now() < end, "never writable again");
        std::thread::sleep(Duration::from_millis(5));
    }
    g[0].try_send_unicast(to, big).expect("the window is open again");
}

/// A port socket's descriptor is readable while a message waits, and not
/// once it has been read.
#[test]
fn a_port_sockets_descriptor_is_readable_while_a_message_waits() {
    let n = linked_pair("127.79.9.1", "127.79.9.2");
    let (a, b) = (n[0].port_socket().expect("socket"), n[1].port_socket().expect("socket"));
    let fd = b.ready_fd().expect("fd");
    assert_eq!(poll_now(fd), (false, true));
    let to = b.id();
    a.send_to(to.node, to.port, Bytes::from_static(b"one")).expect("send");
    a.send_to(to.node, to.port, Bytes::from_static(b"two")).expect("send");
    let end = Instant::now() + Duration::from_secs(5);
    while !poll_now(fd).0 {
        assert!(Instant::now() < end, "never readable");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(b.recv_timeout(Duration::from_secs(5)).expect("first").data, Bytes::from_static(b"one"));
    // the second may still be on its way: readable exactly when it is queued
    let second = b.recv_timeout(Duration::from_secs(5)).expect("second");
    assert_eq!(second.data, Bytes::from_static(b"two"));
    assert_eq!(poll_now(fd), (false, true), "both read: not readable");
}

/// Waits until `fd` is readable (or fails after 5 s).
fn wait_readable(fd: &impl std::os::fd::AsFd, what: &str) {
    let end = Instant::now() + Duration::from_secs(5);
    while !poll_now(fd).0 {
        assert!(Instant::now() < end, "{what}: never readable");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A listener's descriptor is readable while a request waits, a
/// connection's while data or the end waits (and for good once the end
/// has been read).
#[test]
fn connection_and_listener_descriptors_follow_requests_data_and_the_end() {
    let n = linked_pair("127.79.10.1", "127.79.10.2");
    let svc = ServiceRange::single(ServiceType(1010), Instance(1));
    let l = n[1].conn_socket(ConnKind::Seqpacket).expect("socket");
    l.bind(svc, Scope::Cluster).expect("bind");
    l.listen().expect("listen");
    let lfd = l.ready_fd().expect("fd");
    assert!(!poll_now(lfd).0, "no request yet");
    // wait until the binding reached the client's node
    let end = Instant::now() + Duration::from_secs(10);
    let c = n[0].conn_socket(ConnKind::Seqpacket).expect("socket");
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        loop {
            match c.connect(ServiceType(1010), Instance(1)) {
                Ok(()) => break,
                Err(tipc_rs::Error::NoService(..)) if Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("connect: {e}"),
            }
        }
        c.send(Bytes::from_static(b"hi")).expect("send");
        go_rx.recv().expect("go");
        c.shutdown().expect("shutdown");
        go_rx.recv().expect("done");
    });
    wait_readable(lfd, "listener");
    let (conn, _) = l.try_accept().expect("a request waits");
    assert!(!poll_now(lfd).0, "taken: no request left");
    assert!(matches!(l.try_accept(), Err(tipc_rs::Error::WouldBlock(_))));
    let cfd = conn.ready_fd().expect("fd");
    wait_readable(cfd, "data");
    assert_eq!(conn.try_recv().expect("data"), Some(Bytes::from_static(b"hi")));
    assert!(!poll_now(cfd).0, "read: nothing left");
    assert!(poll_now(cfd).1, "writable");
    go_tx.send(()).expect("go");
    wait_readable(cfd, "end");
    assert_eq!(conn.try_recv().expect("the orderly end"), None);
    assert!(poll_now(cfd).0, "the end stays readable");
    assert_eq!(conn.try_recv().expect("again"), None);
    go_tx.send(()).expect("done");
    client.join().expect("client");
}
