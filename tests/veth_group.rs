//! Communication groups and the broadcast link on real veth links: six
#![allow(clippy::needless_range_loop)]
//! members on four namespaces, every mode, events, loopback, ordering, a
//! killed node; frames on the wire per broadcast.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::rig;
use tipc_rs::wire::{Instance, MemberId, ServiceRange, ServiceType};
use tipc_rs::{GroupEvent, GroupSocket, GroupSpec, Mode, Scope, Stack};
use tipc_testkit::netns::Lab;

fn drain(s: &GroupSocket, d: Duration) -> Vec<GroupEvent> {
    let end = Instant::now() + d;
    let mut v = Vec::new();
    while Instant::now() < end {
        if let Ok(e) = s.recv_timeout(Duration::from_millis(20))
            && e != GroupEvent::Unblocked
        {
            v.push(e);
        }
    }
    v
}

fn msgs(ev: &[GroupEvent]) -> Vec<(MemberId, Mode, String)> {
    ev.iter()
        .filter_map(|e| match e {
            GroupEvent::Message { from, mode, data, .. } => {
                Some((*from, *mode, String::from_utf8_lossy(data).to_string()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn six_members_on_four_namespaces() {
    let Some(lab) = rig("veth group", || Lab::bridge("vgroup", 4)) else { return };
    let stacks: Vec<Stack> = (0..4).map(|i| common::start_node(lab.node(i), &format!("grp-{i}"))).collect();
    for s in &stacks {
        s.wait_for_nodes(3, Duration::from_secs(10)).expect("links");
    }
    // members: node0 x2, node1 x2, node2, node3; instances 1 2 3 3 4 5
    let placement = [(0, 1), (0, 2), (1, 3), (1, 3), (2, 4), (3, 5)];
    let socks: Vec<GroupSocket> = placement
        .iter()
        .enumerate()
        .map(|(k, &(n, inst))| {
            let s = stacks[n].group_socket().expect("socket");
            s.join(GroupSpec {
                stype: ServiceType(4242),
                instance: Instance(inst),
                scope: Scope::Cluster,
                loopback: k == 0,
                member_events: true,
            })
            .expect("join");
            s
        })
        .collect();
    let ids: Vec<MemberId> = socks.iter().map(GroupSocket::id).collect();
    let end = Instant::now() + Duration::from_secs(10);
    while socks.iter().any(|s| s.members().len() < 5) {
        assert!(Instant::now() < end, "membership incomplete");
        std::thread::sleep(Duration::from_millis(50));
    }
    // every member reads all the time (windows open only as they read)
    let ev: Vec<Vec<GroupEvent>> = std::thread::scope(|sc| {
        let readers: Vec<_> = socks.iter().map(|s| sc.spawn(move || drain(s, Duration::from_secs(6)))).collect();
        send_all(&socks, &ids);
        readers.into_iter().map(|r| r.join().expect("reader")).collect()
    });
    for (k, e) in ev.iter().enumerate() {
        let ups = e.iter().filter(|x| matches!(x, GroupEvent::MemberUp { .. })).count();
        assert_eq!(ups, 5, "member {k} saw {ups} JOINED events");
    }
    check(&ev, &ids);
    kill_and_watch(stacks, socks, &ids);
}

fn send_all(socks: &[GroupSocket], ids: &[MemberId]) {
    socks[0].broadcast(Bytes::from_static(b"bcast")).expect("bcast");
    socks[0].send_multicast(Instance(3), Bytes::from_static(b"mcast3")).expect("mcast");
    socks[0].send_anycast(Instance(3), Bytes::from_static(b"any-a")).expect("anycast");
    socks[0].send_anycast(Instance(3), Bytes::from_static(b"any-b")).expect("anycast");
    socks[0].send_unicast(ids[4], Bytes::from_static(b"uni4")).expect("unicast");
    // ordering unicast -> broadcast -> unicast, many times, from member 5 to member 1
    for i in 0..100 {
        socks[5].send_unicast(ids[1], Bytes::from(format!("o{}", 3 * i))).expect("u");
        socks[5].broadcast(Bytes::from(format!("o{}", 3 * i + 1))).expect("b");
        socks[5].send_unicast(ids[1], Bytes::from(format!("o{}", 3 * i + 2))).expect("u");
    }
}

fn check(ev: &[Vec<GroupEvent>], ids: &[MemberId]) {
    let m: Vec<Vec<(MemberId, Mode, String)>> = ev.iter().map(|e| msgs(e)).collect();
    for k in 0..6 {
        assert_eq!(m[k].iter().filter(|x| x.2 == "bcast").count(), 1, "member {k}: broadcast (loopback for 0)");
    }
    assert_eq!(m.iter().flatten().filter(|x| x.2 == "mcast3").count(), 2, "multicast to both holders of 3");
    assert!(m[2].iter().any(|x| x.2 == "mcast3") && m[3].iter().any(|x| x.2 == "mcast3"));
    let a2: Vec<&str> = m[2].iter().filter(|x| x.2.starts_with("any")).map(|x| x.2.as_str()).collect();
    let a3: Vec<&str> = m[3].iter().filter(|x| x.2.starts_with("any")).map(|x| x.2.as_str()).collect();
    assert_eq!((a2.len(), a3.len()), (1, 1), "anycast alternates: {a2:?} {a3:?}");
    assert_eq!(m[4].iter().filter(|x| x.2 == "uni4").count(), 1);
    assert!(m.iter().enumerate().all(|(k, v)| k == 4 || !v.iter().any(|x| x.2 == "uni4")));
    let order: Vec<usize> =
        m[1].iter().filter(|x| x.0 == ids[5] && x.2.starts_with('o')).map(|x| x.2[1..].parse().expect("n")).collect();
    assert_eq!(order, (0..300).collect::<Vec<_>>(), "unicast/broadcast/unicast order");
}

fn kill_and_watch(stacks: Vec<Stack>, socks: Vec<GroupSocket>, ids: &[MemberId]) {
    // kill node 3 (member 5): LEFT everywhere within the tolerance
    let mut stacks = stacks;
    let dead = stacks.pop().expect("node 3");
    let t0 = Instant::now();
    dead.kill();
    let mut left_at = vec![None; 5];
    while left_at.iter().any(Option::is_none) && t0.elapsed() < Duration::from_secs(5) {
        for (k, s) in socks.iter().take(5).enumerate() {
            if let Ok(GroupEvent::MemberDown { member, .. }) = s.recv_timeout(Duration::from_millis(10))
                && member == ids[5]
            {
                left_at[k] = Some(t0.elapsed());
            }
        }
    }
    eprintln!("LEFT after {left_at:?}");
    for (k, t) in left_at.iter().enumerate() {
        let t = t.unwrap_or_else(|| panic!("member {k} never saw LEFT"));
        assert!(t <= Duration::from_millis(1500 + 100), "member {k}: LEFT after {t:?} (tolerance 1.5 s)");
    }
    drop(socks);
    for s in stacks {
        s.shutdown();
    }
}

#[test]
fn broadcast_to_eight_costs_one_frame_replicast_to_two_costs_two() {
    let Some(lab) = rig("veth broadcast frames", || Lab::bridge("vbcast", 9)) else { return };
    let stacks: Vec<Stack> = (0..9).map(|i| common::start_node(lab.node(i), &format!("bc-{i}"))).collect();
    for s in &stacks {
        s.wait_for_nodes(8, Duration::from_secs(15)).expect("links");
    }
    let all = ServiceRange { stype: ServiceType(3000), lower: Instance(1), upper: Instance(1) };
    let two = ServiceRange { stype: ServiceType(3001), lower: Instance(1), upper: Instance(1) };
    let socks: Vec<_> = stacks.iter().map(|s| s.port_socket().expect("socket")).collect();
    let sub = stacks[0].subscribe(tipc_rs::topology::Subscription::ports(all)).expect("subscribe");
    for (i, s) in socks.iter().enumerate().skip(1) {
        s.bind(all, Scope::Cluster).expect("bind");
        if i <= 2 {
            s.bind(two, Scope::Cluster).expect("bind");
        }
    }
    let end = Instant::now() + Duration::from_secs(10);
    while stacks[0].name_table().iter().filter(|p| p.range.stype.0 >= 3000).count() < 10 {
        assert!(Instant::now() < end, "names did not spread");
        std::thread::sleep(Duration::from_millis(50));
    }
    // the subscription saw the 8 bindings come up
    let published = |e: &tipc_rs::topology::TopologyEvent| e.kind == tipc_rs::topology::EventKind::Published;
    let ups = (0..8).filter(|_| sub.recv_timeout(Duration::from_secs(5)).is_ok_and(|e| published(&e))).count();
    assert_eq!(ups, 8, "service subscription");
    const N: u64 = 2000;
    let mut ratio = Vec::new();
    for (range, receivers) in [(all, 8usize), (two, 2)] {
        // the kernel's rule would put 2 of 8 peers on the broadcast link too;
        // force replicast for the second case, as `tipcmsg -m replicast` does
        if receivers == 2 {
            socks[0].set_mcast_method(tipc_rs::McastMethod::Replicast);
        }
        let before = stacks[0].bearer_stats().expect("stats").tx_frames;
        for i in 0..N {
            socks[0].send_to_range(range, Bytes::from(vec![(i % 256) as u8; 1200])).expect("send");
        }
        for s in socks.iter().skip(1).take(receivers) {
            for _ in 0..N {
                s.recv_timeout(Duration::from_secs(10)).expect("every receiver gets every message");
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let frames = stacks[0].bearer_stats().expect("stats").tx_frames - before;
        let r = frames as f64 / N as f64;
        eprintln!("to {receivers} nodes: {frames} frames for {N} messages = {r:.3} frames/message");
        ratio.push(r);
    }
    assert!(ratio[0] < 1.1, "broadcast to 8 costs about one frame per message: {}", ratio[0]);
    assert!((1.95..2.2).contains(&ratio[1]), "replicast to 2 costs two: {}", ratio[1]);
    drop(socks);
    for s in stacks {
        s.shutdown();
    }
}

/// A group socket's importance — set before the join, then changed — is
/// what its data messages carry on the wire (the kernel copies the
/// socket's TIPC_IMPORTANCE into every message its group builds).
#[test]
fn a_group_sockets_importance_is_on_its_messages() {
    use tipc_rs::wire::{Importance, Msg};
    let Some(lab) = rig("veth group importance", || Lab::pair("vgimp")) else { return };
    let pcap = std::env::temp_dir().join(format!("veth_group_importance_{}.pcap", std::process::id()));
    let a = lab
        .node(0)
        .spawn("start", {
            let pcap = pcap.clone();
            move || {
                Stack::builder()
                    .iface(tipc_testkit::netns::NODE_IF)
                    .node_id(tipc_rs::wire::NodeId::from_text("gimp-0").expect("id"))
                    .pcap(pcap)
                    .start()
            }
        })
        .expect("spawn")
        .join()
        .expect("thread")
        .expect("stack");
    let b = common::start_node(lab.node(1), "gimp-1");
    a.wait_for_nodes(1, Duration::from_secs(10)).expect("link");
    let spec = |inst| GroupSpec {
        stype: ServiceType(4243),
        instance: Instance(inst),
        scope: Scope::Cluster,
        loopback: false,
        member_events: true,
    };
    let sb = b.group_socket().expect("socket");
    sb.join(spec(2)).expect("join");
    let sa = a.group_socket().expect("socket");
    sa.set_importance(Importance::High);
    sa.join(spec(1)).expect("join");
    let end = Instant::now() + Duration::from_secs(10);
    while sa.members().is_empty() {
        assert!(Instant::now() < end, "b never joined a's view");
        std::thread::sleep(Duration::from_millis(20));
    }
    sa.broadcast(Bytes::from_static(b"high")).expect("send");
    sa.set_importance(Importance::Critical);
    sa.send_anycast(Instance(2), Bytes::from_static(b"critical")).expect("send");
    let got = msgs(&drain(&sb, Duration::from_millis(500)));
    assert_eq!(got.iter().map(|m| m.2.as_str()).collect::<Vec<_>>(), ["high", "critical"]);
    a.shutdown();
    let frames = tipc_rs::wire::pcap::read_pcap_file(&pcap).expect("pcap");
    let _ = std::fs::remove_file(&pcap);
    let seen: Vec<(String, Importance)> = frames
        .iter()
        .filter_map(|f| Msg::parse(f.data.slice(14..)).ok())
        .filter_map(|m| match m {
            Msg::Data(d) if d.payload.starts_with(b"high") || d.payload.starts_with(b"critical") => {
                Some((String::from_utf8_lossy(&d.payload).to_string(), d.importance))
            }
            _ => None,
        })
        .collect();
    assert!(seen.contains(&("high".to_string(), Importance::High)), "{seen:?}");
    assert!(seen.contains(&("critical".to_string(), Importance::Critical)), "{seen:?}");
    assert!(seen.iter().all(|(_, i)| *i != Importance::Low), "{seen:?}");
}
