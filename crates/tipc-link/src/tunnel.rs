//! The tunnel protocol between two parallel links to one node (net/tipc/
//! link.c `tipc_link_tnl_prepare`, `tipc_link_tnl_rcv`, node.c
//! `tipc_node_check_state`; capture 16 in tests/data/captures).
//!
//! - **Failover.** A link that fails while another to the same node is up
//!   hands its packets to the peer as FAILOVER_MSGs on the other link (the
//!   tunnel link), each wrapping one packet as it went on the failed link,
//!   split into tunnel fragments where it does not fit. The receiver
//!   delivers the wrapped packets from the failed link's *drop point* (the
//!   next seqno it expected there) on, in the failed link's order, merged
//!   with what the failed link had received out of order, and discards the
//!   ones it had already delivered. It ends when the tunnel link has
//!   received the last FAILOVER_MSG of the peer's batch (the sync point).
//! - **Synch.** A link that comes up beside an up one announces, in a
//!   header-only SYNCH_MSG, the last seqno the old link carries for what was
//!   queued before. The receiver holds back what arrives on the new link
//!   until the old link has delivered that far, so a sender moving to the
//!   new link is never overtaken by its own older messages. (The kernel
//!   drops instead of holding and lets the sender retransmit; holding is
//!   the same order with nothing resent.)

use bytes::{Bytes, BytesMut};
use tipc_wire::{Header, INT_H_SIZE, IntHdr, Msg, NodeAddr, Reassembler, SeqNo, TunnelMsg, TunnelType};

use crate::link::unpack;
use crate::node::DownReason;
use crate::stats::LinkStats;

/// Word 5 of a tunnel message: the receiver's bearer id of the link it is
/// about, in bits 9–11.
fn word5(peer_bearer: u8) -> u32 {
    u32::from(peer_bearer & 7) << 9
}

/// The bearer id a tunnel message names (word 5 bits 9–11).
pub(crate) fn bearer_of(t: &TunnelMsg) -> u8 {
    ((t.word5 >> 9) & 7) as u8
}

/// The dummy every failover batch ends with: a 32-byte DIRECT message from
/// `own` to port 0 of `peer` with error NO_PORT (net/tipc/link.c
/// `tipc_link_tnl_prepare`), which the receiver drops.
pub(crate) fn dummy(own: NodeAddr, peer: NodeAddr) -> Bytes {
    let mut d = tipc_wire::DataMsg::new(tipc_wire::DataType::Direct, Bytes::new());
    d.err = tipc_wire::ErrorCode::NoPort;
    d.orig_node = own;
    d.dest_node = peer;
    Msg::Data(d).to_bytes().unwrap_or_default()
}

/// A header-only SYNCH_MSG from `own` to `peer` (net/tipc/link.c
/// `tipc_link_tnl_prepare`): `old_peer_bearer` is the peer's bearer id of the
/// link already up, `point` the last seqno that link carries for what is
/// queued now.
pub(crate) fn synch_msg(own: NodeAddr, peer: NodeAddr, old_peer_bearer: u8, point: SeqNo) -> Bytes {
    let m = TunnelMsg {
        msg_type: TunnelType::Synch,
        hdr: IntHdr { prev_node: own, orig_node: own, dest_node: peer, ..IntHdr::default() },
        word4: 0,
        word5: word5(old_peer_bearer),
        word9: u32::from(point.0) << 16,
        payload: Bytes::new(),
    };
    Msg::Tunnel(m).to_bytes().unwrap_or_default()
}

/// The FAILOVER_MSGs that carry a failed link's `packets` (the peer's
/// bearer id of it `peer_bearer`) over a tunnel link of `tunnel_mtu`
/// (net/tipc/link.c `tipc_link_tnl_prepare`): one per packet, or, to a peer
/// with enhanced tunnelling, fragments of one where it does not fit. Every
/// message carries the batch's message count in word 9.
pub(crate) fn failover_msgs(
    own: NodeAddr,
    peer: NodeAddr,
    peer_bearer: u8,
    packets: Vec<Bytes>,
    tunnel_mtu: usize,
    enhanced: bool,
) -> Vec<Bytes> {
    let room = tunnel_mtu.saturating_sub(INT_H_SIZE).max(64);
    // (payload, fragment number, fragment count)
    let mut parts: Vec<(Bytes, u16, u16)> = Vec::new();
    for p in packets {
        if p.len() <= room || !enhanced {
            parts.push((p, 0, 0));
            continue;
        }
        let n = p.len().div_ceil(room);
        for i in 0..n {
            let chunk = p.slice(i * room..((i + 1) * room).min(p.len()));
            parts.push((chunk, i as u16 + 1, n as u16));
        }
    }
    let count = parts.len().min(usize::from(u16::MAX)) as u32;
    parts
        .into_iter()
        .filter_map(|(payload, no, of)| {
            let m = TunnelMsg {
                msg_type: TunnelType::Failover,
                hdr: IntHdr { prev_node: own, orig_node: own, dest_node: peer, ..IntHdr::default() },
                word4: (u32::from(no) << 16) | u32::from(of),
                word5: word5(peer_bearer),
                word9: count << 16,
                payload,
            };
            Msg::Tunnel(m).to_bytes().ok()
        })
        .collect()
}

