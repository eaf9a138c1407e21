//! proptest strategies for every representation (feature `proptest`, and in tests).

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use crate::*;

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// Word-0 flags.
pub fn flags() -> impl Strategy<Value = Flags> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(non_seq, d, s, syn)| Flags {
        non_seq,
        d,
        s,
        syn,
    })
}

/// The shared internal header.
pub fn int_hdr() -> impl Strategy<Value = IntHdr> {
    (flags(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
        |(flags, b, a, s, p, o, d)| IntHdr {
            flags,
            bcast_ack: SeqNo(b),
            ack: SeqNo(a),
            seqno: SeqNo(s),
            prev_node: NodeAddr(p),
            orig_node: NodeAddr(o),
            dest_node: NodeAddr(d),
        },
    )
}

/// Data messages of every type and header size.
pub fn data_msg() -> impl Strategy<Value = DataMsg> {
    (
        (0u8..4, prop::sample::select(vec![24usize, 32, 40, 44]), flags(), 0u8..8, 0u8..16, 0u8..16, 0u8..4),
        (any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), bytes(300)),
    )
        .prop_map(
            |((imp, hsize, flags, t, err, rr, sc), (b, a, s, prev, op, dp), (on, dn, nt, ni, w10, payload))| {
                let keep = |w: usize, v: u32| if 4 * w < hsize { v } else { 0 };
                DataMsg {
                    importance: Importance::from(imp),
                    hsize,
                    flags,
                    msg_type: DataType::from(t),
                    err: ErrorCode::from(err),
                    reroute: rr,
                    scope: Scope::from(sc),
                    bcast_ack: SeqNo(b),
                    ack: SeqNo(a),
                    seqno: SeqNo(s),
                    prev_node: NodeAddr(prev),
                    orig_port: PortId(op),
                    dest_port: PortId(dp),
                    orig_node: NodeAddr(keep(6, on)),
                    dest_node: NodeAddr(keep(7, dn)),
                    name_type: ServiceType(keep(8, nt)),
                    name_inst: Instance(keep(9, ni)),
                    word10: keep(10, w10),
                    payload,
                }
            },
        )
}

/// LINK_PROTOCOL messages.
pub fn link_proto_msg() -> impl Strategy<Value = LinkProtoMsg> {
    (
        (0u8..8, int_hdr(), 0u16..0x2000, any::<u16>(), any::<u16>(), any::<u16>()),
        (any::<bool>(), any::<bool>(), any::<bool>(), 0u8..8, 0u8..32, 0u8..8, any::<bool>()),
        (0u16..1024, any::<u16>(), any::<u16>(), bytes(64)),
    )
        .prop_map(
            |((t, hdr, gap, lb, ns, session), (bai, ps, rl, bid, pri, plane, probe), (bg, mp, tol, payload))| {
                LinkProtoMsg {
                    msg_type: LinkProtoType::from(t),
                    hdr,
                    gap,
                    last_bcast_sent: SeqNo(lb),
                    next_sent: SeqNo(ns),
                    session,
                    bc_ack_invalid: bai,
                    peer_stopping: ps,
                    redundant_link: rl,
                    bearer_id: bid,
                    priority: pri,
                    net_plane: plane,
                    probe,
                    bcast_gap: bg,
                    max_pkt_div4: mp,
                    tolerance: tol,
                    payload,
                }
            },
        )
}

/// BCAST_PROTOCOL messages.
pub fn bcast_proto_msg() -> impl Strategy<Value = BcastProtoMsg> {
    (0u8..8, int_hdr(), any::<u16>(), any::<u32>(), bytes(16)).prop_map(|(msg_type, hdr, l, word5, payload)| {
        BcastProtoMsg { msg_type, hdr, last_bcast_sent: SeqNo(l), word5, payload }
    })
}

/// Bundles with arbitrary payloads (inner messages are not checked on parse).
pub fn bundle_msg() -> impl Strategy<Value = BundleMsg> {
    (int_hdr(), any::<u32>(), any::<u16>(), 0u8..8, bytes(300)).prop_map(|(hdr, word5, msg_count, imp, payload)| {
        BundleMsg { hdr, word5, msg_count, importance: Importance::from(imp), payload }
    })
}

/// Fragments.
pub fn fragment_msg() -> impl Strategy<Value = FragmentMsg> {
    (0u8..8, int_hdr(), any::<u16>(), any::<u16>(), any::<u32>(), 0u8..8, bytes(300)).prop_map(
        |(t, hdr, frag_no, frag_count, word5, imp, payload)| FragmentMsg {
            msg_type: FragmentType::from(t),
            hdr,
            frag_no,
            frag_count,
            word5,
            importance: Importance::from(imp),
            payload,
        },
    )
}

/// Publication items.
pub fn publ_item() -> impl Strategy<Value = PublItem> {
    (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(t, l, u, p, k)| PublItem {
        stype: ServiceType(t),
        lower: Instance(l),
        upper: Instance(u),
        port: PortId(p),
        key: k,
    })
}

