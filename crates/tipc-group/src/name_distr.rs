//! Name distribution: the bulk sent when a node comes up, single updates,
//! and the kernel's receive ordering.

use std::collections::BTreeMap;

use tipc_wire::{BC_ACK_INVALID, IntHdr, NameDistrMsg, NameDistrType, NodeAddr, PublItem, SeqNo};

/// An update to apply to the name table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameUpdate {
    /// Publication or withdrawal.
    pub kind: NameDistrType,
    /// The item.
    pub item: PublItem,
}

#[derive(Debug, Default)]
struct FromNode {
    expected: Option<u16>,
    waiting: BTreeMap<u16, NameDistrMsg>,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DistrStats {
    /// Updates applied.
    pub applied: u64,
    /// Stale (old sequence number) updates dropped.
    pub stale: u64,
    /// Updates waiting for an earlier one, dropped because the queue was full.
    pub overflow: u64,
}

/// Maximum updates held per node while waiting for a gap.
pub const MAX_WAITING: usize = 4096;

/// The distributor of one node.
#[derive(Debug)]
pub struct NameDistr {
    seqno: u16,
    from: BTreeMap<NodeAddr, FromNode>,
    stats: DistrStats,
}

impl Default for NameDistr {
    fn default() -> Self {
        NameDistr { seqno: 1, from: BTreeMap::new(), stats: DistrStats::default() }
    }
}

impl NameDistr {
    /// A fresh distributor.
    pub fn new() -> Self {
        Self::default()
    }
    /// Counters.
    pub fn stats(&self) -> DistrStats {
        self.stats
    }

    /// The bulk for a peer that just came up: all our cluster-scope bindings,
    /// as many per message as fit `mtu`, the last marked last-bulk and
    /// carrying the sequence number of our next single update.
    pub fn bulk(&self, own: NodeAddr, peer: NodeAddr, items: &[PublItem], mtu: usize) -> Vec<NameDistrMsg> {
        let per = ((mtu.saturating_sub(80)) / PublItem::LEN).max(1);
        let hdr = IntHdr { prev_node: own, orig_node: own, dest_node: peer, ..IntHdr::default() };
        // an empty table still gets one (empty) last-bulk message: it carries our seqno
        let chunks: Vec<&[PublItem]> = if items.is_empty() { vec![&[]] } else { items.chunks(per).collect() };
        let mut out: Vec<NameDistrMsg> = chunks
            .into_iter()
            .map(|c| NameDistrMsg {
                msg_type: NameDistrType::Publication,
                hdr,
                bulk: true,
                last_bulk: false,
                non_legacy: true,
                name_seqno: 0,
                word5: BC_ACK_INVALID,
                items: c.to_vec(),
            })
            .collect();
        if let Some(l) = out.last_mut() {
            l.last_bulk = true;
            l.name_seqno = self.seqno;
        }
        out
    }

    /// One update for every peer (the same message, its destination filled
    /// in per copy). Advances our sequence number.
    pub fn update(&mut self, own: NodeAddr, kind: NameDistrType, item: PublItem) -> NameDistrMsg {
        let m = NameDistrMsg {
            msg_type: kind,
            hdr: IntHdr { prev_node: own, orig_node: own, ..IntHdr::default() },
            bulk: false,
            last_bulk: false,
            non_legacy: true,
            name_seqno: self.seqno,
            word5: 0,
            items: vec![item],
        };
        self.seqno = self.seqno.wrapping_add(1);
        m
    }

    /// Forgets a node that went down.
    pub fn node_down(&mut self, node: NodeAddr) {
        self.from.remove(&node);
    }

