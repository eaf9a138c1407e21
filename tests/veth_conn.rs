//! Connection sockets among three of our nodes on a veth bridge: connect by
//! name, accept, SEQPACKET messages of every size echoed, a STREAM transfer
//! with a checksum, a slow reader that makes the sender wait, orderly
//! shutdown and close as the peer sees them, and a killed node whose
//! connections end in the others.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::rig;
use tipc_rs::wire::{ErrorCode, Instance, ServiceRange, ServiceType};
use tipc_rs::{ConnKind, ConnSocket, Error, Scope, Stack};
use tipc_testkit::netns::Lab;

const SVC: ServiceType = ServiceType(1000);

fn nodes(lab: &Lab, tag: &str) -> Vec<Stack> {
    let v: Vec<Stack> = (0..3).map(|i| common::start_node(lab.node(i), &format!("{tag}-{i}"))).collect();
    for s in &v {
        s.wait_for_nodes(2, Duration::from_secs(10)).expect("links up");
    }
    v
}

/// A listener on `s` bound to `SVC`:`inst`, visible on `seen_by`.
fn listener(s: &Stack, kind: ConnKind, inst: u32, seen_by: &[&Stack]) -> ConnSocket {
    let l = s.conn_socket(kind).expect("socket");
    l.bind(ServiceRange::single(SVC, Instance(inst)), Scope::Cluster).expect("bind");
    l.listen().expect("listen");
    let end = Instant::now() + Duration::from_secs(10);
    while seen_by.iter().any(|o| !o.name_table().iter().any(|p| p.range.stype == SVC && p.range.lower.0 == inst)) {
        assert!(Instant::now() < end, "the binding did not spread");
        std::thread::sleep(Duration::from_millis(10));
    }
    l
}

