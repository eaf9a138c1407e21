//! The testkit's system calls, each against what the kernel reports about
//! the calling thread (`/proc/thread-self`) or against real frames on a
//! veth pair. The namespace tests need root; without it they print
//! `SKIPPED` (with `CI` set they fail instead, as the root package's do).

use std::io::Read;
use std::time::Duration;

use tipc_testkit::netns::{Lab, NODE_IF, privileged};
use tipc_testkit::sys;

/// A `Field:` line of `/proc/thread-self/status` (the calling thread's own).
fn thread_status(field: &str) -> String {
    let s = std::fs::read_to_string("/proc/thread-self/status").expect("/proc/thread-self/status");
    let line = s.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} line"));
    line[field.len()..].trim().to_string()
}

/// Whether this test can build namespaces; if not it is skipped (or, with
/// `CI` set, fails).
fn root(test: &str) -> bool {
    if privileged() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{test} needs root (CI is set, so this is a failure, not a skip)");
    eprintln!("SKIPPED tipc-testkit::{test}: network namespaces need root");
    false
}

#[test]
fn pin_to_cpu_pins_the_calling_thread_only() {
    let before = thread_status("Cpus_allowed_list:");
    let pinned = std::thread::spawn(|| {
        sys::pin_to_cpu(0).expect("sched_setaffinity");
        thread_status("Cpus_allowed_list:")
    })
    .join()
    .expect("thread");
    assert_eq!(pinned, "0");
    assert_eq!(thread_status("Cpus_allowed_list:"), before, "other threads keep their CPUs");
}

#[test]
fn dropping_effective_caps_affects_only_the_calling_thread() {
    let before = thread_status("CapEff:");
    let after = std::thread::spawn(|| {
        sys::drop_effective_caps_on_this_thread().expect("capset");
        thread_status("CapEff:")
    })
    .join()
    .expect("thread");
    assert_eq!(u64::from_str_radix(&after, 16), Ok(0), "no effective capability left");
    assert_eq!(thread_status("CapEff:"), before, "other threads keep theirs");
}

#[test]
fn a_spawned_thread_runs_inside_its_namespace() {
    if !root("a_spawned_thread_runs_inside_its_namespace") {
        return;
    }
    let lab = Lab::pair("tksetns").expect("veth pair");
    let ours = std::fs::read_link("/proc/thread-self/ns/net").expect("our namespace");
    let (theirs, found) = lab
        .node(0)
        .spawn("setns", || {
            let ns = std::fs::read_link("/proc/thread-self/ns/net").expect("its namespace");
            (ns, tipc_bearer::lookup_interface(NODE_IF).is_ok())
        })
        .expect("spawn")
        .join()
        .expect("thread");
    assert_ne!(theirs, ours, "the thread entered another namespace");
    assert!(found, "{NODE_IF} is visible inside");
    assert_eq!(std::fs::read_link("/proc/thread-self/ns/net").expect("ours again"), ours, "this thread stayed");
}

#[test]
fn a_raw_frame_crosses_the_veth_and_the_send_socket_receives_nothing() {
    if !root("a_raw_frame_crosses_the_veth_and_the_send_socket_receives_nothing") {
        return;
    }
    let lab = Lab::pair("tkframe").expect("veth pair");
    let frame = |src: [u8; 6], fill: u8| {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&src);
        f.extend_from_slice(&0x88cau16.to_be_bytes());
        f.extend_from_slice(&[fill; 46]);
        f
    };
    // b listens on the bearer's socket
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<()>(1);
    let receiver = lab
        .node(1)
        .spawn("rx", move || {
            let (idx, mac) = tipc_bearer::lookup_interface(NODE_IF).expect("tipc0");
            let sock = tipc_bearer::open_packet_socket(idx).expect("raw socket");
            sock.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            ready_tx.send(()).expect("ready");
            let mut buf = [0u8; 2048];
            let n = (&sock).read(&mut buf).expect("a frame arrives");
            // answer, so that a's send socket would have something to receive
            let reply = frame(mac.0, 0x22);
            let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
            assert!(sys::send_frame(fd, &reply).expect("send"), "the kernel takes it");
            buf[..n].to_vec()
        })
        .expect("spawn");
    ready_rx.recv().expect("receiver ready");
    let sent = frame([0x02, 0, 0, 0, 0, 0xaa], 0x11);
    let sent2 = sent.clone();
    let leftover = lab
        .node(0)
        .spawn("tx", move || {
            let (idx, _) = tipc_bearer::lookup_interface(NODE_IF).expect("tipc0");
            let sock = sys::open_send_socket(idx).expect("send socket");
            let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
            assert!(sys::send_frame(fd, &sent2).expect("send"), "the kernel takes it");
            // the reply reaches tipc0, but the filter keeps it off this socket
            std::thread::sleep(Duration::from_millis(300));
            sock.set_nonblocking(true).expect("nonblocking");
            let mut buf = [0u8; 2048];
            (&sock).read(&mut buf).map_err(|e| e.kind())
        })
        .expect("spawn")
        .join()
        .expect("tx thread");
    let got = receiver.join().expect("rx thread");
    assert_eq!(got, sent, "the frame arrives unchanged");
    assert_eq!(leftover, Err(std::io::ErrorKind::WouldBlock), "the send socket queues nothing");
}

#[test]
fn star_ports_name_the_relay_side_of_each_node() {
    assert_eq!(Lab::star_ports(3), ["r0", "r1", "r2"]);
}
