//! The topology service against Linux 6.1's: a kernel subscriber (the
//! kernel's own topology server, through tools/kernel-peer's `tipc-client`)
//! and one of ours (`examples/group_member`) subscribe alike while the same
//! sockets bind and unbind — once on the kernel node, once on nodes of
//! ours — and must print the same events: PORTS and SERVICE filters on a
//! range with two sockets on one instance, a timeout. Node state and link
//! state are seen across: each side sees the other's node-state binding,
//! and its own link to the other as a link-state binding.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kernel::{Cleanup, KernelPeer, Plug, kernel_rig};

/// The observers' scenario, the same on both sides: PORTS and SERVICE on
/// 1000:0-100, SERVICE on 1000:500-600 ending after 1.5 s, node state and
/// link state, then the events of `ms` milliseconds.
fn observer(ms: u64) -> Vec<String> {
    let mut v: Vec<String> = [
        "subscribe:1000:0:100:1",
        "subscribe:1000:0:100:2",
        "subscribe:1000:500:600:2:1500",
        "subscribe:0:0:4294967295:1",
        "subscribe:2:0:4294967295:1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("events:{ms}"));
    v
}

/// A group_member in `plug`, its output lines collected as they come.
struct Ours {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Ours {
    fn start(plug: &Plug, id: &str, peers: usize, steps: &[String]) -> Ours {
        let mut child = Command::new("ip")
            .args(["netns", "exec", plug.ns.name()])
            .arg(common::example("group_member"))
            .args(["--iface", tipc_testkit::netns::NODE_IF, "--node-id", id, "--peers", &peers.to_string()])
            .args(steps)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("group_member");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().expect("lines").push(line);
            }
        });
        Ours { child, lines }
    }

    /// Waits (up to `secs`) until a line starts with `prefix`.
    fn wait_line(&self, prefix: &str, secs: u64) {
        let end = Instant::now() + Duration::from_secs(secs);
        while !self.lines.lock().expect("lines").iter().any(|l| l.starts_with(prefix)) {
            assert!(Instant::now() < end, "no `{prefix}` line: {:?}", self.lines.lock().expect("lines"));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to end; its lines.
    fn finish(mut self) -> String {
        let status = self.child.wait().expect("wait");
        // the reader thread sees the pipe close right after
        std::thread::sleep(Duration::from_millis(100));
        let text = self.lines.lock().expect("lines").join("\n");
        assert!(status.success(), "group_member failed:\n{text}");
        text
    }
}

/// The TOPO lines of an output, by subscription number, without the
/// `sub=` word.
fn topo(out: &str) -> BTreeMap<u32, Vec<String>> {
    let mut m: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for l in out.lines().filter(|l| l.starts_with("TOPO ")) {
        let sub = l.split_whitespace().find_map(|w| w.strip_prefix("sub=")).and_then(|n| n.parse().ok());
        let rest: Vec<&str> = l.split_whitespace().skip(1).filter(|w| !w.starts_with("sub=")).collect();
        m.entry(sub.unwrap_or(0)).or_default().push(rest.join(" "));
    }
    m
}

/// The binders' lines for subscriptions 1-3 that must appear: PORTS sees
/// both sockets on 40 come and go, SERVICE only the first and the last.
fn check_counts(which: &str, t: &BTreeMap<u32, Vec<String>>) {
    let count = |sub: u32, kind: &str| t.get(&sub).map_or(0, |v| v.iter().filter(|l| l.contains(kind)).count());
    assert_eq!((count(1, "published"), count(1, "withdrawn")), (3, 3), "{which}: PORTS {t:?}");
    assert_eq!((count(2, "published"), count(2, "withdrawn")), (2, 2), "{which}: SERVICE {t:?}");
    assert_eq!(t.get(&3), Some(&vec!["event=timeout found=1000:500:600 port=00000000:0".to_string()]), "{which}");
}

#[test]
fn kernel_and_ours_see_the_same_topology_events() {
    let Some(brns) = kernel_rig("topology service", "ktop") else { return };
    let _cleanup = Cleanup(brns.clone());
    let kernel = KernelPeer::up("kt", &brns, "topo-kernel");
    let plugs: Vec<Plug> = (0..3).map(|i| Plug::new("ktop", &brns, i)).collect();
    let k = kernel.addr.trim_start_matches("0x").to_string();

    // A: the bindings are made on the kernel node, by two sockets
    let ours = Ours::start(&plugs[0], "topo-ours", 1, &observer(12_000));
    ours.wait_line("SUBSCRIBED sub=5", 30);
    kernel.spawn("/tmp/obs", &format!("tipc-client {}", observer(8_000).join(" ")));
    kernel.spawn("/tmp/b1", "tipc-client sleep:1500 bind:1000:40 bind:1000:31:35 sleep:3000");
    kernel.spawn("/tmp/b2", "tipc-client sleep:2000 bind:1000:40 sleep:1000");
    let ours = ours.finish();
    let theirs = kernel.wait_file("/tmp/obs", Duration::from_secs(20), |s| s.contains("DONE"));
    eprintln!("A, ours:\n{ours}\nA, the kernel's:\n{theirs}");
    let (t_ours, t_theirs) = (topo(&ours), topo(&theirs));
    check_counts("A, ours", &t_ours);
    for sub in 1..=3 {
        assert_eq!(t_ours.get(&sub), t_theirs.get(&sub), "A: subscription {sub} differs");
    }
    // node state: both nodes on both sides (each reports its own first)
    let set = |t: &BTreeMap<u32, Vec<String>>, sub| t.get(&sub).cloned().unwrap_or_default().into_iter().collect();
    let nodes: BTreeSet<String> = set(&t_ours, 4);
    assert_eq!(nodes.len(), 2, "our node-state events: {nodes:?}");
    assert_eq!(nodes, set(&t_theirs, 4), "A: node state differs");
    // link state: each side's own link to the other
    let our_link = t_ours.get(&5).cloned().unwrap_or_default();
    let their_link = t_theirs.get(&5).cloned().unwrap_or_default();
    let kdec = u32::from_str_radix(&k, 16).expect("kernel address");
    assert_eq!(our_link.len(), 1, "{our_link:?}");
    assert!(our_link[0].starts_with(&format!("event=published found=2:{kdec}:{kdec} port=")), "{our_link:?}");
    assert_eq!(their_link.len(), 1, "{their_link:?}");
    assert!(their_link[0].ends_with(&format!("port={k}:0")), "{their_link:?}");

    // B: the same bindings made on two nodes of ours
    let ours = Ours::start(&plugs[0], "topo-ours2", 1, &observer(16_000));
    ours.wait_line("SUBSCRIBED sub=5", 30);
    kernel.spawn("/tmp/obs2", &format!("tipc-client {}", observer(12_000).join(" ")));
    let steps = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    let b1 = Ours::start(&plugs[1], "topo-b1", 2, &steps("sleep:1500 bind:1000:40 bind:1000:31:35 sleep:3000"));
    let b2 = Ours::start(&plugs[2], "topo-b2", 3, &steps("sleep:2000 bind:1000:40 sleep:1000"));
    b1.finish();
    b2.finish();
    let ours = ours.finish();
    let theirs = kernel.wait_file("/tmp/obs2", Duration::from_secs(20), |s| s.contains("DONE"));
    eprintln!("B, ours:\n{ours}\nB, the kernel's:\n{theirs}");
    let (t_ours, t_theirs) = (topo(&ours), topo(&theirs));
    check_counts("B, ours", &t_ours);
    for sub in 1..=3 {
        assert_eq!(t_ours.get(&sub), t_theirs.get(&sub), "B: subscription {sub} differs");
    }
    drop(plugs);
    drop(kernel);
}
