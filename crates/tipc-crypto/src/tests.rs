//! Unit tests: the kernel's own frames as vectors, and two nodes' crypto
//! states talking to each other.

use proptest::prelude::*;
use tipc_wire::{Instant, NodeId};

use crate::crypto::open_with;
use crate::ehdr::{EncHeader, Sender};
use crate::key::Cipher;
use crate::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

const K1: &str = "0x000102030405060708090a0b0c0d0e0f10111213 master";
const A: u32 = 0x171d_5411;
const B: u32 = 0x171d_5412;

/// Seals `plain` under `eh` as our code does and returns the tag.
fn tag_of(key: &AeadKey, mode: KeyMode, eh: &EncHeader, dest: u32, plain: &[u8]) -> Vec<u8> {
    let mut aad = vec![0u8; eh.len()];
    eh.write(&mut aad).expect("ehdr");
    let mut frame = aad.clone();
    frame.extend_from_slice(plain);
    frame.extend_from_slice(&[0u8; 16]);
    let mut body = plain.to_vec();
    let n = crate::crypto::nonce(key, mode, eh, dest);
    Cipher::new(key).seal(&n, &aad, &mut body).to_vec()
}

/// The data frame 224 of capture 17 (session key of node a, per-node mode,
/// D = 1 to b) and its KEY_DISTR frame 72 (master key, cluster mode): our
/// encryption gives the kernel's tags.
#[test]
fn kernel_tags_of_capture_17() {
    let session = AeadKey::new(&hex("39edd98b e953f042 3b384090 7a5aa737 4e12fdf7")).expect("key");
    let eh = EncHeader::parse(&[hex("e1 54 00 00 00 00 00 00 00 00 00 49 17 1d 54 11"), vec![0; 60]].concat())
        .expect("ehdr");
    let plain = hex("41 48 00 36 40 10 00 02 00 02 00 04 17 1d 54 11 aa 55 18 0b bf c4 58 19 17 1d 54 11 17 1d 54 12
         00 00 03 e8 00 00 00 11 68 65 6c 6c 6f 2d 63 72 79 70 74 6f 2d 31 00 00");
    assert_eq!(
        tag_of(&session, KeyMode::PerNode, &eh, B, &plain),
        hex("82 bf 3c e1 42 fd bb ab d8 85 79 85 13 f7 24 da")
    );

    let k1: KeySpec = K1.parse().expect("K1");
    let eh = EncHeader::parse(&[hex("e0 04 00 00 00 00 00 00 00 00 00 25 17 1d 54 11"), vec![0; 60]].concat())
        .expect("ehdr");
    let plain = hex("5d 50 00 60 00 00 00 00 00 00 00 01 17 1d 54 11 a1 99 00 02 00 00 12 67 17 1d 54 11 00 00 00 00
         00 00 00 00 00 00 00 00 67 63 6d 28 61 65 73 29 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 14 39 ed d9 8b e9 53 f0 42 3b 38 40 90 7a 5a a7 37 4e 12 fd f7");
    assert_eq!(
        tag_of(&k1.key, KeyMode::Cluster, &eh, 0, &plain),
        hex("6e 51 00 6f 97 7f be ae e4 ce ea ce 7f 98 97 0a")
    );
    let kd = KeyDistr::parse(&plain).expect("KEY_DISTR");
    assert_eq!((kd.generation, kd.mode, kd.dest), (41369, KeyMode::PerNode, 0));
    assert_eq!(kd.key, session);
    // and our builder lays it out as the kernel did (but for the
    // broadcast-link fields: non-sequenced bit, seqno, network id)
    let mut ours = KeyDistr { generation: 41369, mode: KeyMode::PerNode, key: session, dest: 0 }.build(A).to_vec();
    ours[1] |= 0x10; // non-sequenced
    ours[11] = 1; // broadcast seqno 1
    ours[20..24].copy_from_slice(&4711u32.to_be_bytes());
    assert_eq!(ours, plain);
}

/// A 40-byte internal message from `from` to `to`: `user`, `mtype`.
fn int_msg(user: u8, mtype: u8, from: u32, to: u32, data: &[u8]) -> Vec<u8> {
    let size = 40 + data.len();
    let mut m = vec![0u8; size];
    let w0 = 2u32 << 29 | u32::from(user) << 25 | 10 << 21 | size as u32;
    m[0..4].copy_from_slice(&w0.to_be_bytes());
    m[4] = mtype << 5;
    m[12..16].copy_from_slice(&from.to_be_bytes());
    m[24..28].copy_from_slice(&from.to_be_bytes());
    m[28..32].copy_from_slice(&to.to_be_bytes());
    m[40..].copy_from_slice(data);
    m
}

/// The sender lookup of a node that knows the peer at `addr` (the test
/// nodes' identities follow from their addresses).
fn known(addr: u32) -> impl FnOnce(Sender) -> Option<(u32, NodeId)> {
    let id = match addr {
        A => "crypto-a",
        B => "crypto-b",
        _ => "crypto-c",
    };
    move |_| Some((addr, NodeId::from_text(id).expect("id")))
}

/// The sender lookup of a node that knows nobody.
fn unknown(_: Sender) -> Option<(u32, NodeId)> {
    None
}

fn node(id: &str, addr: u32, seed: u8) -> Crypto {
    let mut c = Crypto::new(NodeId::from_text(id).expect("id"), [seed; 32], Instant::ZERO);
    c.set_own_addr(addr);
    c
}

fn one(c: &mut Crypto, msg: &[u8], dest: Option<u32>) -> Vec<bytes::Bytes> {
    let mut out = Vec::new();
    c.encrypt(msg, dest, &mut out);
    out
}

/// Carries `from`'s key messages to `to` (encrypted, as the links would).
fn carry_keys(from: &mut Crypto, from_addr: u32, to: &mut Crypto, now: Instant) {
    while let Some((_dest, m)) = from.poll_key_msg() {
        for f in one(from, &m, None) {
            let o = to.decrypt(now, f.clone(), known(from_addr)).expect("key message opens");
            to.receive_key_msg(from_addr, &o, true).expect("key taken");
        }
    }
}

#[test]
fn master_key_then_session_keys_then_rollover() {
    let mut a = node("crypto-a", A, 1);
    let mut b = node("crypto-b", B, 2);
    let t0 = Instant::ZERO;
    a.set_key(t0, K1.parse().expect("K1"));
    b.set_key(t0, K1.parse().expect("K1"));
    // each made a session key at once; until the other reads it, master
    let state_ab = int_msg(7, 0, A, B, &[]);
    let out = one(&mut a, &state_ab, Some(B));
    assert_eq!(out.len(), 2, "a probe copy with the pending key, then the master key");
    assert_eq!(EncHeader::parse(&out[0]).expect("ehdr").tx_key, 1);
    assert_eq!(EncHeader::parse(&out[1]).expect("ehdr").tx_key, 0);
    // b cannot read the probe before it has a's key
    assert_eq!(b.decrypt(t0, out[0].clone(), known(A)).map(|_| ()).unwrap_err(), DropReason::UnknownKey);
    let o = b.decrypt(t0, out[1].clone(), known(A)).expect("master frame opens");
    assert_eq!(&o[..], &state_ab[..]);
    carry_keys(&mut a, A, &mut b, t0);
    carry_keys(&mut b, B, &mut a, t0);
    // the next probe activates a's key at b; b says so in its frames
    let out = one(&mut a, &state_ab, Some(B));
    b.decrypt(t0, out[0].clone(), known(A)).expect("probe opens with the new key");
    assert_eq!(b.peer_slots(A).1, 1);
    let state_ba = int_msg(7, 0, B, A, &[]);
    for f in one(&mut b, &state_ba, Some(A)) {
        let eh = EncHeader::parse(&f).expect("ehdr");
        assert_eq!(eh.rx_key_active, 1);
        a.decrypt(t0, f.clone(), known(B)).expect("opens");
    }
    assert_eq!(a.peer_slots(B).0, 1);
    // a now sends to b with its session key; data is never probed
    let data = int_msg(0, 0, A, B, b"hello");
    let out = one(&mut a, &data, Some(B));
    assert_eq!(out.len(), 1);
    assert_eq!(EncHeader::parse(&out[0]).expect("ehdr").tx_key, 1);
    assert_eq!(&b.decrypt(t0, out[0].clone(), known(A)).expect("opens")[..], &data[..]);
    // 10 s later the key is a's active one, the broadcast link follows
    let t = t0 + crate::crypto::TX_SWITCH_DELAY;
    a.handle_timeout(t);
    assert_eq!(a.stats().tx_active, 1);
    let bcast = int_msg(0, 0, A, 0, b"all");
    let out = one(&mut a, &bcast, None);
    assert_eq!(EncHeader::parse(&out[0]).expect("ehdr").tx_key, 1);
    assert_eq!(&b.decrypt(t, out[0].clone(), known(A)).expect("opens")[..], &bcast[..]);
    // rollover: a new key in slot 2, nothing lost on the way
    assert!(a.rekey(t));
    carry_keys(&mut a, A, &mut b, t);
    let mut sent = 0;
    let mut got = 0;
    for i in 0..48u64 {
        let now = t + tipc_wire::Duration::from_millis(250 * i);
        a.handle_timeout(now);
        b.handle_timeout(now);
        for f in one(&mut a, &state_ab, Some(B)) {
            let _ = b.decrypt(now, f.clone(), known(A));
        }
        for f in one(&mut b, &state_ba, Some(A)) {
            a.decrypt(now, f.clone(), known(B)).expect("b to a opens");
        }
        sent += 1;
        for f in one(&mut a, &data, Some(B)) {
            if b.decrypt(now, f.clone(), known(A)).is_ok() {
                got += 1;
            }
        }
    }
    assert_eq!(got, sent, "every data frame opened through the rollover");
    assert_eq!(a.stats().tx_active, 2, "the new key is active");
    assert_eq!(b.peer_slots(A).1, 2);
}

#[test]
fn wrong_key_replay_and_bit_flips_are_refused() {
    let mut a = node("crypto-a", A, 1);
    let mut b = node("crypto-b", B, 2);
    let mut c = node("crypto-c", 0x171d_5413, 3);
    let t0 = Instant::ZERO;
    a.set_key(t0, K1.parse().expect("K1"));
    b.set_key(t0, K1.parse().expect("K1"));
    c.set_key(t0, "0x202122232425262728292a2b2c2d2e2f30313233 master".parse().expect("K2"));
    let data = int_msg(0, 0, A, B, b"secret");
    let f = one(&mut a, &data, Some(B)).pop().expect("frame");
    assert_eq!(c.decrypt(t0, f.clone(), known(A)).map(|_| ()).unwrap_err(), DropReason::BadTag);
    assert!(b.decrypt(t0, f.clone(), known(A)).is_ok());
    assert_eq!(b.decrypt(t0, f.clone(), known(A)).map(|_| ()).unwrap_err(), DropReason::Replay);
    for i in 0..f.len() * 8 {
        let mut g = f.to_vec();
        g[i / 8] ^= 1 << (i % 8);
        assert!(b.decrypt(t0, g.into(), known(A)).is_err(), "bit {i} flipped was taken");
    }
    let s = b.stats();
    assert_eq!(s.rx_replay + s.rx_bad_tag + s.rx_malformed + s.rx_unknown_key + s.rx_no_key, s.rx_dropped());
    assert!(s.rx_bad_tag > 0 && s.rx_replay > 0);
    // a node without keys opens nothing
    let mut d = node("crypto-d", 0x171d_5414, 4);
    assert_eq!(d.decrypt(t0, f.clone(), known(A)).map(|_| ()).unwrap_err(), DropReason::NoKey);
    assert!(!d.is_on());
}

#[test]
fn a_clear_key_message_is_refused() {
    let mut b = node("crypto-b", B, 2);
    b.set_key(Instant::ZERO, K1.parse().expect("K1"));
    let key = AeadKey::new(&[7; 20]).expect("key");
    let m = KeyDistr { generation: 9, mode: KeyMode::PerNode, key, dest: 0 }.build(A);
    assert!(b.receive_key_msg(A, &m, false).is_err());
    assert_eq!(b.stats().key_msgs_refused, 1);
    assert!(b.receive_key_msg(A, &m, true).is_ok());
    assert_eq!(b.stats().key_msgs_received, 1);
}

#[test]
fn open_with_reads_what_encrypt_wrote() {
    let mut a = node("crypto-a", A, 1);
    a.set_key(Instant::ZERO, K1.parse().expect("K1"));
    let k1: KeySpec = K1.parse().expect("K1");
    let cfg = int_msg(13, 1, A, 0, &[0; 36]);
    let out = one(&mut a, &cfg, None);
    let last = out.last().expect("frame");
    let eh = EncHeader::parse(last).expect("ehdr");
    assert_eq!(eh.sender, Sender::Id(NodeId::from_text("crypto-a").expect("id").0));
    let plain = open_with(&k1.key, KeyMode::Cluster, last, 0).expect("opens");
    assert_eq!(&plain[..cfg.len()], &cfg[..]);
}

proptest! {
    /// Arbitrary bytes never panic and are never taken as a frame.
    #[test]
    fn arbitrary_frames_are_refused(frame in proptest::collection::vec(any::<u8>(), 0..200), enc in any::<bool>()) {
        let mut b = node("crypto-b", B, 2);
        b.set_key(Instant::ZERO, K1.parse().expect("K1"));
        let mut f = frame;
        if enc && !f.is_empty() {
            f[0] = 0xe0 | (f[0] & 0x1f);
        }
        prop_assert!(b.decrypt(Instant::ZERO, f.clone().into(), known(A)).is_err());
        prop_assert!(b.decrypt(Instant::ZERO, f.clone().into(), unknown).is_err());
        let _ = KeyDistr::parse(&f);
    }

    /// Every header writes and reads back the same.
    #[test]
    fn ehdr_round_trip(user in 0u8..16, d: bool, tx in 0u8..4, rx in 0u8..4, k: bool, m: bool, n: bool,
                       seq in 1u64.., addr: u32, id: [u8; 16], long: bool) {
        let user = if long { 13 } else if user == 13 { 0 } else { user };
        let eh = EncHeader { user, destined: d, tx_key: tx, rx_key_active: rx, keepalive: k, master: m, rx_nokey: n,
                             seqno: seq, sender: if long { Sender::Id(id) } else { Sender::Addr(addr) } };
        let mut buf = vec![0u8; eh.len() + 20];
        eh.write(&mut buf).expect("write");
        prop_assert_eq!(EncHeader::parse(&buf).expect("parse"), eh);
    }

    /// Whatever message is sealed opens to itself (with its pad).
    #[test]
    fn seal_open_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300), dest in proptest::option::of(Just(B))) {
        let mut a = node("crypto-a", A, 1);
        let mut b = node("crypto-b", B, 2);
        a.set_key(Instant::ZERO, K1.parse().expect("K1"));
        b.set_key(Instant::ZERO, K1.parse().expect("K1"));
        let m = int_msg(0, 0, A, B, &data);
        for f in one(&mut a, &m, dest) {
            prop_assert_eq!(f.len() % 4, 0);
            let o = b.decrypt(Instant::ZERO, f.clone(), known(A)).expect("opens");
            prop_assert_eq!(&o[..], &m[..]);
        }
    }
}

