//! Encryption with Linux 6.1 kernel nodes (tools/kernel-peer; the kernel's
//! `CONFIG_TIPC_CRYPTO`, net/tipc/crypto.c): one encrypted cluster of two
//! kernel nodes and ours.
//!
//! - With the same master key on all three, the links come up; session
//!   keys are exchanged automatically both ways (ours at once, the
//!   kernels' on `rekeying now`); names, RDM and a group in all four modes
//!   work both ways with each kernel node.
//! - Mid-stream, a kernel node rekeys and then a new master key is set on
//!   every node: the streams both ways arrive whole and in order, and no
//!   link resets.
//! - With a wrong key on our side, no link forms either way, nothing is
//!   delivered, and our drop counters say why.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::kernel::{Cleanup, KernelPeer, Plug, kernel_rig, make_bridges, services_both_ways, wait_until};
use tipc_rs::crypto::KeySpec;
use tipc_rs::link::LinkState;
use tipc_rs::wire::{Instance, NodeAddr, NodeId, ServiceRange, ServiceType};
use tipc_rs::{Scope, Stack};
use tipc_testkit::netns::NODE_IF;

/// The test keys of captures 17–19 (tests/data/captures), and a 256-bit one.
const K1: &str = "0x000102030405060708090a0b0c0d0e0f10111213";
const K2: &str = "0x202122232425262728292a2b2c2d2e2f30313233";
const K3: &str = "0x404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263";

/// Messages per batch and batches per stream.
const BATCH: u32 = 200;
const BATCHES: u32 = 10;

fn master(k: &str) -> KeySpec {
    format!("{k} master").parse().expect("key")
}

/// Sets master key `k` on a kernel node.
fn kernel_key(kernel: &KernelPeer, k: &str) {
    let (out, ok) = kernel.exec(&["tipc", "node", "set", "key", k, "algname", "gcm(aes)", "master"]);
    assert!(ok, "tipc node set key: {out}");
}

/// Our node with identity `id` on the bridge, with `key`.
fn our_node(plug: &Plug, id: &'static str, key: KeySpec) -> Stack {
    plug.ns
        .spawn("start", move || {
            Stack::builder().iface(NODE_IF).node_id(NodeId::from_text(id).expect("id")).key(key).start()
        })
        .expect("spawn")
        .join()
        .expect("thread")
        .expect("stack")
}

fn links_up(s: &Stack) -> usize {
    s.links().iter().filter(|l| l.state == LinkState::Established).count()
}

/// The `PREFIX<b>#<n>` numbers in a tipc-client log, in order.
fn numbered(log: &str, prefix: &str) -> Vec<(u32, u32)> {
    log.lines()
        .filter_map(|l| {
            let d = l.split("data=\"").nth(1)?.split('"').next()?;
            let (b, n) = d.strip_prefix(prefix)?.split_once('#')?;
            Some((b.parse().ok()?, n.parse().ok()?))
        })
        .collect()
}

fn all_in_order() -> Vec<(u32, u32)> {
    (0..BATCHES).flat_map(|b| (1..=BATCH).map(move |n| (b, n))).collect()
}