/// NAME_DISTRIBUTOR messages.
pub fn name_distr_msg() -> impl Strategy<Value = NameDistrMsg> {
    (0u8..8, int_hdr(), any::<bool>(), any::<bool>(), any::<bool>(), any::<u16>(), any::<u32>(), vec(publ_item(), 0..8))
        .prop_map(|(t, hdr, bulk, last_bulk, non_legacy, name_seqno, word5, items)| NameDistrMsg {
            msg_type: NameDistrType::from(t),
            hdr,
            bulk,
            last_bulk,
            non_legacy,
            name_seqno,
            word5,
            items,
        })
}

/// GROUP_PROTOCOL messages.
pub fn group_proto_msg() -> impl Strategy<Value = GroupProtoMsg> {
    (0u8..8, int_hdr(), any::<u32>(), any::<u32>(), any::<u16>(), any::<u16>()).prop_map(|(t, hdr, op, dp, bc, adv)| {
        GroupProtoMsg {
            msg_type: GroupProtoType::from(t),
            hdr,
            orig_port: PortId(op),
            dest_port: PortId(dp),
            bc,
            adv_win: adv,
        }
    })
}

/// CONN_MANAGER messages.
pub fn conn_mgr_msg() -> impl Strategy<Value = ConnMgrMsg> {
    (0u8..8, int_hdr(), 0u8..16, any::<u32>(), any::<u32>(), any::<u16>(), any::<u16>(), bytes(16)).prop_map(
        |(t, hdr, err, op, dp, acked, adv, payload)| ConnMgrMsg {
            msg_type: ConnMgrType::from(t),
            hdr,
            err: ErrorCode::from(err),
            orig_port: PortId(op),
            dest_port: PortId(dp),
            acked,
            adv_win: adv,
            payload,
        },
    )
}

/// TUNNEL_PROTOCOL messages.
pub fn tunnel_msg() -> impl Strategy<Value = TunnelMsg> {
    (0u8..8, int_hdr(), any::<u32>(), any::<u32>(), any::<u32>(), bytes(100)).prop_map(
        |(t, hdr, w4, w5, w9, payload)| TunnelMsg {
            msg_type: TunnelType::from(t),
            hdr,
            word4: w4,
            word5: w5,
            word9: w9,
            payload,
        },
    )
}

/// Discovery messages (signature bit 15 equals capability bit 0, as on the wire).
pub fn discovery_msg() -> impl Strategy<Value = DiscoveryMsg> {
    (
        (0u8..8, flags(), 0u16..0x2000, any::<u16>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (
            0u8..3,
            any::<[u8; 6]>(),
            any::<[u8; 32]>(),
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(any::<[u8; 16]>()),
        ),
    )
        .prop_map(|((t, flags, caps, sig, dom, prev, net), (kind, mac, block, hash, sugg, id))| {
            let media = match kind {
                0 => MediaAddr::Eth(MacAddr(mac)),
                // a UDP address, IPv4 or IPv6 by the block's first byte
                1 => {
                    let port = u16::from_be_bytes([block[0], block[1]]);
                    let ip: core::net::IpAddr = if block[2] & 1 == 0 {
                        core::net::Ipv4Addr::new(block[3], block[4], block[5], block[6]).into()
                    } else {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(&block[3..19]);
                        core::net::Ipv6Addr::from(a).into()
                    };
                    MediaAddr::Udp(core::net::SocketAddr::new(ip, port))
                }
                _ => MediaAddr::read(&block),
            };
            DiscoveryMsg {
                msg_type: DiscoveryType::from(t),
                flags,
                capabilities: caps,
                signature: (sig & 0x7fff) | ((caps & 1) << 15),
                dest_domain: NodeAddr(dom),
                prev_node: NodeAddr(prev),
                net_id: net,
                media,
                peer_net_hash: hash,
                suggested: NodeAddr(sugg),
                node_id: id.map(NodeId),
            }
        })
}

/// Messages of users without a structure (4, 14, 15), kept raw.
pub fn raw_msg() -> impl Strategy<Value = RawMsg> {
    (prop::sample::select(vec![4u8, 14, 15]), 6usize..=15, vec(any::<u8>(), 60), flags(), bytes(100)).prop_map(
        |(user, hw, mut hdr, flags, payload)| {
            let hsize = hw * 4;
            hdr.truncate(hsize);
            crate::header::write_word0(&mut hdr, user, hsize, flags, hsize + payload.len());
            RawMsg { user, header: Bytes::from(hdr), payload }
        },
    )
}

/// Any message.
pub fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        data_msg().prop_map(Msg::Data),
        link_proto_msg().prop_map(Msg::LinkProto),
        bcast_proto_msg().prop_map(Msg::BcastProto),
        bundle_msg().prop_map(Msg::Bundle),
        fragment_msg().prop_map(Msg::Fragment),
        name_distr_msg().prop_map(Msg::NameDistr),
        group_proto_msg().prop_map(Msg::GroupProto),
        conn_mgr_msg().prop_map(Msg::ConnMgr),
        tunnel_msg().prop_map(Msg::Tunnel),
        discovery_msg().prop_map(Msg::Discovery),
        raw_msg().prop_map(Msg::Raw),
    ]
}