/// Exchanges one STATE each way between `a` (at A) and `b` (at B) at `now`,
/// every frame delivered; returns the frames a sent.
fn states(a: &mut Crypto, b: &mut Crypto, now: Instant) -> Vec<bytes::Bytes> {
    let sa = one(a, &int_msg(7, 0, A, B, &[]), Some(B));
    for f in &sa {
        let _ = b.decrypt(now, f.clone(), known(A));
    }
    for f in one(b, &int_msg(7, 0, B, A, &[]), Some(A)) {
        let _ = a.decrypt(now, f, known(B));
    }
    sa
}

/// `turns` turns of 250 ms: `a`'s timers (and `b`'s when `b_too`), then
/// a STATE each way ([`states`]).
fn quiet_turns(a: &mut Crypto, b: &mut Crypto, t: &mut Instant, turns: usize, b_too: bool) {
    for _ in 0..turns {
        *t += tipc_wire::Duration::from_millis(250);
        a.handle_timeout(*t);
        if b_too {
            b.handle_timeout(*t);
        }
        states(a, b, *t);
    }
}

fn tx_key_of(f: &bytes::Bytes) -> u8 {
    EncHeader::parse(f).expect("ehdr").tx_key
}

/// A cluster key alone (no master): the very first frame to a peer, and a
/// data frame, go with it; the counters count what was sealed.
#[test]
fn a_cluster_key_alone_carries_the_first_frames() {
    let mut a = node("crypto-a", A, 1);
    let mut b = node("crypto-b", B, 2);
    let k = "0x606162636465666768696a6b6c6d6e6f70717273";
    a.set_key(Instant::ZERO, k.parse().expect("key"));
    b.set_key(Instant::ZERO, k.parse().expect("key"));
    let data = int_msg(0, 0, A, B, b"first");
    let out = one(&mut a, &data, Some(B));
    assert_eq!(out.len(), 1, "data is never probed");
    assert_eq!(tx_key_of(&out[0]), 1);
    assert_eq!(&b.decrypt(Instant::ZERO, out[0].clone(), known(A)).expect("opens")[..], &data[..]);
    let bc = one(&mut a, &int_msg(0, 0, A, 0, b"all"), None);
    assert_eq!(bc.len(), 1);
    assert_eq!(tx_key_of(&bc[0]), 1, "the broadcast link too: no master key to fall back on");
    assert_eq!(a.stats().tx_encrypted, 2);
    assert_eq!(a.stats().tx_no_key, 0);
    // a node with no usable key sends nothing, and counts it
    let mut c = node("crypto-c", 0x171d_5413, 3);
    c.set_key(Instant::ZERO, format!("{k} nodeid crypto-a").parse().expect("key"));
    assert!(one(&mut c, &data, Some(A)).is_empty());
    assert_eq!(c.stats().tx_no_key, 1);
}

