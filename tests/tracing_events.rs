//! The library's `tracing` events, caught by a subscriber of this test
//! (UDP on loopback, no privileges): links and nodes coming and going
//! with the reason, members joining and leaving, names published and
//! withdrawn, each inside its node's span, and a rate-limited warning for
//! frames that are not TIPC.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tipc_rs::wire::{Instance, ServiceRange, ServiceType};
use tipc_rs::{GroupSpec, Scope, Stack};

/// Everything the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("buffer")).into_owned()
    }
    /// Waits until a line has all of `parts` (or fails after 10 s).
    fn wait_for(&self, parts: &[&str]) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(l) = self.text().lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l.to_string();
            }
            assert!(Instant::now() < end, "no event with {parts:?} in:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn at(ip: &str) -> SocketAddr {
    format!("{ip}:6118").parse().expect("address")
}

/// The one subscriber of this test binary (the tests share it; each
/// looks for its own nodes' events).
fn captured() -> Captured {
    static OUT: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    OUT.get_or_init(|| {
        let out = Captured::default();
        let w = out.clone();
        tracing_subscriber::fmt()
            .with_env_filter("tipc_rs=info,tipc_link=debug,tipc_group=debug,tipc_bearer=warn")
            .with_ansi(false)
            .with_writer(move || w.clone())
            .init();
        out
    })
    .clone()
}

#[test]
fn links_members_names_and_dropped_frames_are_traced_in_their_nodes_span() {
    let out = captured();
    let a = Stack::builder().udp(at("127.79.18.1")).udp_peer(at("127.79.18.2")).start().expect("a");
    let b = Stack::builder().udp(at("127.79.18.2")).udp_peer(at("127.79.18.1")).start().expect("b");
    a.wait_for_nodes(1, Duration::from_secs(15)).expect("link");
    let ida = a.node_id().to_string();
    let addr_b = b.address().expect("b's address").to_string();
    let up = out.wait_for(&["link up", &format!("tipc_node{{node={ida}}}"), &format!("peer={addr_b}")]);
    assert!(up.contains("INFO"), "{up}");
    out.wait_for(&["node up", &format!("peer={addr_b}")]);
    // a member on each node; b binds a name
    let spec = |i| GroupSpec {
        stype: ServiceType(4716),
        instance: Instance(i),
        scope: Scope::Cluster,
        loopback: false,
        member_events: false,
    };
    let ga = a.group_socket().expect("socket");
    ga.join(spec(1)).expect("join");
    let gb = b.group_socket().expect("socket");
    gb.join(spec(2)).expect("join");
    out.wait_for(&["member joined", "group=4716", &format!("tipc_node{{node={ida}}}"), "instance=2"]);
    let p = b.port_socket().expect("socket");
    p.bind(ServiceRange::single(ServiceType(1018), Instance(5)), Scope::Cluster).expect("bind");
    out.wait_for(&["name published", "1018:5:5", &format!("tipc_node{{node={ida}}}")]);
    // garbage to a's bearer: dropped, counted, warned about once
    let junk = UdpSocket::bind("127.79.18.9:0").expect("udp");
    let burst = || {
        for _ in 0..25 {
            junk.send_to(b"definitely not a TIPC message, and long enough to look at", at("127.79.18.1"))
                .expect("send");
        }
    };
    burst();
    let warn = out.wait_for(&["frames dropped", "WARN"]);
    // a second burst within the second: counted, not warned about again
    std::thread::sleep(Duration::from_millis(100));
    burst();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(out.text().matches("frames dropped").count(), 1, "at most one warning a second: {warn}");
    // b leaves: its member left, its name withdrawn, the link down with a reason
    drop(p);
    out.wait_for(&["name withdrawn", "1018:5:5", &format!("tipc_node{{node={ida}}}")]);
    drop(gb);
    out.wait_for(&["member left", "group=4716", &format!("tipc_node{{node={ida}}}")]);
    b.shutdown();
    let down = out.wait_for(&["link down", &format!("tipc_node{{node={ida}}}"), &format!("peer={addr_b}"), "reason="]);
    assert!(down.contains("WARN"), "{down}");
    out.wait_for(&["node down", &format!("peer={addr_b}")]);
    // the node's state changes are told with the link's change that made
    // them (one link to b here): next to it in a's own events, once each
    let text = out.text();
    let own: Vec<&str> = text.lines().filter(|l| l.contains(&format!("tipc_node{{node={ida}}}"))).collect();
    for (link, node) in [("link up", "node up"), ("link down", "node down")] {
        let told = |l: &&str, what: &str| l.contains(what) && l.contains(&format!("peer={addr_b}"));
        let at: Vec<usize> = (0..own.len()).filter(|&i| told(&own[i], link)).collect();
        assert_eq!(at.len(), 1, "one {link} for b in a's events: {own:#?}");
        assert!(own.get(at[0] + 1).is_some_and(|l| told(l, node)), "{node} right after {link}: {own:#?}");
        assert_eq!(own.iter().filter(|l| told(l, node)).count(), 1, "one {node} for b: {own:#?}");
    }
    drop(ga);
    a.shutdown();
}

/// A node whose peer encrypts with another key warns (once a second at
/// most) that frames failed authentication, in its own span.
#[test]
fn frames_failing_authentication_are_warned_about() {
    let out = captured();
    let c = Stack::builder().udp(at("127.79.19.1")).udp_peer(at("127.79.19.2")).start().expect("c");
    let d = Stack::builder().udp(at("127.79.19.2")).udp_peer(at("127.79.19.1")).start().expect("d");
    c.set_key("0x000102030405060708090a0b0c0d0e0f10111213".parse().expect("key")).expect("c's key");
    d.set_key("0x202122232425262728292a2b2c2d2e2f30313233".parse().expect("key")).expect("d's key");
    let idd = d.node_id().to_string();
    let w = out.wait_for(&["failed authentication", "WARN", &format!("tipc_node{{node={idd}}}")]);
    assert!(w.contains("since_last="), "{w}");
    c.shutdown();
    d.shutdown();
}
