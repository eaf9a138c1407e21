//! Encryption in the link layer: every frame out goes through
//! [`tipc_crypto::Crypto`] once keys are set, every frame in is opened
//! (or dropped and counted) before anything else looks at it, and the
//! MSG_CRYPTO key messages travel on the links (net/tipc/node.c
//! `tipc_rcv`, bearer.c `tipc_bearer_xmit`).
//!
//! As in the kernel, encryption happens per packet at the bearer, after
//! bundling, fragmentation and sequence numbering. Unlike the kernel, a
//! node with keys drops clear frames (the kernel's `tipc_rcv` takes them):
//! with a key set nobody without it is heard at all.

use bytes::{Bytes, BytesMut};
use tipc_crypto::{CryptoStats, DropReason, KeySpec, OVERHEAD, Sender, is_encrypted};
use tipc_wire::{Duration, Instant, NodeAddr, NodeId, UncheckedHeader, User};
use zeroize::{Zeroize, Zeroizing};

use crate::event::Transmit;
use crate::layer::LinkLayer;

impl LinkLayer {
    /// Sets a key as `tipc node set key` does ([`KeySpec`]: master,
    /// cluster or per-node). From now on every frame we send is encrypted
    /// and every clear or unauthenticated frame received is dropped and
    /// counted ([`LinkLayer::crypto_stats`]). With a master key, a session
    /// key is made and distributed at once, and each peer is switched to
    /// it as it reports reading it.
    ///
    /// `seed`: 32 bytes from the operating system's random generator; they
    /// seed the generator of session keys (this layer reads no randomness
    /// of its own).
    pub fn set_key(&mut self, now: Instant, spec: KeySpec, seed: [u8; 32]) {
        self.crypto.reseed(seed);
        self.crypto.set_own_addr(self.disc.addr.0);
        self.crypto.set_key(now, spec);
        for p in self.peers.values() {
            if p.node_up {
                self.crypto.node_known(p.addr.0, p.id);
            }
        }
        self.set_crypto_room();
        self.send_key_msgs(now);
    }

    /// Removes every key (`tipc node flush key`): frames go out clear again
    /// and clear frames are taken again.
    pub fn flush_keys(&mut self) {
        self.crypto.flush();
        self.set_crypto_room();
    }

    /// Makes and distributes a new session key now (`tipc node set key
    /// rekeying now`); peers switch to it as they report reading it, with
    /// nothing lost. False if skipped: no key set, or the last new key is
    /// still pending.
    pub fn rekey(&mut self, now: Instant) -> bool {
        let made = self.crypto.rekey(now);
        self.send_key_msgs(now);
        made
    }

    /// Rekeys every `every` (`tipc node set key rekeying MINUTES`); `None`
    /// stops it. The kernel's default is 24 h.
    pub fn set_rekey_interval(&mut self, now: Instant, every: Option<Duration>) {
        self.crypto.set_rekey_interval(now, every);
    }

    /// Whether keys are set.
    pub fn encrypting(&self) -> bool {
        self.crypto.is_on()
    }

    /// The crypto layer's counters: frames encrypted and opened, drops by
    /// reason, key messages, the key slots in use. Never key material.
    pub fn crypto_stats(&self) -> CryptoStats {
        self.crypto.stats()
    }

    /// (the slot of our key `node` reads with, the slot of its key we read
    /// with); 0 for none.
    pub fn key_slots(&self, node: NodeAddr) -> (u8, u8) {
        self.crypto.peer_slots(node.0)
    }

    /// Keeps [`OVERHEAD`] bytes of every packet free while keys are set.
    fn set_crypto_room(&mut self) {
        let room = if self.crypto.is_on() { OVERHEAD } else { 0 };
        self.disc.crypto_room = room;
        for p in self.peers.values_mut() {
            for e in p.ends.iter_mut().flatten() {
                e.link.room = room;
            }
        }
    }