/// The broadcast link stays on the master key until every peer reads our
/// session key, then takes it.
#[test]
fn the_broadcast_link_switches_once_every_peer_reads_the_key() {
    let mut a = node("crypto-a", A, 1);
    let mut b = node("crypto-b", B, 2);
    let t0 = Instant::ZERO;
    a.set_key(t0, K1.parse().expect("K1"));
    b.set_key(t0, K1.parse().expect("K1"));
    carry_keys(&mut a, A, &mut b, t0);
    carry_keys(&mut b, B, &mut a, t0);
    let bcast = int_msg(0, 0, A, 0, b"all");
    assert_eq!(tx_key_of(&one(&mut a, &bcast, None)[0]), 0, "no peer reads key 1 yet");
    states(&mut a, &mut b, t0);
    states(&mut a, &mut b, t0);
    assert_eq!(a.peer_slots(B).0, 1);
    // a third node is known that reads nothing of ours: still master
    let c_frame = {
        let mut c = node("crypto-c", 0x171d_5413, 3);
        c.set_key(t0, K1.parse().expect("K1"));
        one(&mut c, &int_msg(7, 0, 0x171d_5413, A, &[]), Some(A)).pop().expect("frame")
    };
    a.decrypt(t0, c_frame, known(0x171d_5413)).expect("c's master frame");
    let t = t0 + crate::crypto::TX_SWITCH_DELAY;
    a.handle_timeout(t);
    assert_eq!(a.stats().tx_active, 1);
    let out = one(&mut a, &bcast, None);
    assert_eq!(tx_key_of(&out[0]), 1, "b reads key 1, c reads none of ours (0 counts as not in the way)");
    a.peer_down(t, B);
    assert_eq!(tx_key_of(&one(&mut a, &bcast, None)[0]), 0, "nobody reads key 1 any more: master");
}

