//! The UDP media (net/tipc/udp_media.c; captures 14 and 15): a
//! TIPC message is the whole payload of a UDP datagram, on an ordinary UDP
//! socket — no privileges needed.
//!
//! Two modes, as the kernel has them:
//! - **multicast**: the socket is bound to the wildcard address and the
//!   bearer's port and joins one multicast group; broadcast-type packets
//!   (discovery, the broadcast link) go to the group;
//! - **replicast**: the socket is bound to the local address; every
//!   broadcast-type packet is copied to each configured peer, and to each
//!   peer learned from a discovery message it received (at most
//!   [`MAX_LEARNED_PEERS`]). The kernel never learns peers in 6.1
//!   (`tipc_udp_recv` hands every datagram on while the bearer is up and
//!   reaches `tipc_udp_rcast_disc` only when it is not): a kernel node must
//!   list every other node, ours need only be reached by each other one.
//!
//! Unicast packets go to the address and port a peer announced in its
//! discovery messages (`tipc_udp_msg2addr`); the source of a datagram is
//! not checked (`tipc_udp_recv`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tipc_wire::{MediaAddr, TxDest};

use crate::BearerError;
use crate::bearer::RxFrame;
use crate::stats::Counters;

/// The UDP port TIPC uses unless told otherwise (IANA "tipc").
pub const DEFAULT_PORT: u16 = 6118;
/// The kernel's UDP bearer MTU over IPv4 (`TIPC_DEF_LINK_UDP_MTU`): larger
/// messages than the path takes leave as IP fragments.
pub const MTU_V4: usize = 14_000;
/// The kernel's UDP bearer MTU over IPv6.
pub const MTU_V6: usize = 1_280;

/// The multicast group iproute2's `tipc` gives a UDP bearer of cluster
/// `net_id` when none is named: IPv4 228.0.(N >> 8 & 255).(N & 255)
/// (4711 → 228.0.18.103, as in capture 14; iproute2 tipc/bearer.c
/// `generate_multicast`).
pub fn default_group_v4(net_id: u32) -> Ipv4Addr {
    Ipv4Addr::new(228, 0, (net_id >> 8) as u8, net_id as u8)
}

/// The IPv6 multicast group iproute2 gives cluster `net_id`: `ff02::`
/// followed by N in *decimal*, which the address parser reads as hex (4711
/// → ff02::4711; iproute2 tipc/bearer.c `generate_multicast`). `None` when
/// the decimal digits do not form a 16-bit group (N above 9999).
pub fn default_group_v6(net_id: u32) -> Option<Ipv6Addr> {
    let group = u16::from_str_radix(&net_id.to_string(), 16).ok()?;
    Some(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, group))
}

/// How a UDP bearer is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// Our IP address and port: what discovery announces and peers send
    /// to. Port 0 takes a free port.
    pub local: SocketAddr,
    /// Where broadcast-type packets go: one multicast group (multicast
    /// mode) or any number of unicast peers (replicast mode), all of the
    /// local address's family.
    pub remote: Vec<SocketAddr>,
    /// The largest TIPC message ([`MTU_V4`] or [`MTU_V6`] by default).
    pub mtu: usize,
    /// The bearer's name (the kernel's `udp:NAME`, without `udp:`): the
    /// interface name in RESET/ACTIVATE and in link names.
    pub name: String,
}

impl UdpConfig {
    /// Multicast mode: `local`, and the default group of cluster `net_id`
    /// on the same port.
    pub fn multicast(local: SocketAddr, net_id: u32) -> UdpConfig {
        let group = match local.ip() {
            IpAddr::V4(_) => IpAddr::V4(default_group_v4(net_id)),
            IpAddr::V6(_) => {
                IpAddr::V6(default_group_v6(net_id).unwrap_or(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x4711)))
            }
        };
        let port = if local.port() == 0 { DEFAULT_PORT } else { local.port() };
        Self::with_remote(local, vec![SocketAddr::new(group, port)])
    }

    /// Replicast mode: `local`, copying broadcast-type packets to each of
    /// `peers`.
    pub fn replicast(local: SocketAddr, peers: Vec<SocketAddr>) -> UdpConfig {
        Self::with_remote(local, peers)
    }

    fn with_remote(local: SocketAddr, remote: Vec<SocketAddr>) -> UdpConfig {
        let mtu = if local.is_ipv4() { MTU_V4 } else { MTU_V6 };
        UdpConfig { local, remote, mtu, name: "udp".into() }
    }

    /// Whether broadcast-type packets go to a multicast group.
    pub fn is_multicast(&self) -> bool {
        is_group(&self.remote)
    }
}

