//! Reliability promises on the simulator: hostile input never breaks a
//! running group, failures are detected within the tolerance, and
//! duplicated / reordered group ACKs cannot freeze broadcasts
//! (the kernel's duplicate-GRP_ACK bug, CVE-2026-31662).
#![allow(clippy::needless_range_loop)]

mod common;

use bytes::Bytes;
use tipc_rs::fault::{FaultConfig, Rng};
use tipc_rs::sim::SimNet;
use tipc_rs::wire::{Duration, Instance, MacAddr, MemberId, PortId, ServiceType};
use tipc_rs::{CoreEvent, Dest, Error, GroupEvent, GroupSpec, Mode, Scope, SendOpts};

fn group(net: &mut SimNet, n: usize) -> Vec<(PortId, MemberId)> {
    group_of(net, n, n)
}

/// `n` nodes, of which the first `members` join the group.
fn group_of(net: &mut SimNet, n: usize, members: usize) -> Vec<(PortId, MemberId)> {
    let ix = net.add_nodes(n);
    assert!(net.run_while(Duration::from_secs(20), |s| ix.iter().any(|&i| s.core(i).link().up_nodes().len() + 1 < n)));
    let mut v = Vec::new();
    for i in 0..members {
        let p = net.with(i, |c, _| c.open_port());
        let spec = GroupSpec {
            stype: ServiceType(6000),
            instance: Instance(i as u32),
            scope: Scope::Cluster,
            loopback: false,
            member_events: true,
        };
        net.with(i, |c, _| c.group_join(p, spec)).expect("join");
        v.push((p, MemberId { node: net.core(i).address().expect("addr"), port: p }));
    }
    net.run_for(Duration::from_secs(1));
    v
}

/// Reads every group message at every node (opening windows); returns (node, from, seq) triples.
fn read_all(net: &mut SimNet, ids: &[(PortId, MemberId)]) -> Vec<(usize, MemberId, u64)> {
    let mut out = Vec::new();
    for node in 0..net.len() {
        for (_, ev) in net.take_events(node) {
            if let CoreEvent::Group { port, event: GroupEvent::Message { from, data, .. } } = ev {
                let (f, l) = (from, data.len());
                net.with(node, |c, _| c.group_consumed(port, f, l));
                if data.len() >= 8 {
                    out.push((node, from, u64::from_be_bytes(data[..8].try_into().expect("8"))));
                }
            }
        }
    }
    let _ = ids;
    out
}

/// Node 0 sends `n` messages alternating unicast (to member 1) and broadcast,
/// so every broadcast asks for acknowledgements; checks exactly-once order
/// at every other member: member 1 gets all `n`, the others every broadcast.
fn stream(net: &mut SimNet, ids: &[(PortId, MemberId)], n: u64, mut between: impl FnMut(&mut SimNet)) {
    // per member (index in `ids`): the next sequence number it must get
    let mut next: Vec<u64> = (0..ids.len()).map(|r| if r == 1 { 0 } else { 1 }).collect();
    let want = |r: usize| if r == 1 { n } else { n + 1 - (n % 2) };
    let done = |next: &[u64]| (1..ids.len()).all(|r| next[r] >= want(r));
    let mut k = 0u64;
    let end = net.now() + Duration::from_secs(300);
    while k < n || !done(&next) {
        if k < n {
            let mode = if k % 2 == 0 { Mode::Unicast } else { Mode::Broadcast };
            let data = Bytes::from(k.to_be_bytes().to_vec());
            let (p0, to) = (ids[0].0, ids[1].1);
            match net.with(0, |c, now| {
                c.send(now, p0, Dest::group(mode, Some(to), Instance(0)).expect("member"), data, SendOpts::default())
            }) {
                Ok(()) => k += 1,
                Err(Error::WouldBlock(_)) => {}
                Err(e) => panic!("seed {}: {e}", net.seed()),
            }
        }
        between(net);
        let t = net.now() + Duration::from_micros(500);
        net.run_until(t);
        for (node, from, seq) in read_all(net, ids) {
            let Some(r) = ids.iter().position(|(_, m)| m.node == net.core(node).address().unwrap_or_default()) else {
                continue;
            };
            if from == ids[0].1 && r > 0 {
                assert_eq!(seq, next[r], "seed {}: member {r} lost or reordered", net.seed());
                next[r] += if r == 1 { 1 } else { 2 };
            }
        }
        assert!(net.now() < end, "seed {}: broadcasts froze at {k} sent, received {next:?}", net.seed());
    }
}