#[test]
fn an_encrypted_cluster_with_two_kernel_nodes() {
    let Some(brns) = kernel_rig("an encrypted cluster with two kernel nodes", "kcry") else { return };
    let _cleanup = Cleanup(brns.clone());
    make_bridges(&brns, &["br0"]);
    let ka = KernelPeer::up("kca", &brns, "kernel-ca");
    let kb = KernelPeer::up("kcb", &brns, "kernel-cb");
    kernel_key(&ka, K1);
    kernel_key(&kb, K1);
    let plug = Plug::new("kcry", &brns, 0);
    let stack = our_node(&plug, "ours-crypto", master(K1));
    let a: NodeAddr = ka.addr.parse().expect("address");
    let b: NodeAddr = kb.addr.parse().expect("address");
    wait_until("our links to both kernel nodes", Duration::from_secs(30), || links_up(&stack) == 2);
    assert!(ka.wait_link("ours-crypto", Duration::from_secs(15)), "kernel a's link to us");
    assert!(kb.wait_link("ours-crypto", Duration::from_secs(15)), "kernel b's link to us");

    // our session key: both kernels take our KEY_DISTR and report reading
    // it; then it becomes our active key
    wait_until("both kernels reading our session key", Duration::from_secs(20), || {
        stack.key_slots(a).0 == 1 && stack.key_slots(b).0 == 1
    });
    wait_until("our session key active", Duration::from_secs(20), || stack.crypto_stats().tx_active == 1);
    // theirs: on `rekeying now` each kernel hands us its session key
    for k in [&ka, &kb] {
        let (out, ok) = k.exec(&["tipc", "node", "set", "key", "rekeying", "now"]);
        assert!(ok, "rekeying now: {out}");
    }
    wait_until("both kernels' session keys read here", Duration::from_secs(20), || {
        stack.key_slots(a).1 == 1 && stack.key_slots(b).1 == 1
    });
    let s = stack.crypto_stats();
    assert!(s.key_msgs_received >= 2, "{s:?}");

    for (k, addr) in [(&ka, a), (&kb, b)] {
        services_both_ways(&stack, k, addr);
    }

    // streams both ways with kernel a while it rekeys and every node
    // takes a new (256-bit) master key
    let sock = stack.port_socket().expect("socket");
    sock.bind(ServiceRange::single(ServiceType(1200), Instance(1)), Scope::Cluster).expect("bind");
    wait_until("our binding at kernel a", Duration::from_secs(15), || {
        ka.exec(&["tipc", "nametable", "show"]).0.lines().any(|l| l.starts_with("1200"))
    });
    let mut ks = format!("count:{BATCH}");
    for bn in 0..BATCHES {
        ks.push_str(&format!(" send:1200:1:k{bn} sleep:300"));
    }
    ka.spawn("/tmp/ks.log", &format!("tipc-client {ks}"));
    ka.spawn("/tmp/kr.log", &format!("tipc-client bind:1201:1 recv-n:{}:90000", BATCH * BATCHES));
    wait_until("kernel a's binding here", Duration::from_secs(15), || {
        stack.name_table().iter().any(|p| p.range.stype == ServiceType(1201) && p.node == a)
    });
    let before = stack.crypto_stats();
    let sender = {
        let s = stack.port_socket().expect("socket");
        std::thread::spawn(move || {
            for bn in 0..BATCHES {
                for n in 1..=BATCH {
                    let m = Bytes::from(format!("u{bn}#{n}"));
                    s.send_to_name(ServiceType(1201), Instance(1), m, false).expect("send");
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let mut got = Vec::new();
    let mut changed = [false; 2];
    let end = std::time::Instant::now() + Duration::from_secs(90);
    while got.len() < (BATCH * BATCHES) as usize && std::time::Instant::now() < end {
        if let Ok(m) = sock.recv_timeout(Duration::from_millis(100)) {
            let t = String::from_utf8_lossy(&m.data).to_string();
            if let Some((bn, n)) = t.strip_prefix('k').and_then(|r| r.split_once('#')) {
                got.push((bn.parse::<u32>().expect("batch"), n.parse::<u32>().expect("n")));
            }
        }
        // a third of the way: kernel a rekeys; two thirds: new master keys
        if !changed[0] && got.len() > (BATCH * BATCHES / 3) as usize {
            changed[0] = true;
            let (out, ok) = ka.exec(&["tipc", "node", "set", "key", "rekeying", "now"]);
            assert!(ok, "rekeying now: {out}");
        }
        if !changed[1] && got.len() > (2 * BATCH * BATCHES / 3) as usize {
            changed[1] = true;
            kernel_key(&ka, K3);
            kernel_key(&kb, K3);
            stack.set_key(master(K3)).expect("our new master key");
        }
    }
    sender.join().expect("sender");
    assert_eq!(got, all_in_order(), "kernel a's stream to us");
    let log = ka.wait_file("/tmp/kr.log", Duration::from_secs(30), |s| s.contains("DONE"));
    assert_eq!(
        numbered(&log, "u"),
        all_in_order(),
        "our stream to kernel a:\n{}",
        &log[log.len().saturating_sub(2000)..]
    );
    let after = stack.crypto_stats();
    assert!(after.key_msgs_received > before.key_msgs_received, "kernel a's second key: {after:?}");
    assert_eq!(after.bits, 256, "our new master key");
    assert_eq!(links_up(&stack), 2, "no link reset");
    for l in stack.links() {
        assert_eq!(l.stats.resets, 0, "{}: reset", l.name);
    }
    // nothing was dropped for want of a key or a bad tag along the way
    assert_eq!(after.rx_bad_tag, 0, "{after:?}");
    eprintln!("{}", stack.stats());
    stack.shutdown();
    drop(plug);
    drop(ka);
    drop(kb);
}

#[test]
fn a_wrong_key_forms_no_link() {
    let Some(brns) = kernel_rig("a wrong key against a kernel node", "kcwk") else { return };
    let _cleanup = Cleanup(brns.clone());
    make_bridges(&brns, &["br0"]);
    let kernel = KernelPeer::up("kcw", &brns, "kernel-cw");
    kernel_key(&kernel, K1);
    kernel.spawn("/tmp/kr.log", "tipc-client bind:1300:1 recv:12000");
    let plug = Plug::new("kcwk", &brns, 0);
    let stack = our_node(&plug, "ours-wrong", master(K2));
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(links_up(&stack), 0, "{:?}", stack.links());
    assert!(!kernel.wait_link("ours-wrong", Duration::from_secs(1)), "the kernel has a link to us");
    let sock = stack.port_socket().expect("socket");
    let sent = sock.send_to_name(ServiceType(1300), Instance(1), Bytes::from_static(b"must-not-arrive"), false);
    assert!(sent.is_err(), "no route: {sent:?}");
    assert!(stack.name_table().iter().all(|p| p.range.stype != ServiceType(1300)), "the kernel's name reached us");
    let s = stack.crypto_stats();
    assert!(s.rx_bad_tag > 0, "the kernel's frames fail authentication here: {s:?}");
    assert_eq!(s.rx_decrypted, 0, "{s:?}");
    let log = kernel.wait_file("/tmp/kr.log", Duration::from_secs(20), |s| s.contains("DONE"));
    assert!(!log.contains("must-not-arrive") && !log.contains("data="), "{log}");
    eprintln!("{}", stack.stats());
    stack.shutdown();
    drop(plug);
    drop(kernel);
}

/// Our node restarts into a keyed kernel node that runs on session keys:
/// the new incarnation has only the master key and cannot read the
/// kernel's session key, says so (N flag), gets it by the kernel's unicast
/// KEY_DISTR (net/tipc/crypto.c `tipc_crypto_key_synch`,
/// `tipc_crypto_work_rx`; never seen in the captures),
/// and both sides end on session keys again; RDM works both ways.
#[test]
fn our_node_restarts_into_a_kernel_on_session_keys() {
    let Some(brns) = kernel_rig("our node restarting into a keyed kernel node", "kcrs") else { return };
    let _cleanup = Cleanup(brns.clone());
    make_bridges(&brns, &["br0"]);
    let kernel = KernelPeer::up("kcr", &brns, "kernel-cr");
    kernel_key(&kernel, K1);
    let plug = Plug::new("kcrs", &brns, 0);
    let k: NodeAddr = kernel.addr.parse().expect("address");
    let first = our_node(&plug, "ours-restart", master(K1));
    wait_until("the link", Duration::from_secs(30), || links_up(&first) == 1);
    let (out, ok) = kernel.exec(&["tipc", "node", "set", "key", "rekeying", "now"]);
    assert!(ok, "rekeying now: {out}");
    wait_until("the kernel's session key read here", Duration::from_secs(20), || first.key_slots(k).1 != 0);
    wait_until("our session key read there", Duration::from_secs(20), || first.key_slots(k).0 != 0);
    first.shutdown();
    // the kernel notices the old incarnation is gone, then the new one comes
    std::thread::sleep(Duration::from_secs(3));
    let second = our_node(&plug, "ours-restart", master(K1));
    wait_until("the link again", Duration::from_secs(30), || links_up(&second) == 1);
    assert!(kernel.wait_link("ours-restart", Duration::from_secs(15)), "the kernel's link to the new incarnation");
    wait_until("the kernel's session key read by the new incarnation", Duration::from_secs(30), || {
        second.key_slots(k).1 != 0
    });
    wait_until("the new incarnation's session key read by the kernel", Duration::from_secs(30), || {
        second.key_slots(k).0 != 0
    });
    let sock = second.port_socket().expect("socket");
    sock.bind(ServiceRange::single(ServiceType(1400), Instance(1)), Scope::Cluster).expect("bind");
    kernel.spawn("/tmp/kr.log", "tipc-client bind:1401:1 recv-n:1:30000");
    wait_until("both bindings", Duration::from_secs(15), || {
        second.name_table().iter().any(|p| p.range.stype == ServiceType(1401))
            && kernel.exec(&["tipc", "nametable", "show"]).0.lines().any(|l| l.starts_with("1400"))
    });
    let (out, ok) = kernel.exec(&["tipc-client", "send:1400:1:after-restart"]);
    assert!(ok, "{out}");
    let m = sock.recv_timeout(Duration::from_secs(10)).expect("the kernel's message");
    assert_eq!(&m.data[..], b"after-restart");
    sock.send_to_name(ServiceType(1401), Instance(1), Bytes::from_static(b"back-again"), false).expect("send");
    let log = kernel.wait_file("/tmp/kr.log", Duration::from_secs(15), |s| s.contains("DONE"));
    assert!(log.contains("data=\"back-again\""), "{log}");
    let s = second.crypto_stats();
    assert!(s.key_msgs_received >= 1 && s.rx_bad_tag == 0, "{s:?}");
    eprintln!("{}", second.stats());
    second.shutdown();
    drop(plug);
    drop(kernel);
}