/// Two rollovers in a row: the old key is kept passive and still opens a
/// late frame; 15 s after its last use it is freed; our old transmit key
/// is freed at the switch, the newer kept.
#[test]
fn passive_keys_open_late_frames_then_go() {
    let mut a = node("crypto-a", A, 1);
    let mut b = node("crypto-b", B, 2);
    let mut t = Instant::ZERO;
    a.set_key(t, K1.parse().expect("K1"));
    b.set_key(t, K1.parse().expect("K1"));
    let step = tipc_wire::Duration::from_millis(250);
    let mut late = None;
    for round in 0..3 {
        carry_keys(&mut a, A, &mut b, t);
        carry_keys(&mut b, B, &mut a, t);
        quiet_turns(&mut a, &mut b, &mut t, 48, true);
        assert_eq!(a.stats().tx_active, round + 1, "round {round}");
        assert_eq!(b.stats().rx_keys_activated, u64::from(round) + 1, "round {round}");
        if round == 1 {
            late = Some(one(&mut a, &int_msg(0, 0, A, B, b"late"), Some(B)).pop().expect("frame"));
            assert_eq!(tx_key_of(late.as_ref().expect("late")), 2);
        }
        if round < 2 {
            assert!(a.rekey(t));
            assert!(!a.rekey(t), "no second new key while one is pending");
        }
    }
    assert_eq!(b.peer_slots(A).1, 3, "slots 1, 2, 3 in turn");
    let late = late.expect("late");
    assert!(b.decrypt(t, late.clone(), known(A)).is_ok(), "the passive key opens a late frame");
    // 15 s with traffic under the active key: the passive one goes
    for _ in 0..61 {
        t += step;
        b.handle_timeout(t);
        let g = one(&mut a, &int_msg(0, 0, A, B, b"now"), Some(B)).pop().expect("frame");
        b.decrypt(t, g, known(A)).expect("the active key opens");
    }
    let g = one(&mut a, &int_msg(0, 0, A, B, b"after"), Some(B)).pop().expect("frame");
    assert_eq!(tx_key_of(&g), 3);
    assert!(b.decrypt(t, g, known(A)).is_ok());
    // key 1 of a is gone at b: a frame under it names an empty slot
    let mut stale = late.to_vec();
    stale[11] ^= 0x40; // another sequence number (not a replay)
    assert_eq!(b.decrypt(t, stale.into(), known(A)).map(|_| ()).unwrap_err(), DropReason::UnknownKey);
}