#[test]
fn duplicated_and_reordered_group_acks_never_freeze_broadcasts() {
    let mut net = SimNet::new(0x0c7e_3166);
    let ids = group(&mut net, 3);
    // every third frame duplicated, many reordered: GRP_ACKs arrive twice and late
    net.set_faults(FaultConfig {
        duplicate: 0.33,
        reorder: 0.2,
        reorder_delay: Duration::from_micros(800),
        ..FaultConfig::default()
    });
    stream(&mut net, &ids, 4000, |_| {});
}

#[test]
fn a_flood_of_random_and_mutated_frames_breaks_nothing() {
    let mut net = SimNet::new(0xf100_d001);
    net.record_pcap(true);
    let ids = group(&mut net, 3);
    // real frames to mutate: what node 1 received so far
    let seeds: Vec<Bytes> = net.take_frames(1).expect("recording").into_iter().map(|e| e.payload).collect();
    assert!(seeds.len() > 10);
    let mut rng = Rng::new(7);
    // the flood comes from an attacker's own MAC, as from a raw socket elsewhere on the segment
    let macs = [MacAddr([0x02, 0xba, 0xd0, 0, 0, 1]), MacAddr([0x02, 0xba, 0xd0, 0, 0, 2]), MacAddr::BROADCAST];
    let mut injected = 0u64;
    stream(&mut net, &ids, 2000, |net| {
        for _ in 0..10 {
            let frame = Bytes::from(common::hostile_message(&mut rng, &seeds, 0.5, 0, 1600));
            let src = macs[rng.below(3) as usize];
            let now = net.now();
            net.core(1).handle_frame(now, src, frame);
            injected += 1;
        }
    });
    let st = net.core(1).link().stats();
    eprintln!(
        "{injected} hostile frames injected; link layer counted {} malformed, {} foreign",
        st.malformed, st.foreign
    );
    assert!(st.malformed + st.foreign > injected / 10, "malformed-frame counters rise");
}

#[test]
fn failures_are_detected_within_tolerance_plus_one_probe_interval() {
    for tol_ms in [100u64, 1500, 5000] {
        let mut net = SimNet::new(tol_ms);
        let ix: Vec<usize> = (0..2)
            .map(|i| net.add_node(&format!("tol-{i}"), |c| c.tolerance = Duration::from_millis(tol_ms)))
            .collect();
        assert!(net.run_while(Duration::from_secs(20), |s| ix.iter().any(|&i| s.core(i).link().up_nodes().is_empty())));
        for i in 0..2 {
            net.take_events(i);
        }
        let t0 = net.now();
        net.partition(&[0], &[1], t0, t0 + Duration::from_secs(60));
        net.run_for(Duration::from_millis(tol_ms * 3));
        let interval = (tol_ms / 4).min(500);
        for i in 0..2 {
            let down = net
                .take_events(i)
                .into_iter()
                .find_map(|(t, e)| matches!(e, CoreEvent::NodeDown(_)).then_some(t))
                .unwrap_or_else(|| panic!("tolerance {tol_ms} ms: node {i} never saw the other go down"));
            let after = down - t0;
            eprintln!("tolerance {tol_ms} ms: node {i} down after {after:?}");
            assert!(after <= Duration::from_millis(tol_ms + interval), "tolerance {tol_ms} ms: down after {after:?}");
            assert!(after >= Duration::from_millis(tol_ms), "tolerance {tol_ms} ms: down too early, after {after:?}");
        }
    }
}

