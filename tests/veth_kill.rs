//! A process killed with SIGKILL mid-stream, on real veth links, and the
//! same node identity coming back.
//!
//! The victim is this test binary run again as a child process (with
//! `TIPC_KILL_CHILD` set) inside its own namespace: it joins a group and
//! broadcasts numbered messages until it is killed. Two observer nodes in
//! this process check that
//! * every message up to the kill arrives once and in order;
//! * after SIGKILL, LEFT and the withdrawal of the victim's name come within
//!   the tolerance plus one probe interval;
//! * a restart with the same identity — after the peers noticed, and again
//!   at once, before they could — gives a LEFT for the old member first, then
//!   JOINED for the new one, whose stream starts at its first message; no
//!   message of the old incarnation arrives after its LEFT.
//!
//! `harness = false`: `main` is either the test or the child.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tipc_rs::wire::{Instance, MemberId, NodeId, ServiceType};
use tipc_rs::{GroupEvent, GroupSocket, GroupSpec, Scope, Stack};
use tipc_testkit::netns::{Lab, NODE_IF, Netns};

const GROUP: ServiceType = ServiceType(7200);
const VICTIM_ID: &str = "kill-victim";
const TOLERANCE: Duration = Duration::from_millis(1500);
/// The link's probe interval at that tolerance (a quarter of it, as the kernel uses).
const PROBE: Duration = Duration::from_millis(375);

fn spec(inst: u32) -> GroupSpec {
    GroupSpec { stype: GROUP, instance: Instance(inst), scope: Scope::Cluster, loopback: false, member_events: true }
}