/// A peer's key arrives for the slot we guessed; the peer uses another:
/// the pending key moves there (realign) and opens the frame. A pending key
/// that fails ten times is dropped.
#[test]
fn a_pending_key_realigns_and_failing_ones_are_dropped() {
    let mut a = node("crypto-a", A, 1);
    let mut b = node("crypto-b", B, 2);
    let t = Instant::ZERO;
    a.set_key(t, K1.parse().expect("K1"));
    b.set_key(t, K1.parse().expect("K1"));
    // a's key 1 reaches b, but a renumbers: a frame under slot 2 with that key
    let (_, m) = a.poll_key_msg().expect("key message");
    let kd = KeyDistr::parse(&m).expect("parse");
    let f = one(&mut a, &int_msg(7, 0, A, B, &[]), Some(B)).remove(0);
    let mut moved = f.to_vec();
    moved[1] = (moved[1] & 0x3f) | 0x80; // tx_key 2, same key
    // re-seal under slot 2 so the tag matches the changed header
    let eh = EncHeader::parse(&moved).expect("ehdr");
    let body_len = moved.len() - eh.len() - 16;
    let mut plain = open_with(&kd.key, KeyMode::PerNode, &f, B).expect("opens");
    let n = crate::crypto::nonce(&kd.key, KeyMode::PerNode, &eh, B);
    let tag = Cipher::new(&kd.key).seal(&n, &moved[..eh.len()], &mut plain);
    moved[eh.len()..eh.len() + body_len].copy_from_slice(&plain);
    let at = moved.len() - 16;
    moved[at..].copy_from_slice(&tag);
    for f in one(&mut a, &m, None) {
        let o = b.decrypt(t, f, known(A)).expect("key message");
        b.receive_key_msg(A, &o, true).expect("taken");
    }
    assert!(b.decrypt(t, moved.into(), known(A)).is_ok(), "realigned to slot 2");
    assert_eq!(b.peer_slots(A).1, 2);

    // a pending key that never fits is dropped after ten failures
    let mut c = node("crypto-c", 0x171d_5413, 3);
    c.set_key(t, K1.parse().expect("K1"));
    let wrong =
        KeyDistr { generation: 7, mode: KeyMode::PerNode, key: AeadKey::new(&[9; 20]).expect("key"), dest: 0 }.build(A);
    c.receive_key_msg(A, &wrong, true).expect("taken");
    let mut a2 = node("crypto-a", A, 1);
    a2.set_key(t, K1.parse().expect("K1"));
    let frames: Vec<_> =
        (0..12).map(|_| one(&mut a2, &int_msg(7, 0, A, 0x171d_5413, &[]), Some(0x171d_5413)).remove(0)).collect();
    let reasons: Vec<DropReason> =
        frames.into_iter().map(|f| c.decrypt(t, f, known(A)).map(|_| ()).unwrap_err()).collect();
    assert_eq!(&reasons[..10], &[DropReason::BadTag; 10]);
    assert_eq!(reasons[10], DropReason::UnknownKey, "dropped after ten failures");
}