/// A node with a working link that is not a group member sends forged
/// GROUP_PROTOCOL messages (every type, random ports and windows, some
/// claiming another node's origin), a publication flood past the per-node
/// cap, and fragment floods that never complete. The members' stream stays
/// exact and every structure the hostile node can fill stays under its limit.
#[test]
fn a_hostile_linked_node_cannot_break_a_group_or_grow_memory() {
    use tipc_rs::wire::{
        FragmentMsg, FragmentType, GroupProtoMsg, GroupProtoType, Instance as Inst, IntHdr, Msg, NameDistrMsg,
        NameDistrType, PublItem,
    };
    let mut net = SimNet::new(0x0405_711e);
    let ids = group_of(&mut net, 4, 3);
    let hostile = 3;
    let evil = net.core(hostile).address().expect("address");
    let victims: Vec<tipc_rs::wire::NodeAddr> = (0..3).map(|i| net.core(i).address().expect("address")).collect();
    let mut rng = Rng::new(99);
    let (mut forged, mut published) = (0u64, 0u32);
    let target = tipc_group::MAX_PUBL_PER_NODE as u32 + 5_000;
    stream(&mut net, &ids, 3000, |net| {
        for _ in 0..24 {
            let v = rng.below(3) as usize;
            let orig = if rng.chance(0.2) { victims[0] } else { evil };
            let dest_port = if rng.chance(0.7) { ids[v].0 } else { PortId(rng.next_u64() as u32) };
            let m = GroupProtoMsg {
                msg_type: GroupProtoType::from(rng.below(8) as u8),
                hdr: IntHdr { prev_node: evil, orig_node: orig, dest_node: victims[v], ..IntHdr::default() },
                orig_port: PortId(1 + rng.below(5000) as u32),
                dest_port,
                bc: rng.next_u64() as u16,
                adv_win: rng.next_u64() as u16,
            };
            let b = Msg::GroupProto(m).to_bytes().expect("encode");
            if net.with(hostile, |c, now| c.send_raw(now, victims[v], b)).is_ok() {
                forged += 1;
            }
        }
        // publications past the cap, as unsequenced bulk messages
        if published < target {
            let items: Vec<PublItem> = (0..64)
                .map(|k| {
                    let i = published + k;
                    PublItem { stype: ServiceType(5000), lower: Inst(i), upper: Inst(i), port: PortId(7), key: i }
                })
                .collect();
            for &v in &victims {
                let m = NameDistrMsg {
                    msg_type: NameDistrType::Publication,
                    hdr: IntHdr { prev_node: evil, orig_node: evil, dest_node: v, ..IntHdr::default() },
                    bulk: true,
                    last_bulk: false,
                    non_legacy: true,
                    name_seqno: 0,
                    word5: 1 << 14,
                    items: items.clone(),
                };
                let b = Msg::NameDistr(m).to_bytes().expect("encode");
                let _ = net.with(hostile, |c, now| c.send_raw(now, v, b));
            }
            published += 64;
        }
    });
    let cap = tipc_group::MAX_PUBL_PER_NODE;
    for (i, _) in victims.iter().enumerate() {
        let core = net.core(i);
        let held = core.names().count_of(evil);
        let st = core.stats();
        let g = core.group(ids[i].0).expect("still a member");
        let from_evil = g.members().filter(|(m, _)| m.node == evil).count();
        let joined = g.members().filter(|(m, _)| m.node != evil).count();
        eprintln!(
            "victim {i}: {held} of the hostile node's names held (cap {cap}), {} refused; {from_evil} entries \
             for its forged JOINs (cap {}); {} forged protocol messages ignored as unknown, {} as impersonation",
            st.names_refused,
            tipc_group::MAX_JOINING,
            g.stats().unknown_proto,
            st.not_member
        );
        assert_eq!(held, cap, "victim {i}: the publication flood fills exactly the cap");
        assert!(st.names_refused > 0, "victim {i}: publications past the cap are refused");
        assert!(from_evil <= tipc_group::MAX_JOINING, "victim {i}: forged JOINs are bounded");
        assert_eq!(joined, 2, "victim {i}: the real members are all still there");
        assert!(st.not_member > 0 && g.stats().unknown_proto > 0, "victim {i}: forged messages are counted");
    }
    eprintln!("{forged} forged GROUP_PROTOCOL messages, {published} publications sent");
    // fragment floods: FIRST fragments and middles that never end. The
    // reassembler holds one message per link (≤ 66 060 bytes); a FIRST in
    // the middle of another resets the hostile node's link, which purges
    // its names and held JOINs; the members' stream goes on
    let mut frags = 0u64;
    stream(&mut net, &ids, 6000, |net| {
        let v = victims[rng.below(3) as usize];
        let kind = if rng.chance(0.3) { FragmentType::First } else { FragmentType::Middle };
        let inner = vec![rng.next_u64() as u8; 1000];
        let m = FragmentMsg {
            msg_type: kind,
            hdr: IntHdr { prev_node: evil, orig_node: evil, dest_node: v, ..IntHdr::default() },
            frag_no: 1 + rng.below(60) as u16,
            frag_count: 0,
            word5: 0,
            importance: tipc_rs::wire::Importance::Low,
            payload: Bytes::from(inner),
        };
        let b = Msg::Fragment(m).to_bytes().expect("encode");
        if net.with(hostile, |c, now| c.send_raw(now, v, b)).is_ok() {
            frags += 1;
        }
    });
    net.run_for(Duration::from_secs(3));
    for i in 0..3 {
        let core = net.core(i);
        let st = core.link().stats();
        let held = core.names().count_of(evil);
        let g = core.group(ids[i].0).expect("member");
        let from_evil = g.members().filter(|(m, _)| m.node == evil).count();
        eprintln!(
            "victim {i}: {frags} hostile fragments sent, {} protocol errors reset its link; now {held} of its \
             names and {from_evil} of its JOINs held",
            st.proto_errors
        );
        assert!(st.proto_errors > 0, "victim {i}: the fragment flood is caught");
        assert!(held <= 1, "victim {i}: the hostile node's names went with its link (node-state name only)");
        assert_eq!(from_evil, 0, "victim {i}: held JOINs went with its link");
    }
}

