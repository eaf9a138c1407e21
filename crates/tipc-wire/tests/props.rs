//! Property tests: every representation round-trips, and no input — random
//! bytes or mutated real frames — makes a parser panic.

use bytes::Bytes;
use proptest::prelude::*;
use tipc_wire::strategy;
use tipc_wire::*;

/// At least 10 000 cases per parser, as CI requires; `PROPTEST_CASES` raises it.
fn cfg() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn round_trip(m: &Msg) -> Result<(), TestCaseError> {
    let bytes = m.to_bytes().map_err(|e| TestCaseError::fail(format!("emit: {e}")))?;
    prop_assert_eq!(bytes.len(), m.buffer_len());
    if let Msg::Data(d) = m {
        // a data message writes every byte (its encoding skips zeroing the
        // buffer first): emitting it over garbage gives the same bytes
        let mut dirty = vec![0xa5u8; d.buffer_len()];
        d.emit(&mut dirty).map_err(|e| TestCaseError::fail(format!("emit: {e}")))?;
        prop_assert_eq!(&dirty[..], &bytes[..]);
    }
    let back = Msg::parse(bytes.clone()).map_err(|e| TestCaseError::fail(format!("parse: {e} for {m}")))?;
    prop_assert_eq!(&back, m);
    // trailing padding (as a NIC adds) changes nothing
    let mut padded = bytes.to_vec();
    padded.resize(bytes.len().max(60) + 3, 0);
    prop_assert_eq!(&Msg::parse(Bytes::from(padded)).map_err(|e| TestCaseError::fail(e.to_string()))?, m);
    Ok(())
}

fn no_panic(b: &[u8]) {
    let bytes = Bytes::copy_from_slice(b);
    if let Ok(m) = Msg::parse(bytes.clone()) {
        let _ = m.to_string();
        let _ = m.to_bytes();
        if let Msg::Bundle(bm) = &m {
            for inner in bm.iter().flatten() {
                let _ = Msg::parse(inner);
            }
        }
        if let Msg::LinkProto(l) = &m {
            let _ = GapAckRecord::parse(&l.payload);
            let _ = l.if_name();
        }
    }
    if let Ok(h) = Header::new_checked(bytes.clone()) {
        let _ = (h.user(), h.orig_node(), h.dest_node(), h.payload(), h.word(20));
    }
    let _ = EthFrame::parse(bytes.clone());
    let _ = GapAckRecord::parse(b);
    for inner in BundleIter::new(bytes) {
        if inner.is_err() {
            break;
        }
    }
}

/// Frames worth mutating: a few real kernel frames of every user.
fn seed_frames() -> Vec<Vec<u8>> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/captures");
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("captures at {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    entries.sort();
    for p in entries {
        for f in pcap::read_pcap_file(&p).expect("pcap") {
            if let Ok(e) = EthFrame::parse_tipc(f.data) {
                out.push(e.payload.to_vec());
            }
        }
    }
    assert!(out.len() > 600);
    out
}

