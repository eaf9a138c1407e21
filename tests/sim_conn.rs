//! Connections on the seeded simulator under loss, duplication, reordering
//! and link resets: each case connects clients to a server and streams
//! numbered bytes of random piece sizes; whatever the faults, every byte a
//! reader gets is the next one sent (once, in order), and a connection that
//! did not carry everything ended with an error — never a silent gap. And a
//! server with 1 000 connections holds memory bounded by the windows.
//!
//! `TIPC_CONN_CASES` sets the number of cases (default 40);
//! `TIPC_CONN_SEED` reruns one case.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use tipc_rs::fault::{FaultConfig, Rng};
use tipc_rs::group::{ConnEnd, ConnEvent, ConnectTo};
use tipc_rs::sim::SimNet;
use tipc_rs::wire::{Duration, Importance, Instance, PortId, Scope, ServiceRange, ServiceType};
use tipc_rs::{CoreEvent, Error};

const SVC: ServiceType = ServiceType(3000);

/// The byte at stream offset `i` of client `c`.
fn byte(c: usize, i: u64) -> u8 {
    (i.wrapping_mul(31) ^ (c as u64).wrapping_mul(97) ^ (i >> 8)) as u8
}

/// What one connection's reader saw.
#[derive(Default, Debug)]
struct Reader {
    got: u64,
    end: Option<ConnEnd>,
}

