//! Parse and emit rates of the wire codec for a 1 KiB group data frame and a
//! link STATE frame (criterion). Run: `cargo bench --bench wire`.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tipc_rs::wire::*;

fn group_frame() -> Msg {
    let mut m = DataMsg::new(DataType::GrpBcast, Bytes::from(vec![0xa5u8; 1024]));
    m.flags.d = true;
    m.scope = Scope::Cluster;
    m.orig_node = NodeAddr(0x525e_0000);
    m.prev_node = m.orig_node;
    m.dest_node = NodeAddr(0x0e09_5f0c);
    m.orig_port = PortId(185_113_972);
    m.name_type = ServiceType(4711);
    m.seqno = SeqNo(1234);
    m.ack = SeqNo(99);
    m.set_grp(7, true);
    Msg::Data(m)
}

fn state_frame() -> Msg {
    Msg::LinkProto(LinkProtoMsg {
        msg_type: LinkProtoType::State,
        hdr: IntHdr {
            prev_node: NodeAddr(0x525e_0000),
            orig_node: NodeAddr(0x525e_0000),
            dest_node: NodeAddr(0x0e09_5f0c),
            seqno: SeqNo(3),
            ack: SeqNo(2),
            ..IntHdr::default()
        },
        gap: 0,
        last_bcast_sent: SeqNo(0),
        next_sent: SeqNo(3),
        session: 4203,
        bc_ack_invalid: false,
        peer_stopping: false,
        redundant_link: true,
        bearer_id: 0,
        priority: 0,
        net_plane: 0,
        probe: true,
        bcast_gap: 0,
        max_pkt_div4: 0,
        tolerance: 0,
        payload: Bytes::from_static(&[0, 4, 0, 0]),
    })
}

fn bench(c: &mut Criterion) {
    for (name, msg) in [("group_data_1k", group_frame()), ("link_state", state_frame())] {
        let wire = msg.to_bytes().expect("emit");
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(1));
        g.bench_function("parse", |b| b.iter(|| Msg::parse(std::hint::black_box(wire.clone())).expect("parse")));
        g.bench_function("header_view", |b| {
            b.iter(|| Header::new_checked(std::hint::black_box(&wire[..])).expect("check").seqno())
        });
        let mut buf = BytesMut::zeroed(msg.buffer_len());
        g.bench_function("emit", |b| b.iter(|| std::hint::black_box(&msg).emit(&mut buf).expect("emit")));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