/// Whether a remote list is one multicast group (multicast mode) rather
/// than replicast peers.
fn is_group(remote: &[SocketAddr]) -> bool {
    matches!(remote, [g] if g.ip().is_multicast())
}

/// Most replicast peers a bearer learns from discovery, beside the ones it
/// was given: a bound on what forged discovery messages can make it copy
/// its broadcast-type packets to.
pub const MAX_LEARNED_PEERS: usize = 64;

/// An open UDP bearer's addressing.
#[derive(Clone, Debug)]
pub(crate) struct UdpMedium {
    /// Our announced address (the bound port filled in).
    pub own: SocketAddr,
    /// The multicast group, or the replicast peers given.
    pub remote: Vec<SocketAddr>,
    /// Replicast peers learned from discovery (replicast mode only), shared
    /// by the receive side that learns them and the send side.
    pub learned: std::sync::Arc<parking_lot::Mutex<Vec<SocketAddr>>>,
}

impl UdpMedium {
    /// Whether broadcast-type packets go to a list of unicast peers.
    pub fn is_replicast(&self) -> bool {
        !is_group(&self.remote)
    }

    /// Adds where a frame for `dst` goes to `out`: the peer of a unicast
    /// frame; the group, or every replicast peer (given, then learned), of a
    /// broadcast-type one.
    pub fn destinations(&self, dst: &TxDest, out: &mut Vec<SocketAddr>) {
        match dst {
            TxDest::Unicast(MediaAddr::Udp(a)) => out.push(*a),
            d if d.is_broadcast() => {
                out.extend_from_slice(&self.remote);
                if self.is_replicast() {
                    out.extend_from_slice(&self.learned.lock());
                }
            }
            _ => {}
        }
    }

    /// Every replicast peer, given and learned (empty in multicast mode).
    pub fn peers(&self) -> Vec<SocketAddr> {
        if !self.is_replicast() {
            return Vec::new();
        }
        let mut v = self.remote.clone();
        v.extend_from_slice(&self.learned.lock());
        v
    }

    /// Learns a replicast peer from a received message `msg`: in replicast
    /// mode, a discovery message announcing a UDP address of our family
    /// that is neither ours nor a peer yet makes that address a peer, so a
    /// node that lists only some of the others still reaches them all
    /// with its broadcast-type packets (what net/tipc/udp_media.c
    /// `tipc_udp_rcast_disc` means to do, though in 6.1 `tipc_udp_recv`
    /// never calls it while the bearer is up).
    /// At most [`MAX_LEARNED_PEERS`]; returns the address learned.
    pub fn learn(&self, msg: &Bytes) -> Option<SocketAddr> {
        // word 0 bits 25-28: the user; discovery is LINK_CONFIG (13)
        let w0 = u32::from_be_bytes(msg.get(..4)?.try_into().ok()?);
        if (w0 >> 25) & 0xf != 13 || !self.is_replicast() {
            return None;
        }
        let Ok(tipc_wire::Msg::Discovery(d)) = tipc_wire::Msg::parse(msg.clone()) else { return None };
        let MediaAddr::Udp(a) = d.media else { return None };
        let usable = a != self.own
            && a.is_ipv4() == self.own.is_ipv4()
            && a.port() != 0
            && !a.ip().is_multicast()
            && !a.ip().is_unspecified()
            && !self.remote.contains(&a);
        let mut learned = self.learned.lock();
        if !usable || learned.contains(&a) || learned.len() >= MAX_LEARNED_PEERS {
            return None;
        }
        learned.push(a);
        Some(a)
    }
}