/// One case: `clients` nodes connect to a server on node 0 and each sends
/// `total` bytes in pieces of random size; returns (bytes sent per client,
/// what each server-side reader saw, the client-side ends).
#[allow(clippy::type_complexity)]
fn case(seed: u64) -> (Vec<u64>, Vec<Reader>, Vec<Option<ConnEnd>>, bool) {
    let mut rng = Rng::new(seed);
    let mut net = SimNet::new(seed);
    let clients = 2usize;
    let ix = net.add_nodes(clients + 1);
    assert!(
        net.run_while(Duration::from_secs(20), |s| ix.iter().any(|&i| s.core(i).link().up_nodes().len() < clients))
    );
    let faults = FaultConfig {
        drop: rng.next_f64() * 0.1,
        duplicate: rng.next_f64() * 0.05,
        reorder: rng.next_f64() * 0.1,
        reorder_delay: Duration::from_millis(3),
        ..FaultConfig::none()
    };
    net.set_faults(faults);
    // 100 Mbit/s: a transfer takes long enough for a partition to cut it
    net.set_bandwidth(Some(100_000_000));
    // the server
    let lp = net.with(0, |c, _| c.open_conn_port());
    net.with(0, |c, _| c.bind(lp, ServiceRange::single(SVC, Instance(1)), Scope::Cluster)).expect("bind");
    net.with(0, |c, _| c.listen(lp)).expect("listen");
    assert!(net.run_while(Duration::from_secs(10), |s| {
        (1..=clients).any(|i| !s.core(i).names().iter().any(|p| p.range.stype == SVC))
    }));
    // the clients connect
    let mut cports = Vec::new();
    for i in 1..=clients {
        let p = net.with(i, |c, _| c.open_conn_port());
        let to = ConnectTo::Service { stype: SVC, inst: Instance(1) };
        net.with(i, |c, now| c.connect(now, p, to, Bytes::new(), Importance::Low)).expect("connect");
        cports.push(p);
    }
    // accept both
    let mut server_ports: BTreeMap<PortId, usize> = BTreeMap::new();
    let mut readers: Vec<Reader> = (0..clients).map(|_| Reader::default()).collect();
    let mut client_ends: Vec<Option<ConnEnd>> = vec![None; clients];
    let mut connected = vec![false; clients];
    let total: u64 = 1_000_000 + rng.below(2_000_000);
    let mut sent = vec![0u64; clients];
    // a link reset in some cases: a partition longer than the tolerance
    let reset = rng.chance(0.3);
    let partition_at = net.now() + Duration::from_millis(20 + rng.below(300));
    if reset {
        net.partition(&[0], &[1], partition_at, partition_at + Duration::from_secs(3));
    }
    let end = net.now() + Duration::from_secs(60);
    while net.now() < end {
        net.run_for(Duration::from_millis(5));
        // the server accepts whatever waits and reads everything
        for (_, ev) in net.take_events(0) {
            match ev {
                CoreEvent::Conn { port, event: ConnEvent::Incoming } if port == lp => {
                    while let Ok(a) = net.with(0, |c, now| c.accept(now, lp)) {
                        let k = cports.iter().position(|p| *p == a.peer.port).expect("a known client");
                        server_ports.insert(a.port, k);
                    }
                }
                CoreEvent::Conn { port, event: ConnEvent::Data(d) } => {
                    let k = server_ports[&port];
                    let r = &mut readers[k];
                    for (j, b) in d.iter().enumerate() {
                        assert_eq!(
                            *b,
                            byte(k, r.got + j as u64),
                            "seed {seed}: client {k} byte {} wrong",
                            r.got + j as u64
                        );
                    }
                    r.got += d.len() as u64;
                    assert!(r.end.is_none(), "seed {seed}: data after the end");
                    net.with(0, |c, _| c.conn_consumed(port, d.len()));
                }
                CoreEvent::Conn { port, event: ConnEvent::Closed(e) } if server_ports.contains_key(&port) => {
                    readers[server_ports[&port]].end = Some(e);
                }
                _ => {}
            }
        }
        // the clients send while the window lets them
        for k in 0..clients {
            let node = k + 1;
            for (_, ev) in net.take_events(node) {
                match ev {
                    CoreEvent::Conn { event: ConnEvent::Connected { .. }, .. } => connected[k] = true,
                    CoreEvent::Conn { event: ConnEvent::Closed(e), .. } => client_ends[k] = Some(e),
                    _ => {}
                }
            }
            if !connected[k] || client_ends[k].is_some() {
                continue;
            }
            while sent[k] < total {
                let len = (1 + rng.below(70_000)).min(total - sent[k]).min(66_000);
                let data: Bytes = (0..len).map(|j| byte(k, sent[k] + j)).collect::<Vec<u8>>().into();
                match net.with(node, |c, now| c.conn_send(now, cports[k], data)) {
                    Ok(()) => sent[k] += len,
                    Err(Error::WouldBlock(_)) => break,
                    Err(Error::ConnClosed) => break,
                    Err(e) => panic!("seed {seed}: send: {e}"),
                }
            }
            if sent[k] == total && client_ends[k].is_none() && readers[k].got == total {
                // done: an orderly end
                let _ = net.with(node, |c, _| c.conn_shutdown(cports[k]));
                client_ends[k] = Some(ConnEnd::Shutdown);
            }
        }
        let settled =
            (0..clients).all(|k| client_ends[k].is_some() && (readers[k].end.is_some() || readers[k].got == total));
        if settled && net.now() > partition_at + Duration::from_secs(4) {
            break;
        }
    }
    (sent, readers, client_ends, reset)
}

#[test]
fn streams_arrive_whole_in_order_or_end_with_an_error() {
    let cases: u64 = std::env::var("TIPC_CONN_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let seeds: Vec<u64> = match std::env::var("TIPC_CONN_SEED").ok().and_then(|v| v.parse().ok()) {
        Some(s) => vec![s],
        None => (0..cases).map(|i| 0xc0_22ec + i * 7919).collect(),
    };
    let (mut whole, mut aborted, mut bytes) = (0, 0, 0u64);
    for seed in seeds {
        let (sent, readers, client_ends, reset) = case(seed);
        for (k, r) in readers.iter().enumerate() {
            bytes += r.got;
            assert!(r.got <= sent[k], "seed {seed}: more arrived than was sent");
            if r.got == sent[k] && client_ends[k] == Some(ConnEnd::Shutdown) {
                whole += 1;
                continue;
            }
            // not everything arrived: the connection must have ended with
            // an error on both sides, never silently
            assert!(
                matches!(r.end, Some(ConnEnd::NodeLost | ConnEnd::Reset(_))),
                "seed {seed}: client {k}: {} of {} bytes and no error at the reader ({:?})",
                r.got,
                sent[k],
                r.end
            );
            assert!(
                matches!(client_ends[k], Some(ConnEnd::NodeLost | ConnEnd::Reset(_))),
                "seed {seed}: client {k} saw no error ({:?})",
                client_ends[k]
            );
            assert!(reset, "seed {seed}: a connection ended without a link reset");
            aborted += 1;
        }
    }
    eprintln!(
        "{whole} connections carried everything, {aborted} ended with an error after a link reset; {bytes} bytes checked"
    );
    assert!(whole > 0 && aborted > 0, "the cases exercised both outcomes");
}