/// The child: join, say READY, broadcast `incarnation, seq` until killed.
fn child(incarnation: u32) -> ! {
    let id = NodeId::from_text(VICTIM_ID).expect("identity");
    let stack = Stack::builder().iface(NODE_IF).node_id(id).start().expect("child stack");
    stack.wait_for_nodes(2, Duration::from_secs(20)).expect("child links");
    let sock = stack.group_socket().expect("socket");
    sock.join(spec(99)).expect("join");
    let end = Instant::now() + Duration::from_secs(10);
    while sock.members().len() < 2 {
        assert!(Instant::now() < end, "child: membership");
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("READY");
    let mut seq = 0u64;
    loop {
        let mut v = vec![0u8; 200];
        v[..4].copy_from_slice(&incarnation.to_be_bytes());
        v[4..12].copy_from_slice(&seq.to_be_bytes());
        sock.broadcast(Bytes::from(v)).expect("child broadcast");
        seq += 1;
        if seq % 16 == 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

fn spawn_child(ns: &Netns, incarnation: u32) -> Child {
    let t0 = Instant::now();
    let exe = std::env::current_exe().expect("own path");
    let mut c = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(exe)
        .env("TIPC_KILL_CHILD", incarnation.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the victim");
    let out = c.stdout.take().expect("stdout");
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    assert_eq!(line.trim(), "READY", "victim incarnation {incarnation} did not start");
    eprintln!("victim incarnation {incarnation} ready {:.3} s after spawning", t0.elapsed().as_secs_f64());
    c
}

/// What an observer saw of the victim, in order.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Up(MemberId),
    Down(MemberId, Instant),
    Msg(MemberId, u32, u64),
}

fn watch(sock: &GroupSocket, until: impl Fn(&[Seen]) -> bool, limit: Duration) -> Vec<Seen> {
    let end = Instant::now() + limit;
    let mut v = Vec::new();
    while !until(&v) {
        assert!(Instant::now() < end, "observer timed out; saw {} events, last {:?}", v.len(), v.last());
        match sock.recv_timeout(Duration::from_millis(5)) {
            Ok(GroupEvent::MemberUp { member, instance: Instance(99) }) => v.push(Seen::Up(member)),
            Ok(GroupEvent::MemberDown { member, instance: Instance(99) }) => v.push(Seen::Down(member, Instant::now())),
            Ok(GroupEvent::Message { from, data, .. }) => {
                let inc = u32::from_be_bytes(data[..4].try_into().expect("4"));
                let seq = u64::from_be_bytes(data[4..12].try_into().expect("8"));
                v.push(Seen::Msg(from, inc, seq));
            }
            _ => {}
        }
    }
    v
}

/// Checks one incarnation's stream as an observer saw it: JOINED first,
/// then messages 0, 1, 2 … of that incarnation only, then (if `down`) LEFT
/// and nothing more from it. Returns the number of messages.
fn check_incarnation(seen: &[Seen], inc: u32, down: bool) -> u64 {
    let Some(Seen::Up(member)) = seen.first() else { panic!("incarnation {inc}: no JOINED first: {:?}", seen.first()) };
    let mut next = 0;
    let mut left = false;
    for s in &seen[1..] {
        match s {
            Seen::Msg(from, i, seq) => {
                assert!(!left, "incarnation {inc}: message after LEFT");
                assert_eq!((*from, *i), (*member, inc), "incarnation {inc}: message from another incarnation");
                assert_eq!(*seq, next, "incarnation {inc}: lost, duplicated or reordered");
                next += 1;
            }
            Seen::Down(m, _) => {
                assert_eq!(m, member, "incarnation {inc}: LEFT for another member");
                assert!(!left, "incarnation {inc}: two LEFT events");
                left = true;
            }
            Seen::Up(m) => panic!("incarnation {inc}: second JOINED {m:?} inside one incarnation"),
        }
    }
    assert_eq!(left, down, "incarnation {inc}: LEFT seen = {left}");
    next
}

/// Splits an observer's record at each JOINED.
fn incarnations(seen: Vec<Seen>) -> Vec<Vec<Seen>> {
    let mut out: Vec<Vec<Seen>> = Vec::new();
    for s in seen {
        if matches!(s, Seen::Up(_)) || out.is_empty() {
            out.push(Vec::new());
        }
        if let Some(last) = out.last_mut() {
            last.push(s);
        }
    }
    out
}

fn msgs_of(v: &[Seen], inc: u32) -> usize {
    v.iter().filter(|s| matches!(s, Seen::Msg(_, i, _) if *i == inc)).count()
}

fn victim_named(stack: &Stack) -> bool {
    stack.name_table().iter().any(|p| p.range.stype == GROUP && p.range.lower == Instance(99))
}

/// The test; false when it was skipped.
fn run() -> bool {
    let Some(lab) = common::rig("veth SIGKILL", || Lab::bridge("vkill", 3)) else { return false };
    let observers: Vec<Stack> = (0..2).map(|i| common::start_node(lab.node(i), &format!("kill-obs-{i}"))).collect();
    let socks: Vec<GroupSocket> = observers
        .iter()
        .enumerate()
        .map(|(i, st)| {
            st.wait_ready(Duration::from_secs(10)).expect("address");
            let s = st.group_socket().expect("socket");
            s.join(spec(i as u32)).expect("join");
            s
        })
        .collect();
    let victim_ns = lab.node(2);
    let mut record: Vec<Vec<Seen>> = vec![Vec::new(); 2];
    // every observer watches until `f` holds, while `beside` runs
    let whole = |f: &(dyn Fn(&[Seen]) -> bool + Sync),
                 limit: Duration,
                 record: &mut Vec<Vec<Seen>>,
                 beside: &mut (dyn FnMut() + Send)| {
        std::thread::scope(|sc| {
            let hs: Vec<_> = socks.iter().map(|s| sc.spawn(move || watch(s, f, limit))).collect();
            beside();
            for (k, h) in hs.into_iter().enumerate() {
                record[k].extend(h.join().expect("observer"));
            }
        });
    };

    // 1. incarnation 1 streams; SIGKILL mid-stream; wait for LEFT everywhere
    let mut c1 = spawn_child(victim_ns, 1);
    whole(&|v| msgs_of(v, 1) >= 3000, Duration::from_secs(60), &mut record, &mut || {});
    let killed = Instant::now();
    c1.kill().expect("SIGKILL");
    let _ = c1.wait();
    whole(&|v| v.iter().any(|s| matches!(s, Seen::Down(..))), TOLERANCE * 3, &mut record, &mut || {});
    let mut name_gone = [None; 2];
    while name_gone.iter().any(Option::is_none) && killed.elapsed() < TOLERANCE * 3 {
        for (k, st) in observers.iter().enumerate() {
            if name_gone[k].is_none() && !victim_named(st) {
                name_gone[k] = Some(killed.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for k in 0..2 {
        let left = record[k].iter().find_map(|s| match s {
            Seen::Down(_, t) => Some(t.duration_since(killed)),
            _ => None,
        });
        let left = left.expect("LEFT");
        let gone = name_gone[k].unwrap_or_else(|| panic!("observer {k}: the victim's name was never withdrawn"));
        eprintln!(
            "observer {k}: LEFT {:.3} s and name withdrawn {:.3} s after SIGKILL",
            left.as_secs_f64(),
            gone.as_secs_f64()
        );
        assert!(left <= TOLERANCE + PROBE, "observer {k}: LEFT after {left:?}");
        assert!(gone <= TOLERANCE + PROBE, "observer {k}: name withdrawn after {gone:?}");
    }

    // 2. incarnation 2 after the peers noticed: clean JOINED, stream from 0
    let mut c2 = spawn_child(victim_ns, 2);
    whole(&|v| msgs_of(v, 2) >= 2000, Duration::from_secs(60), &mut record, &mut || {});

    // 3. kill and restart at once, before the tolerance runs out: the new
    //    session must take the old member down before bringing the new one up
    let killed = Instant::now();
    c2.kill().expect("SIGKILL");
    let _ = c2.wait();
    let mut c3 = None;
    let mut restarted = Duration::ZERO;
    whole(&|v| msgs_of(v, 3) >= 2000, Duration::from_secs(60), &mut record, &mut || {
        c3 = Some(spawn_child(victim_ns, 3));
        restarted = killed.elapsed();
    });
    let mut c3 = c3.expect("third incarnation");
    c3.kill().expect("SIGKILL");
    let _ = c3.wait();

    for (k, seen) in record.into_iter().enumerate() {
        let parts = incarnations(seen);
        assert_eq!(parts.len(), 3, "observer {k}: three JOINED events (one per incarnation)");
        let counts: Vec<u64> =
            parts.iter().enumerate().map(|(i, p)| check_incarnation(p, i as u32 + 1, i < 2)).collect();
        let second_left = parts[1].iter().find_map(|s| match s {
            Seen::Down(_, t) => Some(t.duration_since(killed)),
            _ => None,
        });
        eprintln!(
            "observer {k}: incarnations delivered {counts:?} messages exactly once in order; \
             after the second kill: restart ready at {:.2} s, LEFT at {:.3} s",
            restarted.as_secs_f64(),
            second_left.map_or(f64::NAN, |d| d.as_secs_f64())
        );
        let second_left = second_left.expect("LEFT of the second incarnation");
        assert!(second_left <= TOLERANCE + PROBE, "observer {k}: second LEFT after {second_left:?}");
    }
    drop(socks);
    for s in observers {
        s.shutdown();
    }
    true
}

fn main() {
    if let Some(inc) = std::env::var("TIPC_KILL_CHILD").ok().and_then(|v| v.parse().ok()) {
        child(inc);
    }
    // `cargo test -- <filter>` passes arguments; this file has one test
    if std::env::args().skip(1).any(|a| a == "--list") {
        println!("{TEST}: test");
        return;
    }
    // a thread named like the test, so a skip is reported under its name
    let ran =
        std::thread::Builder::new().name(TEST.into()).spawn(run).expect("test thread").join().unwrap_or_else(|_| {
            println!("test {TEST} ... FAILED");
            println!("\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out");
            std::process::exit(101)
        });
    let verdict = if ran { "ok" } else { "skipped" };
    println!("test {TEST} ... {verdict}");
    let (passed, ignored) = if ran { (1, 0) } else { (0, 1) };
    println!("\ntest result: ok. {passed} passed; 0 failed; {ignored} ignored; 0 measured; 0 filtered out");
}

const TEST: &str = "sigkill_and_restart_with_the_same_identity";