/// Opens the socket of `cfg`: in multicast mode bound to the wildcard
/// address and joined to the group on the interface that owns the local
/// address; in replicast mode bound to the local address. Either way the
/// port is the node's own: a second node on the same port (multicast
/// mode) or address and port (replicast mode) of this host is refused.
///
/// # Errors
/// [`BearerError::BadUdpConfig`] for a local address that is not a
/// unicast one (multicast, broadcast, unspecified), a remote list that is
/// empty, mixes families or multicast and unicast addresses, has a port 0
/// or names the local address; [`BearerError::Io`] from the socket calls
/// (the address in use, or not of this host).
pub(crate) fn open(cfg: &UdpConfig) -> Result<(Socket, UdpMedium), BearerError> {
    let bad = |why: &str| Err(BearerError::BadUdpConfig(why.to_string()));
    if cfg.remote.is_empty() {
        return bad("no remote address: give a multicast group or replicast peers");
    }
    if cfg.remote.iter().any(|r| r.is_ipv4() != cfg.local.is_ipv4()) {
        return bad("local and remote addresses must be of one IP version");
    }
    let multicast = cfg.is_multicast();
    if !multicast && cfg.remote.iter().any(|r| r.ip().is_multicast()) {
        return bad("one multicast group, or unicast peers only (the kernel refuses peers beside a group)");
    }
    let ip = cfg.local.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if ip.is_multicast() || ip.is_unspecified() || broadcast {
        return bad("the local address must be a unicast address of this host (peers send to it)");
    }
    if cfg.remote.iter().any(|r| r.port() == 0) {
        return bad("a remote address needs a port");
    }
    if cfg.remote.contains(&cfg.local) {
        return bad("a peer is the local address itself");
    }
    let io = BearerError::io;
    let sock = Socket::new(Domain::for_address(cfg.local), Type::DGRAM.cloexec(), Some(Protocol::UDP))
        .map_err(io("open UDP socket"))?;
    // no SO_REUSEADDR: a second node on the same address and port must
    // fail to start, not take half of the first one's datagrams
    let bind_to = if multicast {
        let any: IpAddr = if cfg.local.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
        SocketAddr::new(any, cfg.local.port())
    } else {
        cfg.local
    };
    sock.bind(&SockAddr::from(bind_to)).map_err(io("bind UDP socket"))?;
    let port = sock.local_addr().ok().and_then(|a| a.as_socket()).map_or(cfg.local.port(), |a| a.port());
    if multicast {
        match (cfg.remote[0].ip(), cfg.local.ip()) {
            (IpAddr::V4(g), IpAddr::V4(l)) => {
                sock.join_multicast_v4(&g, &l).map_err(io("join the multicast group"))?;
                // send to the group from the local address's interface, so
                // no route to 224.0.0.0/4 is needed
                if !l.is_unspecified() {
                    sock.set_multicast_if_v4(&l).map_err(io("IP_MULTICAST_IF"))?;
                }
                // the kernel sends multicast with the route's hop limit, not 1
                sock.set_multicast_ttl_v4(64).map_err(io("IP_MULTICAST_TTL"))?;
                sock.set_multicast_loop_v4(true).map_err(io("IP_MULTICAST_LOOP"))?;
            }
            (IpAddr::V6(g), _) => {
                sock.join_multicast_v6(&g, 0).map_err(io("join the multicast group"))?;
                sock.set_multicast_hops_v6(64).map_err(io("IPV6_MULTICAST_HOPS"))?;
            }
            _ => return bad("local and remote addresses must be of one IP version"),
        }
    }
    let own = SocketAddr::new(cfg.local.ip(), port);
    Ok((sock, UdpMedium { own, remote: cfg.remote.clone(), learned: Default::default() }))
}

