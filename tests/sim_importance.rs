//! Message importance on the simulator: each importance has its own link
//! backlog limit (net/tipc/link.c `tipc_link_set_queue_limits`: 2, 4, 6
//! and 8 times the window for LOW to CRITICAL), so a CRITICAL message still
//! goes when LOW messages have filled theirs, and it carries its importance
//! in the user field.

mod common;

use bytes::Bytes;
use tipc_rs::sim::SimNet;
use tipc_rs::wire::{Duration, Importance};
use tipc_rs::{CoreEvent, Dest, Error, SendOpts};

#[test]
fn a_critical_message_passes_a_flood_of_low_ones() {
    let mut net = SimNet::new(5);
    let ix = net.add_nodes(2);
    assert!(net.run_while(Duration::from_secs(20), |s| ix.iter().any(|&i| s.core(i).link().up_nodes().is_empty())));
    let from = net.with(0, |c, _| c.open_port());
    let to = net.with(1, |c, _| c.open_port());
    let dest = Dest::Socket { node: net.core(1).address().expect("address"), port: to };
    let send = |net: &mut SimNet, imp: Importance, tag: u8| {
        let opts = SendOpts { importance: imp, returnable: false };
        net.with(0, |c, now| c.send(now, from, dest, Bytes::from(vec![tag; 1000]), opts))
    };
    // LOW until the link refuses it (the simulator is not run meanwhile)
    let mut low = 0;
    loop {
        match send(&mut net, Importance::Low, 0) {
            Ok(()) => low += 1,
            Err(Error::WouldBlock(_)) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(low < 10_000, "LOW was never refused");
    }
    // what the window took (50 packets, some already in flight before the
    // flood) plus LOW's backlog limit (2 x 50)
    eprintln!("{low} LOW messages accepted before the link refused one");
    assert!((100..=150).contains(&low), "{low}");
    // MEDIUM still has room, and CRITICAL
    send(&mut net, Importance::Medium, 1).expect("MEDIUM passes a full LOW backlog");
    send(&mut net, Importance::Critical, 3).expect("CRITICAL passes a full LOW backlog");
    assert!(matches!(send(&mut net, Importance::Low, 0), Err(Error::WouldBlock(_))), "LOW still waits");
    net.run_for(Duration::from_secs(2));
    let got: Vec<u8> = net
        .take_events(1)
        .into_iter()
        .filter_map(|(_, e)| match e {
            CoreEvent::Message(m) if m.port == to => Some(m.data[0]),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), low + 2, "every accepted message arrived");
    assert_eq!(got.iter().filter(|t| **t == 3).count(), 1);
}