/// A linked node sends, in sequence on its link, one fragment train that
/// grows past the reassembly cap (66 060 bytes): every fragment up to the
/// cap is taken without complaint, the one that crosses it is a protocol
/// error that resets the link (once), and the link comes back and carries
/// data again.
#[test]
fn a_fragment_train_past_the_reassembly_cap_resets_the_link_at_the_crossing() {
    use tipc_rs::wire::{FragmentMsg, FragmentType, Importance, IntHdr, MAX_MSG_SIZE, Msg};
    let mut net = SimNet::new(0xca9_0066);
    let ix = net.add_nodes(2);
    assert!(net.run_while(Duration::from_secs(10), |n| ix.iter().any(|&i| n.core(i).link().up_nodes().is_empty())));
    let (victim, sender) = (0, 1);
    let va = net.core(victim).address().expect("address");
    let sa = net.core(sender).address().expect("address");
    const PIECE: usize = 1400;
    let frag = |kind, no: u16| {
        let m = FragmentMsg {
            msg_type: kind,
            hdr: IntHdr { prev_node: sa, orig_node: sa, dest_node: va, ..IntHdr::default() },
            frag_no: no,
            frag_count: 0,
            word5: 0,
            importance: Importance::Low,
            payload: Bytes::from(vec![0xa5; PIECE]),
        };
        Msg::Fragment(m).to_bytes().expect("encode")
    };
    let errors = |net: &mut SimNet| net.core(victim).link().stats().proto_errors;
    let resets = |net: &mut SimNet| net.core(victim).link().links().iter().map(|l| l.stats.resets).sum::<u64>();
    let resets_before = resets(&mut net);
    net.with(sender, |c, now| c.send_raw(now, va, frag(FragmentType::First, 1)).expect("FIRST"));
    let mut held = PIECE;
    let mut no = 2u16;
    while held + PIECE <= MAX_MSG_SIZE {
        net.with(sender, |c, now| c.send_raw(now, va, frag(FragmentType::Middle, no)).expect("middle"));
        net.run_for(Duration::from_millis(2));
        held += PIECE;
        no += 1;
        assert_eq!(errors(&mut net), 0, "{held} bytes held (cap {MAX_MSG_SIZE}): no error yet");
        assert_eq!(net.core(victim).link().up_nodes(), vec![sa], "link up with {held} bytes held");
    }
    net.with(sender, |c, now| c.send_raw(now, va, frag(FragmentType::Middle, no)).expect("crossing middle"));
    net.run_for(Duration::from_millis(20));
    eprintln!(
        "{} fragments ({held} bytes) held under the cap of {MAX_MSG_SIZE}; the next one: {} protocol error(s), \
         {} link reset(s)",
        no - 1,
        errors(&mut net),
        resets(&mut net) - resets_before
    );
    assert_eq!(errors(&mut net), 1, "the crossing fragment is one protocol error");
    assert!(resets(&mut net) > resets_before, "and it reset the link");
    // the link comes back and works
    assert!(net.run_while(Duration::from_secs(10), |n| {
        n.core(victim).link().up_nodes().is_empty() || n.core(sender).link().up_nodes().is_empty()
    }));
    let p = net.with(victim, |c, _| c.open_port());
    let msg = Bytes::from_static(b"after the reset");
    let mut data = tipc_rs::wire::DataMsg::new(tipc_rs::wire::DataType::Direct, msg.clone());
    data.dest_port = p;
    data.dest_node = va;
    data.orig_node = sa;
    let b = Msg::Data(data).to_bytes().expect("encode");
    net.with(sender, |c, now| c.send_raw(now, va, b)).expect("data after the reset");
    net.run_for(Duration::from_millis(50));
    let got = net.take_events(victim).into_iter().any(|(_, e)| matches!(e, CoreEvent::Message(m) if m.data == msg));
    assert!(got, "data flows again after the reset");
}