proptest! {
    #![proptest_config(cfg())]

    #[test] fn data_round_trips(m in strategy::data_msg()) { round_trip(&Msg::Data(m))?; }
    #[test] fn link_proto_round_trips(m in strategy::link_proto_msg()) { round_trip(&Msg::LinkProto(m))?; }
    #[test] fn bcast_proto_round_trips(m in strategy::bcast_proto_msg()) { round_trip(&Msg::BcastProto(m))?; }
    #[test] fn bundle_round_trips(m in strategy::bundle_msg()) { round_trip(&Msg::Bundle(m))?; }
    #[test] fn fragment_msg_round_trips(m in strategy::fragment_msg()) { round_trip(&Msg::Fragment(m))?; }
    #[test] fn name_distr_round_trips(m in strategy::name_distr_msg()) { round_trip(&Msg::NameDistr(m))?; }
    #[test] fn group_proto_round_trips(m in strategy::group_proto_msg()) { round_trip(&Msg::GroupProto(m))?; }
    #[test] fn conn_mgr_round_trips(m in strategy::conn_mgr_msg()) { round_trip(&Msg::ConnMgr(m))?; }
    #[test] fn tunnel_round_trips(m in strategy::tunnel_msg()) { round_trip(&Msg::Tunnel(m))?; }
    #[test] fn discovery_round_trips(m in strategy::discovery_msg()) { round_trip(&Msg::Discovery(m))?; }
    #[test] fn raw_round_trips(m in strategy::raw_msg()) { round_trip(&Msg::Raw(m))?; }

    #[test]
    fn gap_ack_round_trips(b in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..64),
                           u in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..64)) {
        let blk = |v: Vec<(u16, u16)>| v.into_iter().map(|(a, g)| GapAckBlock { ack: SeqNo(a), gap: g }).collect();
        let r = GapAckRecord { bcast: blk(b), ucast: blk(u) };
        let bytes = r.to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(GapAckRecord::parse(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?, (r, bytes.len()));
    }

    #[test]
    fn bundles_built_are_read_back(msgs in proptest::collection::vec(strategy::data_msg(), 1..40)) {
        let mut b = BundleBuilder::new(IntHdr::default(), 1500);
        let mut added = Vec::new();
        for m in &msgs {
            let enc = Msg::Data(m.clone()).to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?;
            if b.push(&enc, m.importance) { added.push(enc); } else { break; }
        }
        let bundle = b.finish();
        prop_assert!(bundle.buffer_len() <= 1500);
        let wire = Msg::Bundle(bundle).to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Ok(Msg::Bundle(back)) = Msg::parse(wire) else { return Err(TestCaseError::fail("not a bundle")) };
        let inner: Vec<Bytes> = back.iter().collect::<Result<_, _>>().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(inner, added);
    }

    #[test]
    fn fragments_reassemble(len in 1usize..=66_000, mtu in 100usize..=9000, seed: u8) {
        let mut m = DataMsg::new(DataType::Direct, Bytes::from((0..len).map(|i| (i as u8) ^ seed).collect::<Vec<u8>>()));
        m.dest_port = PortId(7);
        let whole = Msg::Data(m).to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?;
        if whole.len() <= mtu - INT_H_SIZE {
            prop_assert!(fragment(&whole, mtu, IntHdr::default(), Importance::Low).is_err());
            return Ok(());
        }
        let frags = fragment(&whole, mtu, IntHdr::default(), Importance::Low).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut r = Reassembler::new();
        let mut out = None;
        for (i, f) in frags.iter().enumerate() {
            prop_assert!(f.buffer_len() <= mtu);
            let wire = Msg::Fragment(f.clone()).to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let Ok(Msg::Fragment(back)) = Msg::parse(wire) else { return Err(TestCaseError::fail("not a fragment")) };
            match r.push(&back).map_err(|e| TestCaseError::fail(e.to_string()))? {
                Reassembly::Complete(b) => { prop_assert_eq!(i + 1, frags.len()); out = Some(b); }
                Reassembly::Pending => prop_assert!(i + 1 < frags.len()),
            }
        }
        prop_assert_eq!(out, Some(whole));
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..2000)) {
        no_panic(&b);
    }

    #[test]
    fn arbitrary_bytes_with_a_valid_word0_never_panic(user in 0u8..16, hw in 0u32..16, size in 0u32..2100,
                                                      flags in 0u32..16, rest in proptest::collection::vec(any::<u8>(), 0..2100)) {
        let w0 = (2u32 << 29) | (u32::from(user) << 25) | (hw << 21) | (flags << 17) | size;
        let mut b = w0.to_be_bytes().to_vec();
        b.extend_from_slice(&rest);
        no_panic(&b);
    }

    #[test]
    fn reassembler_never_panics(frags in proptest::collection::vec(strategy::fragment_msg(), 0..30)) {
        let mut r = Reassembler::new();
        for f in &frags {
            let _ = r.push(f);
            prop_assert!(r.held() <= MAX_MSG_SIZE);
        }
    }
}

#[test]
fn mutated_captured_frames_never_panic() {
    let seeds = seed_frames();
    let cases: u32 = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let n = seeds.len();
    let strat = (
        0..n,
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        prop_oneof![Just(None), (0usize..2000).prop_map(Some)],
        proptest::collection::vec(any::<u8>(), 0..8),
    );
    runner
        .run(&strat, |(i, flips, cut, tail)| {
            let mut b = seeds[i].clone();
            for (idx, v) in flips {
                let k = idx.index(b.len());
                b[k] ^= v;
            }
            if let Some(c) = cut {
                b.truncate(c);
            }
            b.extend_from_slice(&tail);
            no_panic(&b);
            Ok(())
        })
        .expect("no panic on mutated frames");
}

/// Random bytes behind a *consistent* header — version 2, a user that
/// exists, a header size that user has, the size field equal to the real
/// length — so that most inputs get past the header checks and into the
/// per-user parsers (plain random bytes almost never do). Nothing may
/// panic, and the run asserts how many inputs the parsers took.
#[test]
fn random_bodies_behind_consistent_headers_reach_the_parsers() {
    let cases: u32 = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    // (user, header words it may have)
    let shapes: [(u8, &[u32]); 11] = [
        (0, &[6, 8, 10, 11]),
        (1, &[6, 8, 10, 11]),
        (2, &[6, 8, 10, 11]),
        (3, &[6, 8, 10, 11]),
        (5, &[10]),
        (6, &[10]),
        (7, &[10]),
        (8, &[10]),
        (9, &[10]),
        (11, &[10]),
        (12, &[10]),
    ];
    let parsed = std::cell::Cell::new(0u32);
    let strat = (
        0..shapes.len(),
        any::<prop::sample::Index>(),
        0u32..16,
        proptest::collection::vec(any::<u8>(), 0..1500),
        proptest::collection::vec(any::<u8>(), 60),
    );
    runner
        .run(&strat, |(s, hw_ix, flags, body, head)| {
            let (user, hws) = shapes[s];
            let hw = hws[hw_ix.index(hws.len())];
            let hsize = hw as usize * 4;
            // header words 1.. random, body random, word 0 consistent
            let mut b = head[..hsize].to_vec();
            b.extend_from_slice(&body);
            let size = b.len() as u32;
            let w0 = (2u32 << 29) | (u32::from(user) << 25) | (hw << 21) | ((flags & 0b1011) << 17) | size;
            b[..4].copy_from_slice(&w0.to_be_bytes());
            if Msg::parse(Bytes::from(b.clone())).is_ok() {
                parsed.set(parsed.get() + 1);
            }
            no_panic(&b);
            Ok(())
        })
        .expect("no panic");
    let p = parsed.get();
    eprintln!("{p} of {cases} random bodies behind consistent headers parsed");
    assert!(p * 4 >= cases, "only {p} of {cases} inputs reached past the parsers' first checks");
}