/// A frame under a key we lack sets N in our frames to its sender; the
/// sender, seeing N, sends its key by unicast after 0.5–2.5 s, and N goes.
#[test]
fn a_missing_key_is_asked_for_and_sent() {
    let mut a = node("crypto-a", A, 1);
    let mut b = node("crypto-b", B, 2);
    let mut t = Instant::ZERO;
    a.set_key(t, K1.parse().expect("K1"));
    b.set_key(t, K1.parse().expect("K1"));
    let _ = a.poll_key_msg(); // lost: b never gets a's key
    let _ = b.poll_key_msg();
    let probe = one(&mut a, &int_msg(7, 0, A, B, &[]), Some(B)).remove(0);
    assert_eq!(tx_key_of(&probe), 1);
    assert_eq!(b.decrypt(t, probe, known(A)).map(|_| ()).unwrap_err(), DropReason::UnknownKey);
    let f = one(&mut b, &int_msg(7, 0, B, A, &[]), Some(A)).pop().expect("frame");
    assert!(EncHeader::parse(&f).expect("ehdr").rx_nokey, "b says it lacks a's key");
    a.decrypt(t, f, known(B)).expect("opens");
    assert!(a.poll_key_msg().is_none(), "not at once");
    let step = tipc_wire::Duration::from_millis(250);
    let mut sent = None;
    for i in 0..12 {
        t += step;
        a.handle_timeout(t);
        if let Some((dest, m)) = a.poll_key_msg() {
            sent = Some((i, dest, m));
            break;
        }
    }
    let (i, dest, m) = sent.expect("a unicast KEY_DISTR within 3 s");
    assert_eq!(a.stats().key_msgs_sent, 2, "the broadcast one at the start, and this");
    assert!(i >= 1, "after a delay of at least 0.5 s");
    assert_eq!(dest, B);
    // b asks again at once (the key is on its way): no second one within 5 s
    let f = one(&mut b, &int_msg(7, 0, B, A, &[]), Some(A)).pop().expect("frame");
    a.decrypt(t, f, known(B)).expect("opens");
    let t_resend = t;
    while t < t_resend + tipc_wire::Duration::from_millis(4500) {
        t += step;
        a.handle_timeout(t);
        assert!(a.poll_key_msg().is_none(), "resent before 5 s");
    }
    for f in one(&mut a, &m, Some(B)) {
        let o = b.decrypt(t, f, known(A)).expect("opens");
        b.receive_key_msg(A, &o, true).expect("taken");
    }
    let f = one(&mut b, &int_msg(7, 0, B, A, &[]), Some(A)).pop().expect("frame");
    assert!(!EncHeader::parse(&f).expect("ehdr").rx_nokey, "N cleared");
    // a key message for another node, or malformed, is refused and counted
    let other = KeyDistr {
        generation: 9,
        mode: KeyMode::PerNode,
        key: AeadKey::new(&[1; 20]).expect("key"),
        dest: 0x0102_0304,
    }
    .build(A);
    assert!(b.receive_key_msg(A, &other, true).is_err());
    assert!(b.receive_key_msg(A, &other[..50], true).is_err());
    assert_eq!(b.stats().key_msgs_refused, 2);
}

/// Rekeying on an interval, and the TX switch waits for the peers: not
/// while one still reads the old key, and not before 10 s.
#[test]
fn rekey_interval_and_the_switch_waits_for_the_peers() {
    let mut a = node("crypto-a", A, 1);
    let mut b = node("crypto-b", B, 2);
    let mut t = Instant::ZERO;
    a.set_key(t, K1.parse().expect("K1"));
    b.set_key(t, K1.parse().expect("K1"));
    a.set_rekey_interval(t, Some(tipc_wire::Duration::from_secs(30)));
    carry_keys(&mut a, A, &mut b, t);
    carry_keys(&mut b, B, &mut a, t);
    let step = tipc_wire::Duration::from_millis(250);
    quiet_turns(&mut a, &mut b, &mut t, 39, true);
    assert_eq!(a.stats().tx_active, 0, "not before 10 s after b began reading it");
    quiet_turns(&mut a, &mut b, &mut t, 4, false);
    assert_eq!(a.stats().tx_active, 1);
    assert_eq!(a.stats().rekeys, 1);
    while t < Instant::ZERO + tipc_wire::Duration::from_secs(30) {
        t += step;
        a.handle_timeout(t);
    }
    assert_eq!(a.stats().rekeys, 2, "the interval made a second key");
    assert_eq!(a.stats().tx_pending, 2);
    // b never hears of it: it reads key 1 still, so a keeps key 1 active
    for _ in 0..80 {
        t += step;
        a.handle_timeout(t);
        b.handle_timeout(t);
        let _ = a.poll_key_msg();
        states(&mut a, &mut b, t);
    }
    assert_eq!(b.peer_slots(A).1, 1);
    assert_eq!(a.stats().tx_active, 1, "no switch while b reads the old key");
}