fn pattern(len: usize, seed: u8) -> Bytes {
    Bytes::from((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>())
}

#[test]
fn seqpacket_echo_of_every_size_then_shutdown_and_close() {
    let Some(lab) = rig("veth conn seqpacket", || Lab::bridge("vcsp", 3)) else { return };
    let n = nodes(&lab, "csp");
    let l = listener(&n[0], ConnKind::Seqpacket, 1, &[&n[1], &n[2]]);
    let server = std::thread::spawn(move || {
        // two clients, each echoed on its own thread until it ends its
        // connection
        let handlers: Vec<_> = (0..2)
            .map(|_| {
                let (c, peer) = l.accept_timeout(Duration::from_secs(10)).expect("accept");
                std::thread::spawn(move || {
                    let mut echoed = 0;
                    let end = loop {
                        match c.recv_timeout(Duration::from_secs(20)) {
                            Ok(Some(m)) => {
                                c.send(m).expect("echo");
                                echoed += 1;
                            }
                            Ok(None) => break "eof".to_string(),
                            Err(e) => break format!("{e}"),
                        }
                    };
                    (peer, echoed, end)
                })
            })
            .collect();
        handlers.into_iter().map(|h| h.join().expect("handler")).collect::<Vec<_>>()
    });
    let sizes = [1usize, 1500, 9000, 66_000];
    let mut clients = Vec::new();
    for (k, node) in n[1..].iter().enumerate() {
        let c = node.conn_socket(ConnKind::Seqpacket).expect("socket");
        c.connect(SVC, Instance(1)).expect("connect");
        let peer = c.peer().expect("peer once connected");
        assert_eq!(peer.node, n[0].address().expect("address"));
        for (i, len) in sizes.iter().enumerate() {
            let m = pattern(*len, (k * 10 + i) as u8);
            c.send(m.clone()).expect("send");
            let back = c.recv_timeout(Duration::from_secs(10)).expect("echo").expect("not the end");
            assert_eq!(back, m, "{len} bytes echoed whole, boundaries kept");
        }
        clients.push(c);
    }
    // the first client shuts down in order, the second closes
    clients[0].shutdown().expect("shutdown");
    assert!(matches!(clients[0].send(Bytes::from_static(b"late")), Err(Error::ConnClosed)));
    drop(clients.pop());
    let ends = server.join().expect("server");
    assert_eq!(ends.len(), 2);
    let end_of = |i: usize| {
        let node = n[i].address().expect("address");
        ends.iter().find(|(p, _, _)| p.node == node).map(|(_, k, e)| (*k, e.clone())).expect("that client's end")
    };
    assert_eq!(end_of(1), (sizes.len(), "eof".to_string()), "shutdown reads as end of stream");
    assert_eq!(end_of(2), (sizes.len(), format!("{}", Error::ConnReset(ErrorCode::NoPort))), "close reads as a reset");
    for s in n {
        s.shutdown();
    }
}

#[test]
fn stream_of_16_mib_with_a_slow_reader_arrives_whole_and_the_sender_waits() {
    let Some(lab) = rig("veth conn stream", || Lab::bridge("vcst", 3)) else { return };
    let n = nodes(&lab, "cst");
    let l = listener(&n[0], ConnKind::Stream, 2, &[&n[2]]);
    const TOTAL: usize = 16 << 20;
    let reader = std::thread::spawn(move || {
        let (c, _) = l.accept_timeout(Duration::from_secs(10)).expect("accept");
        let mut sum = 0u64;
        let mut got = 0usize;
        let mut buf = vec![0u8; 4096];
        loop {
            let k = c.read_timeout(&mut buf, Duration::from_secs(20)).expect("read");
            if k == 0 {
                break;
            }
            for b in &buf[..k] {
                sum = sum.wrapping_mul(1_000_003).wrapping_add(u64::from(*b));
            }
            got += k;
            // slow for the first MiB: the sender must wait for the window
            if got < (1 << 20) {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        (got, sum)
    });
    let c = n[2].conn_socket(ConnKind::Stream).expect("socket");
    c.connect(SVC, Instance(2)).expect("connect");
    let data = pattern(TOTAL, 7);
    let want = data.iter().fold(0u64, |s, b| s.wrapping_mul(1_000_003).wrapping_add(u64::from(*b)));
    // the first writes without waiting, until the window refuses one
    let mut waited = 0;
    let mut off = 0;
    while off < TOTAL {
        let piece = data.slice(off..(off + 60_000).min(TOTAL));
        match c.try_send(piece.clone()) {
            Ok(n) => off += n,
            Err(Error::WouldBlock(_)) => {
                waited += 1;
                c.send(piece.clone()).expect("send once the window opens");
                off += piece.len();
            }
            Err(e) => panic!("{e}"),
        }
    }
    c.shutdown().expect("shutdown");
    let (got, sum) = reader.join().expect("reader");
    eprintln!("16 MiB stream: the sender waited {waited} times");
    assert_eq!(got, TOTAL, "every byte arrived");
    assert_eq!(sum, want, "in order and intact");
    assert!(waited > 0, "the slow reader's window held the sender back");
    for s in n {
        s.shutdown();
    }
}

#[test]
fn a_killed_node_ends_its_connections_in_the_others_and_unbound_names_fail_at_once() {
    let Some(lab) = rig("veth conn kill", || Lab::bridge("vckl", 3)) else { return };
    let mut n = nodes(&lab, "ckl");
    // nobody binds 1000:99: the connect fails at once, not after 8 s
    let c = n[1].conn_socket(ConnKind::Seqpacket).expect("socket");
    let t0 = Instant::now();
    assert!(matches!(c.connect(SVC, Instance(99)), Err(Error::NoService(1000, 99))));
    assert!(t0.elapsed() < Duration::from_secs(1));
    // a server on node 2 and a client on node 1; node 2 dies
    let l = listener(&n[2], ConnKind::Seqpacket, 3, &[&n[1]]);
    // connect returns once the server accepts
    let server = std::thread::spawn(move || l.accept_timeout(Duration::from_secs(10)).expect("accept"));
    c.connect(SVC, Instance(3)).expect("connect");
    let (_sc, _) = server.join().expect("server");
    let victim = n.remove(2);
    let t0 = Instant::now();
    victim.kill();
    let r = c.recv_timeout(Duration::from_secs(20));
    let took = t0.elapsed();
    eprintln!("connection ended {took:?} after the kill: {r:?}");
    assert!(matches!(r, Err(Error::ConnReset(ErrorCode::NoNode))), "{r:?}");
    // the default link tolerance is 1.5 s; the link goes down within it
    // plus one supervision interval
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(matches!(c.send(Bytes::from_static(b"x")), Err(Error::ConnClosed)));
    for s in n {
        s.shutdown();
    }
}
