//! Unit tests of the timer table, through link layers on a simulated
//! segment ([`crate::testkit`]).

use super::*;
use crate::testkit::*;

/// With packets in flight the next deadline is the fast probe 10 ms
/// after the last progress; the query without fast probes skips it.
#[test]
fn poll_timeout_with_and_without_fast_probes() {
    let mut s = Seg::up(2);
    s.run(MS(400));
    let now = s.now;
    s.nodes[0].send(now, addr(2), umsg(1, 2, 0, 10)).expect("sent");
    let l = &s.nodes[0];
    let (kind, later) = l.next_timer(|k| !k.is_fast_probe()).expect("a deadline");
    assert!(later > now, "{later}: the next tick, link deadline or discovery");
    assert!(!kind.is_fast_probe());
    assert_eq!(l.poll_timeout(), Some(later.min(now + crate::link::FAST_PROBE)));
    assert_eq!(l.next_timer(|_| true), Some((TimerKind::FastProbe(addr(2)), now + crate::link::FAST_PROBE)));
    // with nothing in flight both agree
    let quiet = LinkLayer::new(cfg(5), now);
    assert_eq!(quiet.poll_timeout(), quiet.next_timer(|k| !k.is_fast_probe()).map(|(_, t)| t));
}

/// The table lists each armed timer once, by kind: the address trial
/// until the address is confirmed, then discovery; the broadcast probe
/// while broadcast packets are in flight; per linked node a fast probe
/// while its packets are unacknowledged, a dead-link deadline and a tick.
/// A stopped layer has none.
#[test]
fn the_table_lists_every_armed_timer_by_kind() {
    let now = Instant::ZERO;
    let mut c = cfg(1);
    c.addr_mode = AddrMode::Hashed;
    let trial = LinkLayer::new(c, now);
    assert_eq!(trial.timers(), [(TimerKind::AddressTrial, now)]);
    let mut s = Seg::up(2);
    // node 2 acknowledges nothing for now
    s.drop = Box::new(|from, _, t| from == 1 && matches!(Msg::parse(t.msg.clone()), Ok(Msg::LinkProto(_))));
    let now = s.now;
    let kinds = |l: &LinkLayer| l.timers().into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(kinds(&s.nodes[0]), [TimerKind::Discovery, TimerKind::LinkDead(addr(2)), TimerKind::LinkTick(addr(2))]);
    s.nodes[0].send(now, addr(2), umsg(1, 2, 0, 10)).expect("sent");
    s.nodes[0].broadcast(now, bmsg(1)).expect("sent");
    let l = &s.nodes[0];
    assert_eq!(
        kinds(l),
        [
            TimerKind::Discovery,
            TimerKind::BroadcastProbe,
            TimerKind::FastProbe(addr(2)),
            TimerKind::LinkDead(addr(2)),
            TimerKind::LinkTick(addr(2)),
        ]
    );
    let fast = crate::link::FAST_PROBE;
    assert!(l.timers().contains(&(TimerKind::FastProbe(addr(2)), now + fast)));
    assert!(l.timers().contains(&(TimerKind::BroadcastProbe, now + fast)));
    assert_eq!(l.poll_timeout(), l.timers().into_iter().map(|(_, t)| t).min());
    // both probes fall due together: the first row of the two is reported
    assert_eq!(l.next_timer(|_| true), Some((TimerKind::BroadcastProbe, now + fast)));
    assert!(TimerKind::BroadcastProbe.is_fast_probe() && !TimerKind::LinkTick(addr(2)).is_fast_probe());
    s.nodes[0].shutdown(now);
    assert!(s.nodes[0].timers().is_empty());
    assert_eq!(s.nodes[0].next_timer(|_| true), None);
}