/// What the header says of each kind of message (net/tipc/crypto.c
/// `tipc_ehdr_build`): user 13 and the long form for LINK_CONFIG, 7 for a
/// STATE (with K copied from its keepalive bit), 0 for RESET, data and key
/// messages; D for a destination; M for a master key; the frame is the padded
/// message plus the header and tag.
#[test]
fn the_header_describes_each_kind_of_message() {
    let mut a = node("crypto-a", A, 1);
    a.set_key(Instant::ZERO, K1.parse().expect("K1"));
    let _ = a.poll_key_msg();
    let last = |a: &mut Crypto, m: &[u8], d: Option<u32>| {
        let f = one(a, m, d).pop().expect("frame");
        assert_eq!(f.len(), m.len().next_multiple_of(4) + EncHeader::parse(&f).expect("ehdr").len() + 16);
        EncHeader::parse(&f).expect("ehdr")
    };
    let cfg = last(&mut a, &int_msg(13, 1, A, 0, &[0; 36]), None);
    assert_eq!((cfg.user, cfg.destined, cfg.tx_key, cfg.master, cfg.len()), (13, false, 0, true, 28));
    let mut state = int_msg(7, 0, A, B, &[]);
    let s = last(&mut a, &state, Some(B));
    assert_eq!((s.user, s.destined, s.keepalive, s.len()), (7, true, false, 16));
    let f = one(&mut a, &state, Some(B)).pop().expect("frame");
    assert_eq!(f.len() - state.len(), crate::OVERHEAD, "what the link keeps free: short header and tag");
    state[1] |= 0x08; // keepalive (w0 bit 19)
    assert!(last(&mut a, &state, Some(B)).keepalive);
    let reset = last(&mut a, &int_msg(7, 1, A, B, &[]), Some(B));
    assert_eq!((reset.user, reset.keepalive), (0, false));
    let mut data = int_msg(0, 0, A, B, b"odd-size");
    data[1] |= 0x08; // the same bit of a data message is no keepalive
    let d = last(&mut a, &data, Some(B));
    assert_eq!((d.user, d.keepalive, d.destined), (0, false, true));
    let key =
        KeyDistr { generation: 3, mode: KeyMode::PerNode, key: AeadKey::new(&[5; 36]).expect("key"), dest: 0 }.build(A);
    let k = last(&mut a, &key, None);
    assert_eq!((k.user, k.tx_key, k.destined), (0, 0, false));
    // the header refuses what does not fit its bits
    let mut buf = [0u8; 28];
    for bad in [
        EncHeader { user: 16, ..s },
        EncHeader { tx_key: 4, ..s },
        EncHeader { rx_key_active: 4, ..s },
        EncHeader { seqno: 0, ..s },
        EncHeader { user: 13, ..s },
    ] {
        assert!(bad.write(&mut buf).is_err(), "{bad:?}");
    }
    assert!(s.write(&mut buf[..15]).is_err());
}

/// Writes a message's length into its size field (w0 bits 0–16).
fn set_size(m: &mut [u8]) {
    let w0 = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
    let w = (w0 & !0x1_ffff) | m.len() as u32;
    m[..4].copy_from_slice(&w.to_be_bytes());
}