/// A sequenced packet whose destination node is not ours still takes its
/// place in the link's sequence (as in the kernel, which checks the
/// destination only after the link): it is dropped and counted, and what
/// follows it on the link is delivered at once. Dropping it before the
/// link left a gap that the peer filled with the same packet again and
/// again, stalling the link until its retransmission failure (10 × the
/// tolerance).
#[test]
fn a_packet_for_another_node_does_not_stall_the_link() {
    use tipc_rs::wire::{DataMsg, DataType, Msg, NodeAddr};
    let mut net = SimNet::new(0xd0e5_7a11);
    let ix = net.add_nodes(2);
    assert!(net.run_while(Duration::from_secs(10), |n| ix.iter().any(|&i| n.core(i).link().up_nodes().is_empty())));
    let (a0, a1) = (net.core(0).address().expect("address"), net.core(1).address().expect("address"));
    let port = net.with(1, |c, _| c.open_port());
    let msg = |dest: NodeAddr, text: &'static str| {
        let mut m = DataMsg::new(DataType::Direct, Bytes::from_static(text.as_bytes()));
        m.dest_port = port;
        m.dest_node = dest;
        m.orig_node = a0;
        Msg::Data(m).to_bytes().expect("encode")
    };
    let foreign_before = net.core(1).link().stats().foreign;
    net.with(0, |c, now| c.send_raw(now, a1, msg(NodeAddr(0x0bad_0bad), "misaddressed"))).expect("send");
    net.with(0, |c, now| c.send_raw(now, a1, msg(a1, "next"))).expect("send");
    net.run_for(Duration::from_millis(100));
    let got: Vec<Bytes> = net
        .take_events(1)
        .into_iter()
        .filter_map(|(_, e)| match e {
            CoreEvent::Message(m) => Some(m.data),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![Bytes::from_static(b"next")], "only the message for us, and at once");
    assert_eq!(net.core(1).link().stats().foreign, foreign_before + 1, "the other one is counted");
    let retx: u64 = net.core(0).link().links().iter().map(|l| l.stats.retransmitted).sum();
    assert_eq!(retx, 0, "nothing had to be sent again");
}
