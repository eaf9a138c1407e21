//! Connection sockets over the perfect in-memory link: set-up by name and
//! by socket, the kernel's implied connect, refusals, flow control in
//! blocks and in messages, teardown by close, shutdown, node loss and
//! unanswered probes, and what a connection socket refuses
//! (net/tipc/socket.c is the reference for every expectation).

use tipc_wire::{ConnMgrMsg, ConnMgrType, Duration, Importance};

use super::*;

/// The service the servers in these tests bind.
const CSVC: ServiceType = ServiceType(2000);

fn conn_events(evs: &[SocketEvent], port: PortId) -> Vec<ConnEvent> {
    evs.iter()
        .filter_map(|e| match e {
            SocketEvent::Conn { port: p, event } if *p == port => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn data_of(evs: &[ConnEvent]) -> Vec<Bytes> {
    evs.iter()
        .filter_map(|e| match e {
            ConnEvent::Data(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

/// A listener bound to `CSVC`:`inst` on node `i`.
fn server(net: &mut Net, i: usize, inst: u32) -> PortId {
    let p = net.open_conn(i);
    net.bind(i, p, ServiceRange::single(CSVC, Instance(inst)));
    net.with(i, |l, _, _| l.listen(p)).expect("listen");
    net.run();
    p
}

fn connect(net: &mut Net, i: usize, p: PortId, to: ConnectTo, data: &'static [u8]) -> Result<(), SocketError> {
    net.with(i, |l, w, now| l.connect(now, p, to, Bytes::from_static(data), Importance::Low, w))
}

fn accept(net: &mut Net, i: usize, listener: PortId) -> Result<Accepted, SocketError> {
    net.with(i, |l, w, now| l.accept(now, listener, w))
}

fn csend(net: &mut Net, i: usize, p: PortId, data: Bytes) -> Result<(), SocketError> {
    net.with(i, |l, w, now| l.conn_send(now, p, data, w))
}

/// A client on node `c` connected to a server on node `s` bound to
/// instance `inst`: (listener, client port, accepted port).
fn connected(net: &mut Net, c: usize, s: usize, inst: u32) -> (PortId, PortId, PortId) {
    let lp = server(net, s, inst);
    let cp = net.open_conn(c);
    connect(net, c, cp, ConnectTo::Service { stype: CSVC, inst: Instance(inst) }, b"").expect("connect");
    net.run();
    let acc = accept(net, s, lp).expect("accept");
    net.run();
    assert!(
        conn_events(&net.take(c), cp)
            .contains(&ConnEvent::Connected { peer: MemberId { node: addr(s), port: acc.port } })
    );
    net.take(s);
    (lp, cp, acc.port)
}

/// The messages node `i` handed to links, parsed, without carrying them.
fn sent(net: &mut Net, i: usize) -> Vec<Msg> {
    net.nodes[i].wire.out.iter().filter_map(|(_, b)| Msg::parse(b.clone()).ok()).collect()
}

#[test]
fn connect_by_name_accept_and_talk_both_ways() {
    let mut net = Net::new(2);
    let lp = server(&mut net, 1, 7);
    let cp = net.open_conn(0);
    net.with(0, |l, w, now| {
        l.connect(now, cp, ConnectTo::Service { stype: CSVC, inst: Instance(7) }, Bytes::new(), Importance::High, w)
    })
    .expect("connect");
    // the SYN: named, 40-byte header, SYN bit, returnable, our importance,
    // the port our own name table chose (net/tipc/socket.c tipc_connect)
    let syn = match &sent(&mut net, 0)[..] {
        [Msg::Data(d)] => d.clone(),
        other => panic!("one SYN expected: {other:?}"),
    };
    assert_eq!((syn.msg_type, syn.hsize, syn.importance), (DataType::Named, 40, Importance::High));
    assert!(syn.flags.syn && !syn.flags.d);
    assert_eq!((syn.dest_node, syn.dest_port, syn.orig_port), (addr(1), lp, cp));
    assert_eq!((syn.name_type, syn.name_inst), (CSVC, Instance(7)));
    net.run();
    assert_eq!(conn_events(&net.take(1), lp), vec![ConnEvent::Incoming]);
    // nothing answers until the application accepts
    assert!(net.nodes[1].wire.out.is_empty());
    assert!(conn_events(&net.take(0), cp).is_empty());

    let acc = accept(&mut net, 1, lp).expect("accept");
    assert_ne!(acc.port, lp, "accept makes a new socket");
    assert_eq!(
        (acc.peer, acc.name, acc.data.clone()),
        (MemberId { node: addr(0), port: cp }, Some((CSVC, Instance(7))), None)
    );
    // the ACK: an empty 24-byte connection message at the SYN's importance
    let ack = match &sent(&mut net, 1)[..] {
        [Msg::Data(d)] => d.clone(),
        other => panic!("one ACK expected: {other:?}"),
    };
    assert_eq!((ack.msg_type, ack.hsize, ack.importance), (DataType::Conn, 24, Importance::High));
    assert!(ack.payload.is_empty() && !ack.flags.syn);
    assert_eq!((ack.orig_port, ack.dest_port), (acc.port, cp));
    net.run();
    let peer = MemberId { node: addr(1), port: acc.port };
    assert_eq!(conn_events(&net.take(0), cp), vec![ConnEvent::Connected { peer }]);
    assert_eq!(net.nodes[0].layer.conn_peer(cp), Some(peer));
    assert_eq!(net.nodes[1].layer.conn_peer(acc.port), Some(MemberId { node: addr(0), port: cp }));

    csend(&mut net, 0, cp, Bytes::from_static(b"ping")).expect("send");
    let d = match &sent(&mut net, 0)[..] {
        [Msg::Data(d)] => d.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!((d.msg_type, d.hsize, d.importance), (DataType::Conn, 24, Importance::High));
    net.run();
    assert_eq!(data_of(&conn_events(&net.take(1), acc.port)), vec![Bytes::from_static(b"ping")]);
    csend(&mut net, 1, acc.port, Bytes::from_static(b"pong")).expect("send back");
    net.run();
    assert_eq!(data_of(&conn_events(&net.take(0), cp)), vec![Bytes::from_static(b"pong")]);
}

#[test]
fn the_first_message_can_ride_in_the_syn() {
    let mut net = Net::new(2);
    let lp = server(&mut net, 1, 1);
    let cp = net.open_conn(0);
    connect(&mut net, 0, cp, ConnectTo::Service { stype: CSVC, inst: Instance(1) }, b"syn-with-data").expect("connect");
    net.run();
    let acc = accept(&mut net, 1, lp).expect("accept");
    assert_eq!(acc.data, Some(Bytes::from_static(b"syn-with-data")));
    net.run();
    assert!(matches!(conn_events(&net.take(0), cp)[..], [ConnEvent::Connected { .. }]));
}

#[test]
fn connect_by_socket_address_and_on_one_node() {
    let mut net = Net::new(1);
    let lp = server(&mut net, 0, 1);
    let cp = net.open_conn(0);
    // node 0 in the address means our own node
    connect(&mut net, 0, cp, ConnectTo::Socket(MemberId { node: NodeAddr(0), port: lp }), b"").expect("connect");
    let acc = accept(&mut net, 0, lp).expect("accept");
    let evs = net.take(0);
    assert_eq!(conn_events(&evs, cp), vec![ConnEvent::Connected { peer: MemberId { node: addr(0), port: acc.port } }]);
    csend(&mut net, 0, cp, Bytes::from_static(b"local")).expect("send");
    assert_eq!(data_of(&conn_events(&net.take(0), acc.port)), vec![Bytes::from_static(b"local")]);
    assert!(net.nodes[0].wire.out.is_empty(), "a local connection uses no link");
}

#[test]
fn connects_that_cannot_succeed_fail_with_their_reason() {
    let mut net = Net::new(2);
    let cp = net.open_conn(0);
    // nobody binds the name: at once, nothing sent
    assert_eq!(
        connect(&mut net, 0, cp, ConnectTo::Service { stype: CSVC, inst: Instance(9) }, b""),
        Err(SocketError::NoService { stype: CSVC, inst: Instance(9) })
    );
    assert!(net.nodes[0].wire.out.is_empty());
    // a connection socket that does not listen returns the SYN: refused
    let idle = net.open_conn(1);
    connect(&mut net, 0, cp, ConnectTo::Socket(MemberId { node: addr(1), port: idle }), b"").expect("connect");
    net.run();
    assert_eq!(conn_events(&net.take(0), cp), vec![ConnEvent::Closed(ConnEnd::Refused(ErrorCode::NoPort))]);
    // a connectionless socket takes the SYN as a plain message, as the
    // kernel's RDM socket does, and answers nothing (that connect times out)
    let rdm = net.open(1);
    let cp1 = net.open_conn(0);
    connect(&mut net, 0, cp1, ConnectTo::Socket(MemberId { node: addr(1), port: rdm }), b"hi").expect("connect");
    net.run();
    assert!(conn_events(&net.take(0), cp1).is_empty());
    let got = net.take(1);
    assert_eq!(port_messages(&got).len(), 1);
    assert_eq!(&port_messages(&got)[0].data[..], b"hi");
    // a port that does not exist: refused the same way
    let cp2 = net.open_conn(0);
    connect(&mut net, 0, cp2, ConnectTo::Socket(MemberId { node: addr(1), port: PortId(0x7000_0001) }), b"")
        .expect("connect");
    net.run();
    assert_eq!(conn_events(&net.take(0), cp2), vec![ConnEvent::Closed(ConnEnd::Refused(ErrorCode::NoPort))]);
    // a node without a link
    let cp3 = net.open_conn(0);
    assert_eq!(
        connect(&mut net, 0, cp3, ConnectTo::Socket(MemberId { node: addr(7), port: PortId(3) }), b""),
        Err(SocketError::NoLink(addr(7)))
    );
    // and a refused or failed connect leaves the socket unconnected
    assert_eq!(csend(&mut net, 0, cp3, Bytes::from_static(b"x")), Err(SocketError::NotConnected));
}

#[test]
fn misuse_is_refused_with_a_typed_error() {
    let mut net = Net::new(2);
    let (lp, cp, _ap) = connected(&mut net, 0, 1, 1);
    let to = ConnectTo::Service { stype: CSVC, inst: Instance(1) };
    assert_eq!(connect(&mut net, 0, cp, to, b""), Err(SocketError::IsConnected));
    assert_eq!(net.with(0, |l, _, _| l.listen(cp)), Err(SocketError::IsConnected));
    assert_eq!(connect(&mut net, 1, lp, to, b""), Err(SocketError::IsListening));
    let bound = net.open_conn(0);
    net.bind(0, bound, ServiceRange::single(CSVC, Instance(50)));
    assert_eq!(connect(&mut net, 0, bound, to, b""), Err(SocketError::IsBound));
    let idle = net.open_conn(0);
    assert_eq!(accept(&mut net, 0, idle), Err(SocketError::NotListening));
    assert_eq!(accept(&mut net, 1, lp), Err(SocketError::WouldBlock(NodeAddr(0))), "no request waits");
    assert_eq!(csend(&mut net, 0, idle, Bytes::from_static(b"x")), Err(SocketError::NotConnected));
    let plain = net.open(0);
    let big = Bytes::from(vec![0u8; tipc_wire::MAX_USER_MSG_SIZE + 1]);
    assert_eq!(csend(&mut net, 0, cp, big), Err(SocketError::TooLarge(tipc_wire::MAX_USER_MSG_SIZE + 1)));
    // connection calls on connectionless sockets, and the reverse
    let member = net.open(0);
    net.join(0, member, spec(1));
    assert_eq!(connect(&mut net, 0, member, to, b""), Err(SocketError::WrongSocketType));
    assert_eq!(net.with(0, |l, _, _| l.listen(plain)), Err(SocketError::WrongSocketType));
    assert_eq!(net.with(0, |l, w, _| l.group_join(cp, spec(2), w)), Err(SocketError::WrongSocketType));
    assert_eq!(
        send(&mut net, 0, cp, Dest::Service { stype: CSVC, inst: Instance(1) }, b"x"),
        Err(SocketError::WrongSocketType)
    );
    assert_eq!(net.with(0, |l, _, _| l.listen(PortId(12345))), Err(SocketError::NoSuchPort(PortId(12345))));
}

/// Sends `len`-byte messages from `p` on node `i` until the window refuses
/// one; returns how many went.
fn fill(net: &mut Net, i: usize, p: PortId, len: usize) -> usize {
    let mut n = 0;
    loop {
        match csend(net, i, p, Bytes::from(vec![n as u8; len])) {
            Ok(()) => n += 1,
            Err(SocketError::WouldBlock(node)) => {
                assert_ne!(node, NodeAddr(0));
                return n;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(n < 100_000, "the window never closed");
    }
}

fn conn_acks(msgs: &[Msg]) -> Vec<ConnMgrMsg> {
    msgs.iter()
        .filter_map(|m| match m {
            Msg::ConnMgr(c) if c.msg_type == ConnMgrType::Ack => Some(c.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_window_counts_blocks_and_reopens_as_the_reader_consumes() {
    let mut net = Net::new(2);
    let (_lp, cp, ap) = connected(&mut net, 0, 1, 1);
    // 1000 bytes + the 24-byte header cost 2 blocks; the first window is
    // 128 blocks and a send may overshoot it by one message: 65 go
    // (net/tipc/socket.c tsk_inc, tsk_conn_cong)
    assert_eq!(fill(&mut net, 0, cp, 1000), 65);
    assert!(net.nodes[0].layer.conn_congested(cp));
    net.run();
    let got = data_of(&conn_events(&net.take(1), ap));
    assert_eq!(got.len(), 65);
    assert!(got.iter().enumerate().all(|(i, d)| d.len() == 1000 && d[0] == i as u8), "in order, whole");
    // the reader consumes 15 messages (30 blocks): below a quarter of the
    // window, no ack yet
    for d in &got[..15] {
        net.with(1, |l, w, _| l.conn_consumed(ap, d.len(), w));
    }
    assert!(conn_acks(&sent(&mut net, 1)).is_empty());
    // the 16th makes 32 blocks: a CONN_ACK for 32 with our window of 512
    net.with(1, |l, w, _| l.conn_consumed(ap, 1000, w));
    let acks = conn_acks(&sent(&mut net, 1));
    assert_eq!(acks.len(), 1);
    assert_eq!((acks[0].acked, acks[0].adv_win), (32, 512));
    assert_eq!((acks[0].orig_port, acks[0].dest_port), (ap, cp));
    net.run();
    // 130 - 32 = 98 unacked under a 512-block window: writable again
    assert_eq!(conn_events(&net.take(0), cp), vec![ConnEvent::Writable]);
    // (512 - 98) / 2 + 1 = 208 more messages until it closes again
    assert_eq!(fill(&mut net, 0, cp, 1000), 208);
    net.run();
    assert_eq!(data_of(&conn_events(&net.take(1), ap)).len(), 208);
}

#[test]
fn a_peer_without_block_flow_control_counts_messages() {
    let mut net = Net::new(2);
    net.nodes[0].wire.legacy.insert(addr(1));
    net.nodes[1].wire.legacy.insert(addr(0));
    let (_lp, cp, ap) = connected(&mut net, 0, 1, 1);
    // 512 messages whatever their size, plus the one overshoot
    // (FLOWCTL_MSG_WIN)
    assert_eq!(fill(&mut net, 0, cp, 5000), 513);
    net.run();
    let got = data_of(&conn_events(&net.take(1), ap));
    assert_eq!(got.len(), 513);
    for d in &got[..127] {
        net.with(1, |l, w, _| l.conn_consumed(ap, d.len(), w));
    }
    assert!(conn_acks(&sent(&mut net, 1)).is_empty());
    net.with(1, |l, w, _| l.conn_consumed(ap, 5000, w));
    let acks = conn_acks(&sent(&mut net, 1));
    // 128 messages acknowledged; no window in the ack (it is ignored)
    assert_eq!((acks.len(), acks[0].acked, acks[0].adv_win), (1, 128, 0));
    net.run();
    assert_eq!(conn_events(&net.take(0), cp), vec![ConnEvent::Writable]);
    assert_eq!(fill(&mut net, 0, cp, 5000), 128);
}

#[test]
fn close_and_shutdown_end_the_connection_for_the_peer() {
    let mut net = Net::new(2);
    let (_lp, cp, ap) = connected(&mut net, 0, 1, 1);
    csend(&mut net, 0, cp, Bytes::from_static(b"last words")).expect("send");
    net.with(0, |l, w, _| l.close_port(cp, w));
    // the close message: 24 bytes, CRITICAL, NO_PORT, no data
    let fin = match &sent(&mut net, 0)[..] {
        [_, Msg::Data(d)] => d.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (fin.msg_type, fin.hsize, fin.importance, fin.err),
        (DataType::Conn, 24, Importance::Critical, ErrorCode::NoPort)
    );
    net.run();
    // data sent before the close arrives before the end
    assert_eq!(
        conn_events(&net.take(1), ap),
        vec![ConnEvent::Data(Bytes::from_static(b"last words")), ConnEvent::Closed(ConnEnd::Reset(ErrorCode::NoPort))]
    );
    assert_eq!(csend(&mut net, 1, ap, Bytes::from_static(b"x")), Err(SocketError::ConnClosed));

    let (_lp2, cp2, ap2) = connected(&mut net, 0, 1, 2);
    net.with(1, |l, w, _| l.conn_shutdown(ap2, w)).expect("shutdown");
    net.run();
    assert_eq!(conn_events(&net.take(0), cp2), vec![ConnEvent::Closed(ConnEnd::Shutdown)]);
    assert_eq!(csend(&mut net, 1, ap2, Bytes::from_static(b"x")), Err(SocketError::ConnClosed));
    assert_eq!(csend(&mut net, 0, cp2, Bytes::from_static(b"x")), Err(SocketError::ConnClosed));
    // closing after the end sends nothing more
    net.with(1, |l, w, _| l.close_port(ap2, w));
    assert!(sent(&mut net, 1).is_empty());
}

#[test]
fn losing_the_peer_node_ends_its_connections_locally() {
    let mut net = Net::new(3);
    let (_lp, cp, ap) = connected(&mut net, 0, 1, 1);
    let (_lp2, cp2, _ap2) = connected(&mut net, 0, 2, 2);
    net.nodes[0].wire.up.remove(&addr(1));
    net.input(0, NodeInput::NodeDown(addr(1)));
    net.nodes[1].wire.up.remove(&addr(0));
    net.input(1, NodeInput::NodeDown(addr(0)));
    assert!(sent(&mut net, 0).is_empty() && sent(&mut net, 1).is_empty(), "nothing on the wire");
    assert_eq!(conn_events(&net.take(0), cp), vec![ConnEvent::Closed(ConnEnd::NodeLost)]);
    assert_eq!(conn_events(&net.take(1), ap), vec![ConnEvent::Closed(ConnEnd::NodeLost)]);
    // the connection to the other node lives on
    csend(&mut net, 0, cp2, Bytes::from_static(b"still here")).expect("send");
    net.run();
    assert_eq!(net.take(2).len(), 1);
}

#[test]
fn a_quiet_connection_is_probed_and_an_unanswered_probe_aborts_it() {
    let mut net = Net::new(2);
    let (_lp, cp, ap) = connected(&mut net, 0, 1, 1);
    let start = net.now;
    let due = net.nodes[0].layer.poll_timeout().expect("a probe timer");
    assert_eq!(due, start + CONN_PROBE_INTERVAL);
    // nothing before it is due
    net.now = start + Duration::from_secs(3599);
    net.with(0, |l, w, now| l.handle_timeout(now, w));
    assert!(sent(&mut net, 0).is_empty(), "no probe before the interval");
    net.now = due;
    net.with(0, |l, w, now| l.handle_timeout(now, w));
    let probes: Vec<ConnMgrMsg> = sent(&mut net, 0)
        .into_iter()
        .filter_map(|m| match m {
            Msg::ConnMgr(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(probes.len(), 1);
    assert_eq!((probes[0].msg_type, probes[0].orig_port, probes[0].dest_port), (ConnMgrType::Probe, cp, ap));
    // the peer answers: the connection lives past the next interval
    net.run();
    net.now = due + CONN_PROBE_INTERVAL;
    net.with(0, |l, w, now| l.handle_timeout(now, w));
    assert!(conn_events(&net.take(0), cp).is_empty());
    // now the answer is lost: one interval later the connection is aborted
    net.nodes[0].wire.out.clear();
    net.now += CONN_PROBE_INTERVAL;
    net.with(0, |l, w, now| l.handle_timeout(now, w));
    assert_eq!(conn_events(&net.take(0), cp), vec![ConnEvent::Closed(ConnEnd::ProbeTimeout)]);
    assert_eq!(csend(&mut net, 0, cp, Bytes::from_static(b"x")), Err(SocketError::ConnClosed));
    assert_eq!(net.nodes[0].layer.poll_timeout(), None, "no timer for an ended connection");
    net.now += CONN_PROBE_INTERVAL;
    net.with(0, |l, w, now| l.handle_timeout(now, w));
    assert!(sent(&mut net, 0).is_empty(), "an ended connection is not probed");
    assert!(conn_events(&net.take(0), cp).is_empty(), "nor ended twice");
}

#[test]
fn closing_a_listener_refuses_the_connects_waiting_on_it() {
    let mut net = Net::new(2);
    let lp = server(&mut net, 1, 1);
    let cp = net.open_conn(0);
    connect(&mut net, 0, cp, ConnectTo::Service { stype: CSVC, inst: Instance(1) }, b"").expect("connect");
    net.run();
    net.with(1, |l, w, _| l.close_port(lp, w));
    net.run();
    assert_eq!(conn_events(&net.take(0), cp), vec![ConnEvent::Closed(ConnEnd::Refused(ErrorCode::NoPort))]);
}

#[test]
fn a_full_listen_queue_turns_requests_away_with_overload() {
    let mut net = Net::new(2);
    let lp = server(&mut net, 1, 1);
    let ports: Vec<PortId> = (0..=LISTEN_BACKLOG).map(|_| net.open_conn(0)).collect();
    for p in &ports {
        connect(&mut net, 0, *p, ConnectTo::Service { stype: CSVC, inst: Instance(1) }, b"").expect("connect");
    }
    net.run();
    let evs = net.take(0);
    let refused: Vec<&PortId> = ports
        .iter()
        .filter(|p| conn_events(&evs, **p) == vec![ConnEvent::Closed(ConnEnd::Refused(ErrorCode::Overload))])
        .collect();
    assert_eq!(refused, vec![&ports[LISTEN_BACKLOG]]);
    assert_eq!(conn_events(&net.take(1), lp).len(), LISTEN_BACKLOG);
    // the count a listener's readiness is computed from: every request
    // waiting, one fewer per accept, none on a socket that does not listen
    assert_eq!(net.nodes[1].layer.pending_requests(lp), LISTEN_BACKLOG);
    accept(&mut net, 1, lp).expect("accept");
    assert_eq!(net.nodes[1].layer.pending_requests(lp), LISTEN_BACKLOG - 1);
    assert_eq!(net.nodes[0].layer.pending_requests(ports[0]), 0);
}

/// A connection message from `from` (node `i`'s port) to `to`, as a
/// hostile or confused peer would send it.
fn forged_conn(i: usize, from: PortId, to: PortId, data: &'static [u8]) -> Bytes {
    let mut m = DataMsg::new(DataType::Conn, Bytes::from_static(data));
    m.prev_node = addr(i);
    m.orig_port = from;
    m.dest_port = to;
    Msg::Data(m).to_bytes().expect("encode")
}

#[test]
fn connection_messages_from_strangers_or_to_plain_sockets_are_returned() {
    let mut net = Net::new(3);
    let (_lp, _cp, ap) = connected(&mut net, 0, 1, 1);
    // node 2 is not the peer: returned with NO_PORT, nothing delivered
    let stranger = net.open(2);
    let returned = |net: &mut Net| -> Vec<(PortId, ErrorCode)> {
        sent(net, 1)
            .into_iter()
            .filter_map(|m| match m {
                Msg::Data(d) => Some((d.dest_port, d.err)),
                _ => None,
            })
            .collect()
    };
    let before = net.nodes[1].layer.stats().no_port;
    net.input(1, NodeInput::Delivered { from: addr(2), msg: forged_conn(2, stranger, ap, b"intrude") });
    assert!(conn_events(&net.take(1), ap).is_empty());
    assert_eq!(net.nodes[1].layer.stats().no_port, before + 1);
    assert_eq!(returned(&mut net), vec![(stranger, ErrorCode::NoPort)]);
    net.run();
    // the connectionless stranger drops a returned connection message, as
    // the kernel's would
    assert!(port_messages(&net.take(2)).is_empty());
    // a connection message to a connectionless socket: NO_PORT
    let rdm = net.open(1);
    net.input(1, NodeInput::Delivered { from: addr(2), msg: forged_conn(2, stranger, rdm, b"huh") });
    assert!(port_messages(&net.take(1)).is_empty());
    assert_eq!(net.nodes[1].layer.stats().no_port, before + 2);
    assert_eq!(returned(&mut net), vec![(stranger, ErrorCode::NoPort)]);
    net.run();
    // and a connection message to a listener
    let lp = server(&mut net, 1, 3);
    net.input(1, NodeInput::Delivered { from: addr(2), msg: forged_conn(2, stranger, lp, b"not a syn") });
    assert!(conn_events(&net.take(1), lp).is_empty());
    assert_eq!(returned(&mut net), vec![(stranger, ErrorCode::NoPort)]);
}

#[test]
fn a_peer_that_overruns_the_window_gets_overload_and_memory_stays_bounded() {
    let mut net = Net::new(2);
    let (_lp, cp, ap) = connected(&mut net, 0, 1, 1);
    // node 0 ignores its window: raw connection messages of 64 488 bytes,
    // 64 blocks each with the 24-byte header, straight onto the link
    let big: &'static [u8] = Box::leak(vec![1u8; 63 * 1024 - 24].into_boxed_slice());
    for _ in 0..40 {
        net.nodes[0].wire.out.push((Some(addr(1)), forged_conn(0, cp, ap, big)));
    }
    let before = net.nodes[1].layer.stats().no_port;
    net.run();
    // 2048 blocks hold exactly 32 of them; the other 8 come back
    assert_eq!(data_of(&conn_events(&net.take(1), ap)).len(), 32);
    assert_eq!(net.nodes[1].layer.stats().no_port, before + 8);
    let evs = net.take(0);
    assert!(
        conn_events(&evs, cp).iter().any(|e| matches!(e, ConnEvent::Closed(ConnEnd::Reset(ErrorCode::Overload)))),
        "{evs:?}"
    );
}

#[test]
fn the_syn_data_counts_in_both_windows() {
    let mut net = Net::new(2);
    let lp = server(&mut net, 1, 1);
    let cp = net.open_conn(0);
    let big: &'static [u8] = Box::leak(vec![5u8; 60_000].into_boxed_slice());
    connect(&mut net, 0, cp, ConnectTo::Service { stype: CSVC, inst: Instance(1) }, big).expect("connect");
    net.run();
    let acc = accept(&mut net, 1, lp).expect("accept");
    assert_eq!(acc.data.as_ref().map(Bytes::len), Some(60_000));
    net.run();
    net.take(0);
    // the sender: 59 blocks of SYN data already count, so 35 messages of
    // 2 blocks go before the 128-block window closes (59 + 70 > 128)
    assert!(!net.nodes[0].layer.conn_congested(cp));
    assert_eq!(fill(&mut net, 0, cp, 1000), 35);
    net.run();
    net.take(1);
    // the receiver: the SYN data (59 blocks) and those 35 messages (70)
    // wait unread, so of 64-block messages from a peer that ignores its
    // window only (2048 - 129) / 64 = 29 fit
    let huge: &'static [u8] = Box::leak(vec![1u8; 63 * 1024 - 24].into_boxed_slice());
    for _ in 0..40 {
        net.nodes[0].wire.out.push((Some(addr(1)), forged_conn(0, cp, acc.port, huge)));
    }
    net.run();
    assert_eq!(data_of(&conn_events(&net.take(1), acc.port)).len(), 29);
}

#[test]
fn a_connecting_socket_takes_only_its_answer() {
    let mut net = Net::new(3);
    let lp = server(&mut net, 1, 1);
    let cp = net.open_conn(0);
    connect(&mut net, 0, cp, ConnectTo::Service { stype: CSVC, inst: Instance(1) }, b"").expect("connect");
    net.run();
    let to_cp = |err: ErrorCode, t: DataType, from_port: PortId| {
        let mut m = DataMsg::new(t, Bytes::from_static(b"noise"));
        m.hsize = 32;
        m.prev_node = addr(2);
        m.orig_node = addr(2);
        m.orig_port = from_port;
        m.dest_node = addr(0);
        m.dest_port = cp;
        m.err = err;
        m.flags.d = true;
        Msg::Data(m).to_bytes().expect("encode")
    };
    // a plain message, and a returned one from another socket: ignored
    net.input(0, NodeInput::Delivered { from: addr(2), msg: to_cp(ErrorCode::Ok, DataType::Direct, PortId(9)) });
    net.input(0, NodeInput::Delivered { from: addr(2), msg: to_cp(ErrorCode::NoPort, DataType::Direct, PortId(9)) });
    assert!(conn_events(&net.take(0), cp).is_empty());
    assert_eq!(net.nodes[0].layer.conn_peer(cp), None, "still connecting");
    // the real answer still completes the connect
    let acc = accept(&mut net, 1, lp).expect("accept");
    net.run();
    assert_eq!(
        conn_events(&net.take(0), cp),
        vec![ConnEvent::Connected { peer: MemberId { node: addr(1), port: acc.port } }]
    );
    // a connection message with an error refuses a connect
    let cp2 = net.open_conn(0);
    connect(&mut net, 0, cp2, ConnectTo::Socket(MemberId { node: addr(2), port: PortId(11) }), b"").expect("connect");
    net.nodes[0].wire.out.clear();
    let mut m = DataMsg::new(DataType::Conn, Bytes::new());
    m.prev_node = addr(2);
    m.orig_port = PortId(11);
    m.dest_port = cp2;
    m.err = ErrorCode::NoPort;
    net.input(0, NodeInput::Delivered { from: addr(2), msg: Msg::Data(m).to_bytes().expect("encode") });
    assert_eq!(conn_events(&net.take(0), cp2), vec![ConnEvent::Closed(ConnEnd::Refused(ErrorCode::NoPort))]);
}

#[test]
fn a_connect_in_progress_ends_when_its_node_is_lost() {
    let mut net = Net::new(3);
    let _lp = server(&mut net, 1, 1);
    let cp = net.open_conn(0);
    connect(&mut net, 0, cp, ConnectTo::Service { stype: CSVC, inst: Instance(1) }, b"").expect("connect");
    // node 2 going down is none of its business
    net.input(0, NodeInput::NodeDown(addr(2)));
    assert!(conn_events(&net.take(0), cp).is_empty());
    net.input(0, NodeInput::NodeDown(addr(1)));
    assert_eq!(conn_events(&net.take(0), cp), vec![ConnEvent::Closed(ConnEnd::NodeLost)]);
}

#[test]
fn a_listener_takes_only_syns() {
    let mut net = Net::new(2);
    let lp = server(&mut net, 1, 1);
    assert!(net.nodes[1].layer.is_listening(lp));
    assert!(!net.nodes[1].layer.is_listening(PortId(5)));
    let from = net.open(0);
    let msg = |syn: bool, err: ErrorCode| {
        let mut m = DataMsg::new(DataType::Direct, Bytes::from_static(b"knock"));
        m.prev_node = addr(0);
        m.orig_node = addr(0);
        m.orig_port = from;
        m.dest_node = addr(1);
        m.dest_port = lp;
        m.flags.syn = syn;
        m.err = err;
        Msg::Data(m).to_bytes().expect("encode")
    };
    let before = net.nodes[1].layer.stats().no_port;
    // a plain message without SYN, and a SYN carrying an error
    net.input(1, NodeInput::Delivered { from: addr(0), msg: msg(false, ErrorCode::Ok) });
    net.input(1, NodeInput::Delivered { from: addr(0), msg: msg(true, ErrorCode::NoPort) });
    assert!(conn_events(&net.take(1), lp).is_empty());
    assert_eq!(accept(&mut net, 1, lp), Err(SocketError::WouldBlock(NodeAddr(0))));
    assert_eq!(net.nodes[1].layer.stats().no_port, before + 2);
    // the first is returned to its sender; the second, an error already, is not
    let back: Vec<ErrorCode> = sent(&mut net, 1)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Data(d) => Some(d.err),
            _ => None,
        })
        .collect();
    assert_eq!(back, vec![ErrorCode::NoPort]);
    // a SYN is taken
    net.input(1, NodeInput::Delivered { from: addr(0), msg: msg(true, ErrorCode::Ok) });
    assert_eq!(conn_events(&net.take(1), lp), vec![ConnEvent::Incoming]);
}

#[test]
fn writable_comes_once_the_window_opens_and_only_then() {
    let mut net = Net::new(2);
    let (_lp, cp, ap) = connected(&mut net, 0, 1, 1);
    // a few messages and an ack while the window never closed: no event
    for _ in 0..20 {
        csend(&mut net, 0, cp, Bytes::from(vec![0u8; 1000])).expect("send");
    }
    net.run();
    for _ in 0..20 {
        net.with(1, |l, w, _| l.conn_consumed(ap, 1000, w));
    }
    net.run();
    assert!(conn_events(&net.take(0), cp).is_empty(), "no Writable for a window that never closed");
    // fill until congested, without a refused send: the ack still says so
    while !net.nodes[0].layer.conn_congested(cp) {
        csend(&mut net, 0, cp, Bytes::from(vec![0u8; 1000])).expect("send");
    }
    net.run();
    let got = data_of(&conn_events(&net.take(1), ap));
    for d in &got {
        net.with(1, |l, w, _| l.conn_consumed(ap, d.len(), w));
    }
    net.run();
    assert_eq!(conn_events(&net.take(0), cp), vec![ConnEvent::Writable]);
}

#[test]
fn conn_manager_for_a_port_without_a_connection_is_counted_and_dropped() {
    let mut net = Net::new(2);
    let before = net.nodes[1].layer.stats().no_port;
    let ack = Msg::ConnMgr(ConnMgrMsg {
        msg_type: ConnMgrType::Ack,
        hdr: tipc_wire::IntHdr { prev_node: addr(0), orig_node: addr(0), dest_node: addr(1), ..Default::default() },
        err: ErrorCode::Ok,
        orig_port: PortId(3),
        dest_port: PortId(5),
        acked: 100,
        adv_win: 512,
        payload: Bytes::new(),
    })
    .to_bytes()
    .expect("encode");
    net.input(1, NodeInput::Delivered { from: addr(0), msg: ack });
    assert_eq!(net.nodes[1].layer.stats().no_port, before + 1);
    assert!(sent(&mut net, 1).is_empty());
}

#[test]
fn probes_are_answered_and_conn_manager_from_strangers_ignored() {
    let mut net = Net::new(3);
    let (_lp, cp, ap) = connected(&mut net, 0, 1, 1);
    let probe = |from: NodeAddr, port: PortId| {
        Msg::ConnMgr(ConnMgrMsg {
            msg_type: ConnMgrType::Probe,
            hdr: tipc_wire::IntHdr { prev_node: from, orig_node: from, dest_node: addr(1), ..Default::default() },
            err: ErrorCode::Ok,
            orig_port: port,
            dest_port: ap,
            acked: 0,
            adv_win: 0,
            payload: Bytes::new(),
        })
        .to_bytes()
        .expect("encode")
    };
    net.nodes[0].wire.out.push((Some(addr(1)), probe(addr(0), cp)));
    net.nodes[2].wire.out.push((Some(addr(1)), probe(addr(2), PortId(77))));
    let before = net.nodes[1].layer.stats().no_port;
    // carry node 0's and node 2's messages only once, to see node 1's answer
    for i in [0, 2] {
        for (d, m) in std::mem::take(&mut net.nodes[i].wire.out) {
            assert_eq!(d, Some(addr(1)));
            net.input(1, NodeInput::Delivered { from: addr(i), msg: m });
        }
    }
    let replies: Vec<ConnMgrMsg> = sent(&mut net, 1)
        .into_iter()
        .filter_map(|m| match m {
            Msg::ConnMgr(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1, "only the peer's probe is answered");
    assert_eq!((replies[0].msg_type, replies[0].orig_port, replies[0].dest_port), (ConnMgrType::ProbeReply, ap, cp));
    assert_eq!(net.nodes[1].layer.stats().no_port, before + 1);
}

#[test]
fn the_close_waits_behind_a_congested_link_instead_of_being_lost() {
    let mut net = Net::new(2);
    let (_lp, cp, ap) = connected(&mut net, 0, 1, 1);
    csend(&mut net, 0, cp, Bytes::from_static(b"before")).expect("send");
    net.nodes[0].wire.congested.insert(addr(1));
    // a send now is refused, the close is not
    assert_eq!(csend(&mut net, 0, cp, Bytes::from_static(b"refused")), Err(SocketError::WouldBlock(addr(1))));
    net.with(0, |l, w, _| l.conn_shutdown(cp, w)).expect("shutdown");
    net.run();
    assert_eq!(conn_events(&net.take(1), ap), vec![ConnEvent::Data(Bytes::from_static(b"before"))]);
    net.nodes[0].wire.congested.clear();
    net.input(0, NodeInput::Uncongested(addr(1)));
    net.run();
    assert_eq!(conn_events(&net.take(1), ap), vec![ConnEvent::Closed(ConnEnd::Shutdown)]);
}