/// The receive side of a failover: the failed link's receive state, kept
/// for the peer's tunnelled packets.
#[derive(Debug)]
pub(crate) struct FailoverRx {
    /// Our bearer of the failed link.
    pub failed: u8,
    /// Our bearer of the tunnel link.
    pub tunnel: u8,
    /// The next seqno of the failed link to deliver.
    drop_point: SeqNo,
    /// Packets of the failed link past the drop point, by seqno.
    deferred: Vec<(SeqNo, Bytes)>,
    /// A message the failed link was reassembling.
    reasm: Reassembler,
    /// A tunnel-fragmented packet being put together: (fragments so far, count, bytes).
    frag: Option<(u16, u16, BytesMut)>,
    /// The tunnel link's seqno of the peer's last FAILOVER_MSG, once its
    /// first has arrived.
    pub sync_point: Option<SeqNo>,
}

impl FailoverRx {
    /// The failed link's receive state: `drop_point` the next seqno it
    /// expected, `deferred` what it had received past that, `reasm` a
    /// message it was reassembling.
    pub fn new(failed: u8, tunnel: u8, drop_point: SeqNo, deferred: Vec<(SeqNo, Bytes)>, reasm: Reassembler) -> Self {
        let mut f =
            FailoverRx { failed, tunnel, drop_point, deferred: Vec::new(), reasm, frag: None, sync_point: None };
        for (s, m) in deferred {
            f.defer(s, m);
        }
        f
    }

    fn defer(&mut self, seq: SeqNo, m: Bytes) {
        let d = self.drop_point.distance_to(seq);
        if usize::from(d) > usize::from(crate::RCV_WINDOW) {
            return;
        }
        match self.deferred.binary_search_by_key(&d, |(s, _)| self.drop_point.distance_to(*s)) {
            Ok(_) => {}
            Err(i) => self.deferred.insert(i, (seq, m)),
        }
    }

    /// Whether every FAILOVER_MSG of the peer's batch arrived, with
    /// `tunnel_rcv_nxt` the tunnel link's next expected seqno.
    pub fn done(&self, tunnel_rcv_nxt: SeqNo) -> bool {
        self.sync_point.is_some_and(|sp| sp.lt(tunnel_rcv_nxt))
    }

    /// One FAILOVER_MSG that the tunnel link delivered in order as its
    /// packet `tunnel_seq`: notes the batch's end, puts tunnel fragments
    /// together, and delivers the wrapped packet and what follows it in the
    /// failed link's order into `deliver`. The dummy of every batch (to
    /// port 0, error set) is dropped here.
    ///
    /// # Errors
    ///
    /// A fragment of the failed link out of place (as on the link itself).
    pub fn receive(
        &mut self,
        tunnel_seq: SeqNo,
        t: TunnelMsg,
        stats: &mut LinkStats,
        deliver: &mut Vec<Bytes>,
    ) -> Result<(), DownReason> {
        let count = (t.word9 >> 16) as u16;
        let last = SeqNo(tunnel_seq.0.wrapping_add(count.max(1)).wrapping_sub(1));
        self.sync_point = Some(match self.sync_point {
            Some(sp) if sp.lt(last) => sp,
            _ => last,
        });
        let (no, of) = ((t.word4 >> 16) as u16, (t.word4 & 0xffff) as u16);
        let inner = if of == 0 {
            t.payload
        } else {
            match (&mut self.frag, no) {
                (_, 1) => {
                    self.frag = Some((1, of, BytesMut::from(&t.payload[..])));
                    return Ok(());
                }
                (Some((got, n, buf)), k) if k == *got + 1 && *n == of => {
                    buf.extend_from_slice(&t.payload);
                    *got = k;
                    if k < of {
                        return Ok(());
                    }
                    let whole = std::mem::take(buf).freeze();
                    self.frag = None;
                    stats.tunnel_reassembled += 1;
                    whole
                }
                _ => {
                    self.frag = None;
                    return Ok(());
                }
            }
        };
        let Ok(h) = Header::new_checked(inner.clone()) else { return Ok(()) };
        let seq = h.seqno();
        if seq.lt(self.drop_point) {
            stats.duplicates += 1;
            return Ok(());
        }
        if seq != self.drop_point {
            self.defer(seq, h.message());
            return Ok(());
        }
        let mut next = Some(h.message());
        while let Some(m) = next.take() {
            self.drop_point = self.drop_point.next();
            let mut out = Vec::new();
            unpack(m, &mut self.reasm, stats, &mut out)?;
            for m in out {
                if !is_dummy(&m) {
                    stats.tunnel_delivered += 1;
                    deliver.push(m);
                }
            }
            if self.deferred.first().is_some_and(|(s, _)| *s == self.drop_point) {
                next = Some(self.deferred.remove(0).1);
            }
        }
        Ok(())
    }
}

/// Whether a message is a failover batch's dummy: a data message to port 0
/// with an error code.
fn is_dummy(m: &[u8]) -> bool {
    // data header: word 1 bits 25-28 the error code, word 5 the destination port
    Header::new_checked(m)
        .is_ok_and(|h| h.user().is_data() && h.header_len() >= 24 && h.word(5) == 0 && (h.word(1) >> 25) & 0xf != 0)
}

/// The receive side of a synch: what arrives on the new link waits until
/// the old one has delivered up to the sync point.
#[derive(Debug)]
pub(crate) struct SynchRx {
    /// Our bearer of the new link.
    pub new: u8,
    /// Our bearer of the old link.
    pub old: u8,
    /// The old link's last seqno sent before the new link came up. (Should
    /// the old link fail first, the synch ends with its failover instead:
    /// all it carried has then arrived.)
    pub point: SeqNo,
    /// Messages of the new link, held in order.
    pub held: Vec<Bytes>,
}

#[cfg(test)]
mod tests;