    /// Receives a message from `node`; returns the updates to apply now, in order.
    pub fn receive(&mut self, node: NodeAddr, m: NameDistrMsg) -> Vec<NameUpdate> {
        let mut out = Vec::new();
        let f = self.from.entry(node).or_default();
        if m.bulk || !m.non_legacy {
            if m.last_bulk {
                f.expected = Some(m.name_seqno);
            }
            out.extend(m.items.iter().map(|&item| NameUpdate { kind: m.msg_type, item }));
        } else {
            match f.expected {
                Some(e) if SeqNo(m.name_seqno).lt(SeqNo(e)) => {
                    self.stats.stale += 1;
                }
                _ => {
                    if f.waiting.len() >= MAX_WAITING {
                        self.stats.overflow += 1;
                    } else {
                        f.waiting.insert(m.name_seqno, m);
                    }
                }
            }
        }
        while let Some(e) = f.expected {
            let Some(m) = f.waiting.remove(&e) else { break };
            out.extend(m.items.iter().map(|&item| NameUpdate { kind: m.msg_type, item }));
            f.expected = Some(e.wrapping_add(1));
        }
        self.stats.applied += out.len() as u64;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tipc_wire::{Instance, PortId, ServiceType};

    fn item(i: u32) -> PublItem {
        PublItem { stype: ServiceType(1000), lower: Instance(i), upper: Instance(i), port: PortId(7), key: i }
    }

    #[test]
    fn ordering_follows_the_kernel() {
        let mut tx = NameDistr::new();
        let mut rx = NameDistr::new();
        let bulk = tx.bulk(NodeAddr(1), NodeAddr(2), &[item(1), item(2)], 1500);
        let u1 = tx.update(NodeAddr(1), NameDistrType::Publication, item(3));
        let u2 = tx.update(NodeAddr(1), NameDistrType::Withdrawal, item(3));
        // an update before the bulk waits
        assert!(rx.receive(NodeAddr(1), u2.clone()).is_empty());
        let got = rx.receive(NodeAddr(1), bulk[0].clone());
        assert_eq!(got.len(), 2);
        let got = rx.receive(NodeAddr(1), u1);
        assert_eq!(
            got.iter().map(|u| u.kind).collect::<Vec<_>>(),
            vec![NameDistrType::Publication, NameDistrType::Withdrawal]
        );
        assert!(rx.receive(NodeAddr(1), u2).is_empty(), "stale copy dropped");
    }

    fn update_seq(tx: &mut NameDistr, n: usize) -> Vec<NameDistrMsg> {
        (0..n).map(|i| tx.update(NodeAddr(1), NameDistrType::Publication, item(100 + i as u32))).collect()
    }

    /// A bulk is cut into messages of as many 20-byte items as fit the
    /// MTU less 80 bytes of headers; only the last is LAST_BULK and carries
    /// our next sequence number; every bulk message has the broadcast
    /// acknowledgement marked invalid (word 5 bit 14, as net/tipc/name_distr.c
    /// named_distribute sets it). Bulks and updates name us as previous
    /// and originating node.
    #[test]
    fn bulk_fills_messages_to_the_mtu_and_marks_the_last() {
        let mut tx = NameDistr::new();
        let last = update_seq(&mut tx, 3).pop().map(|m| m.name_seqno).expect("three updates");
        let items: Vec<PublItem> = (0..150).map(item).collect();
        let bulk = tx.bulk(NodeAddr(1), NodeAddr(2), &items, 1500);
        let per = (1500 - 80) / PublItem::LEN;
        assert_eq!(bulk.iter().map(|m| m.items.len()).collect::<Vec<_>>(), [per, per, 150 - 2 * per]);
        assert_eq!(bulk.iter().map(|m| m.last_bulk).collect::<Vec<_>>(), [false, false, true]);
        assert_eq!(bulk[2].name_seqno, last.wrapping_add(1), "the next update's number");
        for m in &bulk {
            assert!(m.bulk && m.non_legacy);
            assert_eq!(m.word5, BC_ACK_INVALID);
            assert_eq!((m.hdr.prev_node, m.hdr.orig_node, m.hdr.dest_node), (NodeAddr(1), NodeAddr(1), NodeAddr(2)));
        }
        let u = tx.update(NodeAddr(1), NameDistrType::Withdrawal, item(1));
        assert_eq!((u.hdr.prev_node, u.hdr.orig_node, u.name_seqno), (NodeAddr(1), NodeAddr(1), last.wrapping_add(1)));
        assert!(!u.bulk);
    }

    /// Stale updates, updates past the waiting cap and applied items are
    /// counted where stats shows them.
    #[test]
    fn stale_overflowing_and_applied_updates_are_counted() {
        let mut tx = NameDistr::new();
        let mut rx = NameDistr::new();
        let early = update_seq(&mut tx, 2);
        let bulk = tx.bulk(NodeAddr(1), NodeAddr(2), &[item(1), item(2)], 1500);
        assert_eq!(rx.receive(NodeAddr(1), bulk[0].clone()).len(), 2);
        // the two updates numbered before the bulk are stale
        for m in early {
            assert!(rx.receive(NodeAddr(1), m).is_empty());
        }
        assert_eq!(rx.stats().stale, 2);
        assert_eq!(rx.stats().applied, 2);
        // from a node whose bulk has not come, at most MAX_WAITING wait
        let mut other = NameDistr::new();
        for m in update_seq(&mut other, MAX_WAITING + 2) {
            rx.receive(NodeAddr(3), m);
        }
        assert_eq!(rx.stats().overflow, 2);
        assert_eq!(rx.stats().stale, 2);
    }

    /// A node that went down starts over: what waited from its old life is
    /// gone, and its new bulk alone is applied.
    #[test]
    fn a_node_down_forgets_what_waited_from_it() {
        let mut old = NameDistr::new();
        let mut rx = NameDistr::new();
        let waiting = update_seq(&mut old, 1).remove(0);
        assert!(rx.receive(NodeAddr(1), waiting).is_empty(), "waits for the bulk");
        rx.node_down(NodeAddr(1));
        // the restarted node's bulk expects sequence number 0 next
        let fresh = NameDistr::new().bulk(NodeAddr(1), NodeAddr(2), &[item(9)], 1500);
        let got = rx.receive(NodeAddr(1), fresh[0].clone());
        assert_eq!(got.iter().map(|u| u.item.key).collect::<Vec<_>>(), [9], "the old update is not applied");
    }
}