/// KEY_DISTR: built and parsed back the same, every size of key; refused
/// when its header, type, lengths or mode are wrong.
#[test]
fn key_messages_round_trip_and_bad_ones_are_refused() {
    for len in [20, 28, 36] {
        let key = AeadKey::new(&(0..len as u8).collect::<Vec<u8>>()).expect("key");
        for mode in [KeyMode::Cluster, KeyMode::PerNode] {
            let kd = KeyDistr { generation: 0xbeef, mode, key: key.clone(), dest: B };
            let m = kd.build(A);
            assert_eq!(m.len(), 40 + 36 + len);
            assert_eq!(KeyDistr::parse(&m).expect("parse"), kd);
        }
    }
    let good = KeyDistr { generation: 1, mode: KeyMode::PerNode, key: AeadKey::new(&[1; 20]).expect("key"), dest: 0 }
        .build(A)
        .to_vec();
    let bad = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut m = good.clone();
        f(&mut m);
        KeyDistr::parse(&m)
    };
    assert!(bad(&|m| m[0] = (m[0] & !0x1e) | (13 << 1)).is_err(), "another user");
    assert!(bad(&|m| m[1] = (m[1] & !0xe0) | (9 << 5 & 0xe0)).is_err(), "another header size");
    assert!(bad(&|m| m[4] |= 0x20).is_err(), "another type");
    assert!(bad(&|m| m[19] = 3).is_err(), "an unknown mode");
    assert!(bad(&|m| m[40] = b'x').is_err(), "another algorithm");
    assert!(bad(&|m| m[75] = 21).is_err(), "the key length disagrees");
    assert!(bad(&|m| m.truncate(60)).is_err(), "too short");
    assert!(
        bad(&|m| {
            m.extend([0u8; 20]);
            set_size(m);
        })
        .is_err(),
        "longer than any key"
    );
    assert!(
        bad(&|m| {
            m.truncate(40 + 36 + 16);
            m[75] = 16;
            set_size(m);
        })
        .is_err(),
        "shorter than any key"
    );
    // a repeat of a key already taken changes nothing
    let mut b = node("crypto-b", B, 2);
    b.set_key(Instant::ZERO, K1.parse().expect("K1"));
    b.receive_key_msg(A, &good, true).expect("taken");
    b.receive_key_msg(A, &good, true).expect("a repeat is no error");
    assert_eq!(b.stats().key_msgs_received, 1, "a repeat is not taken twice");
}

/// Flushing keys turns encryption off; a zero interval is no rekeying;
/// `nodeid` takes 32 hex digits as well as text.
#[test]
fn flush_zero_interval_and_hex_identities() {
    let mut a = node("crypto-a", A, 1);
    let t = Instant::ZERO;
    a.set_key(t, K1.parse().expect("K1"));
    a.set_rekey_interval(t, Some(tipc_wire::Duration::ZERO));
    a.handle_timeout(t + tipc_wire::Duration::from_secs(60));
    assert_eq!(a.stats().rekeys, 1, "only the first session key");
    assert!(a.is_on() && a.poll_timeout().is_some());
    a.flush();
    assert!(!a.is_on() && a.poll_timeout().is_none());
    assert!(one(&mut a, &int_msg(0, 0, A, B, b"x"), Some(B)).is_empty(), "nothing to seal with");
    let s: KeySpec =
        "0x000102030405060708090a0b0c0d0e0f10111213 nodeid 63727970746f2d610000000000000000".parse().expect("hex id");
    assert_eq!(s.role, KeyRole::Node(NodeId::from_text("crypto-a").expect("id")));
    assert!("0x000102030405060708090a0b0c0d0e0f10111213 master nodeid x".parse::<KeySpec>().is_err());
    assert!("0x000102030405060708090a0b0c0d0e0f10111213 nodeid x master".parse::<KeySpec>().is_err());
}

/// A reader of our old key going away is a change of readers: the switch
/// to the new key waits its 10 s from then, not from the last change
/// before.
#[test]
fn a_peer_going_down_restarts_the_quiet_period() {
    const C: u32 = 0x171d_5413;
    let mut a = node("crypto-a", A, 1);
    let mut b = node("crypto-b", B, 2);
    let mut t = Instant::ZERO;
    a.set_key(t, K1.parse().expect("K1"));
    b.set_key(t, K1.parse().expect("K1"));
    let mut c = node("crypto-c", C, 3);
    c.set_key(t, K1.parse().expect("K1"));
    // a's first key to both b and c
    let msgs: Vec<_> = std::iter::from_fn(|| a.poll_key_msg()).collect();
    for (_, m) in msgs {
        for f in one(&mut a, &m, None) {
            for to in [&mut b, &mut c] {
                let o = to.decrypt(t, f.clone(), known(A)).expect("key message opens");
                to.receive_key_msg(A, &o, true).expect("key taken");
            }
        }
    }
    let step = tipc_wire::Duration::from_millis(250);
    for _ in 0..48 {
        t += step;
        a.handle_timeout(t);
        states(&mut a, &mut b, t);
        for f in one(&mut a, &int_msg(7, 0, A, C, &[]), Some(C)) {
            let _ = c.decrypt(t, f, known(A));
        }
        for f in one(&mut c, &int_msg(7, 0, C, A, &[]), Some(A)) {
            let _ = a.decrypt(t, f, known(C));
        }
    }
    assert_eq!(a.stats().tx_active, 1);
    assert!(a.rekey(t));
    carry_keys(&mut a, A, &mut b, t);
    // b takes key 2 at once; c never hears of it and still reads key 1
    quiet_turns(&mut a, &mut b, &mut t, 36, false);
    assert_eq!(a.stats().tx_active, 1, "c still reads key 1");
    // 9 s after b's switch, c goes down: the switch waits 10 s more
    a.peer_down(t, C);
    quiet_turns(&mut a, &mut b, &mut t, 36, false);
    assert_eq!(a.stats().tx_active, 1, "not before 10 s after the readers changed");
    quiet_turns(&mut a, &mut b, &mut t, 8, false);
    assert_eq!(a.stats().tx_active, 2);
}