/// Filters one received datagram `buf` from `from` (`truncated`: it was
/// cut to the receive buffer), and cuts it to its TIPC message. Our own
/// datagrams (multicast loops them back) are dropped.
pub(crate) fn classify(
    c: &Counters,
    own: SocketAddr,
    from: SocketAddr,
    buf: &[u8],
    truncated: bool,
    arena: &mut crate::arena::RxArena,
) -> Option<RxFrame> {
    let drop = |ctr: &std::sync::atomic::AtomicU64| {
        Counters::add(ctr, 1);
        None
    };
    if from == own {
        return drop(&c.drop_own);
    }
    let len = buf.len();
    if truncated || len < tipc_wire::MIN_H_SIZE {
        return drop(&c.drop_malformed);
    }
    let size = match tipc_wire::encrypted_len(buf) {
        Some(n) => n,
        None => (u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) & 0x1_ffff) as usize,
    };
    if size < tipc_wire::MIN_H_SIZE || size > len {
        return drop(&c.drop_malformed);
    }
    Counters::add(&c.rx_frames, 1);
    Counters::add(&c.rx_bytes, size as u64);
    Some(RxFrame { src: MediaAddr::Udp(from), broadcast: false, msg: arena.copy(&buf[..size]) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classifier with an arena of its own.
    fn classify(c: &Counters, own: SocketAddr, from: SocketAddr, buf: &[u8], truncated: bool) -> Option<RxFrame> {
        super::classify(c, own, from, buf, truncated, &mut crate::arena::RxArena::default())
    }

    #[test]
    fn default_groups_are_iproutes() {
        assert_eq!(default_group_v4(4711), Ipv4Addr::new(228, 0, 18, 103));
        assert_eq!(default_group_v6(4711), Some("ff02::4711".parse().expect("v6")));
        assert_eq!(default_group_v6(10_000), None);
        let m = UdpConfig::multicast("10.0.0.1:0".parse().expect("addr"), 4711);
        assert_eq!(m.remote, vec!["228.0.18.103:6118".parse::<SocketAddr>().expect("addr")]);
        assert!(m.is_multicast());
        assert_eq!(m.mtu, MTU_V4);
        let r =
            UdpConfig::replicast("[fd00::1]:6118".parse().expect("addr"), vec!["[fd00::2]:6118".parse().expect("a")]);
        assert!(!r.is_multicast());
        assert_eq!(r.mtu, MTU_V6);
    }

    #[test]
    fn broadcast_goes_to_the_remote_list_unicast_to_the_peer() {
        let peers: Vec<SocketAddr> = vec!["10.0.0.2:6118".parse().expect("a"), "10.0.0.3:6118".parse().expect("a")];
        let m =
            UdpMedium { own: "10.0.0.1:6118".parse().expect("a"), remote: peers.clone(), learned: Default::default() };
        let dests = |d: &TxDest| {
            let mut v = Vec::new();
            m.destinations(d, &mut v);
            v
        };
        assert_eq!(dests(&TxDest::Broadcast), peers);
        let one: SocketAddr = "10.0.0.9:7000".parse().expect("a");
        assert_eq!(dests(&TxDest::Unicast(MediaAddr::Udp(one))), vec![one]);
        let eth = TxDest::Unicast(MediaAddr::Eth(tipc_wire::MacAddr([2, 0, 0, 0, 0, 1])));
        assert!(dests(&eth).is_empty(), "an Ethernet address is not reachable over UDP");
    }

    #[test]
    fn bad_configurations_are_refused() {
        let l: SocketAddr = "127.0.0.1:0".parse().expect("a");
        let cases = [
            vec![],
            vec!["[::1]:6118".parse().expect("a")],
            vec!["228.0.0.1:6118".parse().expect("a"), "127.0.0.2:6118".parse().expect("a")],
        ];
        for remote in cases {
            let cfg = UdpConfig::replicast(l, remote.clone());
            assert!(matches!(open(&cfg), Err(BearerError::BadUdpConfig(_))), "{remote:?}");
        }
        let peer: SocketAddr = "127.0.0.2:6118".parse().expect("a");
        for local in ["0.0.0.0:6118", "255.255.255.255:6118", "228.0.0.1:6118"] {
            let cfg = UdpConfig::replicast(local.parse().expect("a"), vec![peer]);
            assert!(matches!(open(&cfg), Err(BearerError::BadUdpConfig(_))), "{local}");
        }
        let me: SocketAddr = "127.0.0.1:6118".parse().expect("a");
        let no_port: SocketAddr = "127.0.0.2:0".parse().expect("a");
        for remote in [vec![me], vec![no_port]] {
            let cfg = UdpConfig::replicast(me, remote.clone());
            assert!(matches!(open(&cfg), Err(BearerError::BadUdpConfig(_))), "{remote:?}");
        }
    }

    /// A second node on an address and port already in use does not
    /// start (it would take half of the first node's datagrams).
    #[test]
    fn an_address_in_use_is_refused() {
        let a: SocketAddr = "127.0.0.91:0".parse().expect("a");
        let peer: SocketAddr = "127.0.0.92:6118".parse().expect("a");
        let (_sock, m) = open(&UdpConfig::replicast(a, vec![peer])).expect("first");
        let again = open(&UdpConfig::replicast(m.own, vec![peer]));
        assert!(matches!(again, Err(BearerError::Io { .. })), "{again:?}");
    }

    /// A discovery message from the node at `media`.
    fn discovery_from(media: SocketAddr) -> Bytes {
        let d = tipc_wire::DiscoveryMsg {
            msg_type: tipc_wire::DiscoveryType::Req,
            flags: tipc_wire::Flags { non_seq: true, ..tipc_wire::Flags::default() },
            capabilities: 0,
            signature: 1,
            dest_domain: tipc_wire::NodeAddr(0),
            prev_node: tipc_wire::NodeAddr(0x0101_0001),
            net_id: 4711,
            media: MediaAddr::Udp(media),
            peer_net_hash: 0,
            suggested: tipc_wire::NodeAddr(0),
            node_id: None,
        };
        tipc_wire::Msg::Discovery(d).to_bytes().expect("encodes")
    }

    /// Replicast mode learns the announced address of a discovery
    /// message's sender, once, up to the cap, never our own, a listed
    /// peer, another family or a group; multicast mode learns nothing;
    /// other messages teach nothing.
    #[test]
    fn replicast_learns_peers_from_discovery() {
        let own: SocketAddr = "10.0.0.1:6118".parse().expect("a");
        let listed: SocketAddr = "10.0.0.2:6118".parse().expect("a");
        let m = UdpMedium { own, remote: vec![listed], learned: Default::default() };
        let new: SocketAddr = "10.0.0.3:6118".parse().expect("a");
        assert_eq!(m.learn(&discovery_from(new)), Some(new));
        assert_eq!(m.learn(&discovery_from(new)), None, "once");
        for a in [own, listed, "[fd00::3]:6118".parse().expect("a"), "228.0.18.103:6118".parse().expect("a")] {
            assert_eq!(m.learn(&discovery_from(a)), None, "{a}");
        }
        let mut not_discovery = discovery_from("10.0.0.4:6118".parse().expect("a")).to_vec();
        not_discovery[0] &= !(0xf << 1); // word 0 bits 25-28, the user: 13 -> 0
        assert_eq!(m.learn(&Bytes::from(not_discovery)), None);
        for i in 0..200u16 {
            let _ = m.learn(&discovery_from(SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 6118))));
        }
        assert_eq!(m.learned.lock().len(), MAX_LEARNED_PEERS, "capped");
        assert_eq!(m.peers().len(), 1 + MAX_LEARNED_PEERS);
        let mc = UdpMedium { own, remote: vec!["228.0.18.103:6118".parse().expect("a")], learned: Default::default() };
        assert_eq!(mc.learn(&discovery_from(new)), None, "multicast mode learns nothing");
        assert!(mc.peers().is_empty());
    }

    #[test]
    fn classify_filters_and_trims() {
        let c = Counters::default();
        let own: SocketAddr = "10.0.0.1:6118".parse().expect("a");
        let peer: SocketAddr = "10.0.0.2:6118".parse().expect("a");
        let mut buf = vec![0u8; 64];
        let w0 = (2u32 << 29) | (7 << 25) | (10 << 21) | 40;
        buf[..4].copy_from_slice(&w0.to_be_bytes());
        let f = classify(&c, own, peer, &buf, false).expect("taken");
        assert_eq!((f.msg.len(), f.src), (40, MediaAddr::Udp(peer)));
        assert!(classify(&c, own, own, &buf, false).is_none(), "our own, looped back");
        assert!(classify(&c, own, peer, &buf[..30], false).is_none(), "shorter than its size field");
        assert!(classify(&c, own, peer, &buf, true).is_none(), "cut to the buffer");
        assert!(classify(&c, own, peer, &buf[..10], false).is_none(), "shorter than a header");
        let s = c.snapshot();
        assert_eq!((s.drop_own, s.drop_malformed, s.rx_frames), (1, 3, 1));
    }
}