#[test]
fn a_thousand_connections_to_one_server_hold_bounded_memory() {
    let mut net = SimNet::new(77);
    let ix = net.add_nodes(3);
    assert!(net.run_while(Duration::from_secs(20), |s| ix.iter().any(|&i| s.core(i).link().up_nodes().len() < 2)));
    let lp = net.with(0, |c, _| c.open_conn_port());
    net.with(0, |c, _| c.bind(lp, ServiceRange::single(SVC, Instance(9)), Scope::Cluster)).expect("bind");
    net.with(0, |c, _| c.listen(lp)).expect("listen");
    net.run_for(Duration::from_millis(500));
    let mut cports = Vec::new();
    for k in 0..1000 {
        let node = 1 + k % 2;
        let p = net.with(node, |c, _| c.open_conn_port());
        let to = ConnectTo::Service { stype: SVC, inst: Instance(9) };
        net.with(node, |c, now| c.connect(now, p, to, Bytes::new(), Importance::Low)).expect("connect");
        cports.push((node, p));
        if k % 50 == 49 {
            net.run_for(Duration::from_millis(20));
        }
    }
    net.run_for(Duration::from_millis(200));
    let mut accepted = 0;
    while net.with(0, |c, now| c.accept(now, lp)).is_ok() {
        accepted += 1;
    }
    assert_eq!(accepted, 1000);
    net.run_for(Duration::from_millis(500));
    let mut connected = 0;
    for node in [1, 2] {
        connected += net
            .take_events(node)
            .iter()
            .filter(|(_, e)| matches!(e, CoreEvent::Conn { event: ConnEvent::Connected { .. }, .. }))
            .count();
    }
    assert_eq!(connected, 1000);
    // every client sends as long as its window lets it; the server reads
    // nothing: what waits for it is bounded by the windows, not by the
    // senders' patience
    let data = Bytes::from(vec![7u8; 10_000]);
    let mut sent = 0u64;
    let mut unread: BTreeMap<PortId, u64> = BTreeMap::new();
    for _ in 0..400 {
        for &(node, p) in &cports {
            while net.with(node, |c, now| c.conn_send(now, p, data.clone())).is_ok() {
                sent += data.len() as u64;
            }
        }
        net.run_for(Duration::from_millis(50));
        for (_, e) in net.take_events(0) {
            if let CoreEvent::Conn { port, event: ConnEvent::Data(d) } = e {
                *unread.entry(port).or_default() += d.len() as u64;
            }
        }
        if cports.iter().all(|&(node, p)| net.core(node).sockets().conn_congested(p)) {
            break;
        }
    }
    net.run_for(Duration::from_secs(1));
    for (_, e) in net.take_events(0) {
        if let CoreEvent::Conn { port, event: ConnEvent::Data(d) } = e {
            *unread.entry(port).or_default() += d.len() as u64;
        }
    }
    assert!(cports.iter().all(|&(node, p)| net.core(node).sockets().conn_congested(p)), "every window filled");
    // the first window is 128 blocks and a send may overshoot it by one
    // message: 13 messages of 10 000 bytes (10 blocks each) per connection
    let most = unread.values().max().copied().unwrap_or(0);
    let total: u64 = unread.values().sum();
    eprintln!("1000 connections: {total} bytes unread at the server, at most {most} on one connection");
    assert_eq!(unread.len(), 1000);
    assert_eq!(total, sent, "nothing lost");
    assert_eq!(most, 13 * 10_000, "each connection stops at its window");
}