    /// Sends the key messages the crypto layer has queued: to all on the
    /// broadcast link, or to one node on its link. One that cannot go now
    /// (no link yet) is not kept: a node whose link comes up later gets our
    /// key then, by unicast.
    pub(crate) fn send_key_msgs(&mut self, now: Instant) {
        self.crypto.set_own_addr(self.disc.addr.0);
        while let Some((dest, m)) = self.crypto.poll_key_msg() {
            if dest == 0 {
                if self.bcast_receivers() > 0 {
                    let _ = self.broadcast(now, m);
                }
            } else {
                let _ = self.send(now, NodeAddr(dest), m);
            }
        }
    }

    /// The next frame to send, encrypted if keys are set.
    pub(crate) fn next_frame(&mut self) -> Option<Transmit> {
        loop {
            if let Some(t) = self.crypt_out.pop_front() {
                return Some(t);
            }
            let t = self.out.tx.pop_front()?;
            if !self.crypto.is_on() {
                return Some(t);
            }
            self.crypto.set_own_addr(self.disc.addr.0);
            let mut frames = std::mem::take(&mut self.crypt_scratch);
            self.crypto.encrypt(&t.msg, t.node.map(|n| n.0), &mut frames);
            for f in frames.drain(..) {
                self.crypt_out.push_back(Transmit { bearer: t.bearer, dst: t.dst, msg: f, node: t.node });
            }
            self.crypt_scratch = frames;
        }
    }

    /// A received frame opened for the rest of the layer: the plain
    /// message, or `None` if it was dropped (and counted). Without keys,
    /// clear frames pass untouched.
    pub(crate) fn open_frame(&mut self, now: Instant, frame: Bytes) -> Option<Bytes> {
        self.rx_decrypted = false;
        if !is_encrypted(&frame) {
            if self.crypto.is_on() {
                self.crypto.count_drop(DropReason::Clear);
                return None;
            }
            return Some(frame);
        }
        self.crypto.set_own_addr(self.disc.addr.0);
        let peers = &self.peers;
        let peer_of = |sender| {
            let p = match sender {
                Sender::Addr(a) => peers.get(&NodeAddr(a)),
                Sender::Id(id) => peers.values().find(|p| p.id == NodeId(id)),
            };
            p.map(|p| (p.addr.0, p.id))
        };
        let msg = self.crypto.decrypt(now, frame, peer_of).ok()?;
        self.rx_decrypted = true;
        Some(msg)
    }

    /// A MSG_CRYPTO message delivered by a link from `from`: handed to the
    /// crypto layer (dropped unless the frame that carried it was
    /// encrypted).
    pub(crate) fn key_msg(&mut self, now: Instant, from: NodeAddr, m: &[u8]) {
        let _ = self.crypto.receive_key_msg(from.0, m, self.rx_decrypted);
        self.send_key_msgs(now);
    }

    /// Crypto work on the timer: key switches, unicast key messages,
    /// rekeying.
    pub(crate) fn crypto_timeout(&mut self, now: Instant) {
        if self.crypto.poll_timeout().is_some_and(|t| t <= now) {
            self.crypto.handle_timeout(now);
            self.send_key_msgs(now);
        }
    }

    /// A node came up (`up`) or went down: the crypto layer learns it.
    pub(crate) fn crypto_node(&mut self, now: Instant, peer: NodeAddr, up: bool) {
        if !self.crypto.is_on() {
            return;
        }
        if up {
            if let Some(id) = self.peers.get(&peer).map(|p| p.id) {
                self.crypto.node_known(peer.0, id);
            }
            self.crypto.peer_up(now, peer.0);
        } else {
            self.crypto.peer_down(now, peer.0);
        }
    }
}

/// Freezes a stamped packet. A MSG_CRYPTO one (a session key inside) goes
/// into a buffer that is zeroed when its last copy is dropped, and the
/// working copy is zeroed now; any other is frozen as it is.
pub(crate) fn freeze(mut b: BytesMut) -> Bytes {
    if UncheckedHeader::new(&b[..]).user() == User::MsgCrypto {
        let z = Zeroizing::new(b.to_vec());
        b.as_mut().zeroize();
        return Bytes::from_owner(z);
    }
    b.freeze()
}
