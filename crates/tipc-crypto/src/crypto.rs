//! The crypto state of one node (sans-IO): our transmit keys, each peer's
//! receive keys, the choice of key per frame, the replay windows and the
//! key exchange (net/tipc/crypto.c).
//!
//! Time comes in as an argument; randomness (session keys, delays) comes
//! from a ChaCha20 generator the driver seeds.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::{Buf, Bytes, BytesMut};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use tipc_wire::{Duration, Instant, LinkProtoType, NodeId, UncheckedHeader, User};
use zeroize::{Zeroize, Zeroizing};

use crate::ehdr::{EHDR_CFG_SIZE, EHDR_USER_CFG, EHDR_USER_STATE, EncHeader, Sender, TAG_SIZE};
use crate::error::{CryptoError, DropReason};
use crate::key::{AeadKey, Cipher, KeyRole, KeySpec};
use crate::msg::{KEY_DISTR_MSG, KeyDistr, KeyMode};
use crate::replay::ReplayWindow;
use crate::stats::CryptoStats;

/// How long the users of our transmit keys must stay unchanged before a
/// pending key becomes the active one (the kernel's 10 s,
/// `TIPC_TX_LASTING_TIME` in net/tipc/crypto.c; measured 10.3–10.4 s against
/// Linux 6.1 kernel nodes).
pub const TX_SWITCH_DELAY: Duration = Duration::from_secs(10);
/// A passive receive key is freed this long after it last opened a frame
/// (`TIPC_RX_PASSIVE_TIMEOUT`, 15 s).
pub const RX_PASSIVE_TIMEOUT: Duration = Duration::from_secs(15);
/// A pending receive key that failed this many times is removed.
pub const MAX_PENDING_FAILURES: u32 = 10;
/// How often the key states are revisited while keys are set (the kernel
/// does it from its node timer, every ≈ 375 ms).
pub const TICK: Duration = Duration::from_millis(250);
/// The most senders whose master-key frames get a replay window (beyond
/// the cluster's size; windows are made only for authenticated frames).
pub const MAX_SENDERS: usize = 4096;
/// The least time between two unicast KEY_DISTR to one node (5 s).
pub const DISTR_RETRY: Duration = Duration::from_secs(5);

/// One of our transmit keys.
#[derive(Debug)]
struct TxKey {
    key: AeadKey,
    cipher: Cipher,
    mode: KeyMode,
    /// The last sequence number used (one counter per key, as the Linux 6.1
    /// nodes of captures 17 and 18 keep it).
    seqno: u64,
    generation: u16,
}

impl TxKey {
    fn new(key: AeadKey, mode: KeyMode, generation: u16) -> TxKey {
        TxKey { cipher: Cipher::new(&key), key, mode, seqno: 0, generation }
    }
}

/// One receive key of a peer.
#[derive(Debug)]
struct RxKey {
    cipher: Cipher,
    key: AeadKey,
    mode: KeyMode,
    window: ReplayWindow,
    last_ok: Option<Instant>,
    failures: u32,
}

impl RxKey {
    fn new(key: AeadKey, mode: KeyMode) -> RxKey {
        RxKey { cipher: Cipher::new(&key), key, mode, window: ReplayWindow::default(), last_ok: None, failures: 0 }
    }
}

/// What we know of one peer node.
#[derive(Debug, Default)]
struct Peer {
    /// Its keys in slots 1–3 (index 0–2).
    rx: [Option<RxKey>; 3],
    pending: u8,
    active: u8,
    passive: u8,
    /// Its identity, once known.
    id: Option<NodeId>,
    /// The slot of ours it reads with (its last `rx_key_active` to us).
    reads_ours: u8,
    /// It holds a master key (its last M flag).
    has_master: bool,
    /// We lack its key: N = 1 in our frames to it.
    nokey: bool,
    /// A unicast KEY_DISTR to it is due at this time.
    distr_at: Option<Instant>,
    /// When we last sent it a unicast KEY_DISTR.
    last_distr: Option<Instant>,
    /// The generation of the last key it distributed to us.
    last_gen: Option<u16>,
}

impl Peer {
    fn slot(&mut self, s: u8) -> Option<&mut RxKey> {
        self.rx.get_mut(usize::from(s).wrapping_sub(1)).and_then(Option::as_mut)
    }
    fn has_keys(&self) -> bool {
        self.rx.iter().any(Option::is_some)
    }
}

/// The crypto state of one node. Off (every frame clear) until a key is
/// set with [`Crypto::set_key`].
#[derive(Debug)]
pub struct Crypto {
    own_id: NodeId,
    own: u32,
    master: Option<TxKey>,
    tx: [Option<TxKey>; 3],
    tx_pending: u8,
    tx_active: u8,
    generation: u16,
    peers: BTreeMap<u32, Peer>,
    /// `nodeid PEER` keys waiting for that peer to be heard.
    manual: HashMap<NodeId, AeadKey>,
    users_changed: Instant,
    /// Replay windows of master-key frames, per sender as the ehdr names
    /// it (made only for frames that authenticated).
    master_windows: HashMap<Sender, ReplayWindow>,
    rng: ChaCha20Rng,
    /// KEY_DISTR to send: (destination, 0 for all; slot of the key).
    distr: VecDeque<(u32, u8)>,
    rekey_interval: Option<Duration>,
    next_rekey: Option<Instant>,
    next_tick: Option<Instant>,
    stats: CryptoStats,
}

/// The slot after `s` in the ring 1 → 2 → 3 → 1 (0 → 1).
fn next_slot(s: u8) -> u8 {
    s % 3 + 1
}

/// The nonce: the salt XOR the mode's word, then the ehdr's sequence
/// number (net/tipc/crypto.c `tipc_aead_encrypt`). `dest` is the destination
/// address for a per-node key and D = 1. The kernel XORs a host-order u32, so
/// on x86 the address bytes enter reversed: we do the same on every host.
pub(crate) fn nonce(key: &AeadKey, mode: KeyMode, eh: &EncHeader, dest: u32) -> [u8; 12] {
    let x: [u8; 4] = match mode {
        KeyMode::Cluster => {
            let w = eh.sender.nonce_word();
            [w[3], w[2], w[1], w[0]]
        }
        KeyMode::PerNode if eh.destined => dest.to_le_bytes(),
        KeyMode::PerNode => [0; 4],
    };
    let salt = key.salt();
    let mut n = [0u8; 12];
    for i in 0..4 {
        n[i] = salt[i] ^ x[i];
    }
    n[4..].copy_from_slice(&eh.seqno.to_be_bytes());
    n
}

/// What the key choice needs to know of an outgoing message.
#[derive(Clone, Copy, Debug)]
struct Kind {
    cfg: bool,
    proto: bool,
    state: bool,
    key_distr: bool,
    keepalive: bool,
}

impl Kind {
    fn of(msg: &[u8]) -> Kind {
        let h = UncheckedHeader::new(msg);
        let (user, mtype) = (h.user(), h.msg_type());
        let proto = user == User::LinkProtocol;
        let state = proto && mtype == u8::from(LinkProtoType::State);
        Kind {
            cfg: user == User::LinkConfig,
            proto,
            state,
            key_distr: user == User::MsgCrypto && mtype == KEY_DISTR_MSG,
            keepalive: state && h.keepalive(),
        }
    }
}

impl Crypto {
    /// A crypto layer for the node with identity `own_id`, with no key
    /// (off). `seed` seeds the generator of session keys and delays: give
    /// it 32 bytes from the operating system's generator.
    pub fn new(own_id: NodeId, seed: [u8; 32], now: Instant) -> Crypto {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let generation = (rng.next_u32() & 0xffff) as u16;
        Crypto {
            own_id,
            own: 0,
            master: None,
            tx: [None, None, None],
            tx_pending: 0,
            tx_active: 0,
            generation,
            peers: BTreeMap::new(),
            manual: HashMap::new(),
            users_changed: now,
            master_windows: HashMap::new(),
            rng,
            distr: VecDeque::new(),
            rekey_interval: None,
            next_rekey: None,
            next_tick: None,
            stats: CryptoStats::default(),
        }
    }

    /// Whether any key is set: then every frame we send is encrypted and
    /// every clear frame received is dropped.
    pub fn is_on(&self) -> bool {
        self.master.is_some() || self.tx.iter().any(Option::is_some) || !self.manual.is_empty()
    }

    /// Seeds the generator of session keys and delays anew (with 32 bytes
    /// from the operating system's generator).
    pub fn reseed(&mut self, seed: [u8; 32]) {
        self.rng = ChaCha20Rng::from_seed(seed);
        if !self.is_on() {
            self.generation = (self.rng.next_u32() & 0xffff) as u16;
        }
    }

    /// Counts a frame dropped by the caller (a clear frame while keys are set).
    pub fn count_drop(&mut self, reason: DropReason) {
        self.stats.count_drop(reason);
    }

    /// Our address (the short ehdr names it); set when it is confirmed.
    pub fn set_own_addr(&mut self, addr: u32) {
        self.own = addr;
    }

    /// Counters.
    pub fn stats(&self) -> CryptoStats {
        let mut s = self.stats;
        s.tx_active = self.tx_active;
        s.tx_pending = self.tx_pending;
        s.master = self.master.is_some();
        s.bits = self.master.as_ref().or(self.tx.iter().flatten().next()).map_or(0, |k| k.key.bits() as u16);
        s
    }

    /// The slot of our key that `peer` reads with, and the slot of its key
    /// we read with (0: none), as the key exchange stands.
    pub fn peer_slots(&self, peer: u32) -> (u8, u8) {
        self.peers.get(&peer).map_or((0, 0), |p| (p.reads_ours, p.active))
    }

    /// Sets a key as `tipc node set key` does (net/tipc/node.c
    /// `__tipc_nl_node_set_key`).
    /// A master key replaces the master key; with it, a session key of the
    /// same size is made at once and distributed (and every
    /// `rekey_interval` after, if set). A cluster key or our own per-node
    /// key becomes our pending transmit key and is distributed; a per-node
    /// key of another node is kept until that node is heard.
    pub fn set_key(&mut self, now: Instant, spec: KeySpec) {
        match spec.role {
            KeyRole::Master => {
                self.master = Some(TxKey::new(spec.key, KeyMode::Cluster, 0));
                if self.tx_pending == 0 && self.tx_active == 0 {
                    self.rekey(now);
                }
            }
            KeyRole::Cluster => self.add_tx(now, spec.key, KeyMode::Cluster),
            KeyRole::Node(id) if id == self.own_id => self.add_tx(now, spec.key, KeyMode::PerNode),
            KeyRole::Node(id) => {
                self.manual.insert(id, spec.key);
            }
        }
        self.next_tick.get_or_insert(now + TICK);
    }

    /// Sets the interval of automatic rekeying (`tipc node set key
    /// rekeying MINUTES`); `None` turns it off. The next rekey is one
    /// interval from `now`.
    pub fn set_rekey_interval(&mut self, now: Instant, every: Option<Duration>) {
        self.rekey_interval = every.filter(|d| *d > Duration::ZERO);
        self.next_rekey = self.rekey_interval.map(|d| now + d);
    }

    /// Removes every key (`tipc node flush key`): frames go out clear again.
    pub fn flush(&mut self) {
        self.master = None;
        self.tx = [None, None, None];
        self.tx_pending = 0;
        self.tx_active = 0;
        self.peers.clear();
        self.master_windows.clear();
        self.manual.clear();
        self.distr.clear();
        self.next_rekey = None;
        self.next_tick = None;
    }

    /// Makes a new session key (`tipc node set key rekeying now`): random
    /// key and salt of the size of the active key (else the master key),
    /// pending in the next slot, and distributed to every node. Skipped
    /// while a key is still pending or no key is set. True if made.
    pub fn rekey(&mut self, now: Instant) -> bool {
        if self.tx_pending != 0 {
            return false;
        }
        let Some(len) = self.tx_key(self.tx_active).or(self.master.as_ref()).map(|k| k.key.len()) else {
            return false;
        };
        let mut bytes = Zeroizing::new([0u8; crate::key::MAX_KEY_LEN]);
        self.rng.fill_bytes(&mut bytes[..len]);
        let Ok(key) = AeadKey::new(&bytes[..len]) else { return false };
        self.add_tx(now, key, KeyMode::PerNode);
        self.stats.rekeys += 1;
        if let Some(d) = self.rekey_interval {
            self.next_rekey = Some(now + d);
        }
        true
    }

    fn add_tx(&mut self, now: Instant, key: AeadKey, mode: KeyMode) {
        let slot = if self.tx_pending != 0 { self.tx_pending } else { next_slot(self.tx_active) };
        self.generation = self.generation.wrapping_add(1);
        self.tx[usize::from(slot - 1)] = Some(TxKey::new(key, mode, self.generation));
        self.tx_pending = slot;
        self.users_changed = now;
        self.distr.push_back((0, slot));
        self.next_tick.get_or_insert(now + TICK);
    }

    fn tx_key(&self, slot: u8) -> Option<&TxKey> {
        match slot {
            0 => self.master.as_ref(),
            s => self.tx.get(usize::from(s) - 1).and_then(Option::as_ref),
        }
    }

    /// A peer's link came up: it gets our newest key by unicast, in case it
    /// missed the broadcast (a node that joins later).
    pub fn peer_up(&mut self, now: Instant, peer: u32) {
        let newest = if self.tx_pending != 0 { self.tx_pending } else { self.tx_active };
        if newest != 0 {
            let p = self.peers.entry(peer).or_default();
            p.distr_at = Some(now);
        }
    }

    /// A peer's last link went down at `now`: its replay windows restart
    /// (a restarted kernel node numbers from 1 again), its keys stay, and
    /// it no longer reads any key of ours (a change of readers, which
    /// restarts the quiet period before a switch, as any change does).
    pub fn peer_down(&mut self, now: Instant, peer: u32) {
        self.master_windows.remove(&Sender::Addr(peer));
        if let Some(p) = self.peers.get_mut(&peer) {
            if let Some(id) = p.id {
                self.master_windows.remove(&Sender::Id(id.0));
            }
            for k in p.rx.iter_mut().flatten() {
                k.window = ReplayWindow::default();
            }
            if p.reads_ours != 0 {
                p.reads_ours = 0;
                self.users_changed = now;
            }
        }
    }

    /// Encrypts one TIPC message for the wire; pushes the frames to send,
    /// in order, onto `out`: none if no key can carry it (counted), two
    /// when a pending key is probed with a copy first (as `tipc_crypto_xmit`
    /// does).
    /// `dest` is the peer node when the message goes on a link to it
    /// (D = 1), `None` for discovery and the broadcast link.
    pub fn encrypt(&mut self, msg: &[u8], dest: Option<u32>, out: &mut Vec<Bytes>) {
        let kind = Kind::of(msg);
        let (main, probe) = self.choose(kind, dest);
        if let Some(p) = probe {
            self.seal(p, kind, msg, dest, out);
        }
        match main {
            Some(k) => self.seal(k, kind, msg, dest, out),
            None => self.stats.tx_no_key += 1,
        }
    }

    /// The key for a message, and a pending key to probe with first
    /// (net/tipc/crypto.c `tipc_crypto_xmit`, with one change: a frame to a
    /// peer goes with a session key only once the peer says it reads that
    /// key, else with the master key, so a peer that missed a key exchange is
    /// never sent what it cannot read).
    fn choose(&self, kind: Kind, dest: Option<u32>) -> (Option<u8>, Option<u8>) {
        let pending = self.tx_pending;
        let active = self.tx_active;
        let master = self.master.is_some();
        let opt = |s: u8| (s != 0).then_some(s);
        let main = match dest {
            Some(d) => {
                let reads = self.peers.get(&d).map_or(0, |p| p.reads_ours);
                if reads != 0 && (reads == pending || reads == active) {
                    Some(reads)
                } else if master {
                    Some(0)
                } else {
                    opt(active).or(opt(pending))
                }
            }
            None if kind.cfg || kind.key_distr => {
                if master {
                    Some(0)
                } else {
                    opt(active).or(opt(pending))
                }
            }
            None => {
                // the broadcast link: the active key once every peer reads it
                let all_read = active != 0 && self.peers.values().all(|p| p.reads_ours == active || p.reads_ours == 0);
                let some_read = self.peers.values().any(|p| p.reads_ours == active);
                if active != 0 && (!master || (all_read && some_read)) {
                    Some(active)
                } else if master {
                    Some(0)
                } else {
                    opt(pending)
                }
            }
        };
        // probing copies of link-configuration and link-protocol frames: with
        // a pending key (as `tipc_crypto_xmit`), and towards a peer that does
        // not yet report reading our newest key (one that joined or restarted
        // after we made it: it has the key by unicast KEY_DISTR, and the
        // probe is what lets it take the key into use)
        let newest = if pending != 0 { pending } else { active };
        let unread = dest.is_some_and(|d| self.peers.get(&d).is_none_or(|p| p.reads_ours != newest));
        let probe = if pending != 0 && main != Some(pending) && (kind.cfg || kind.proto) {
            Some(pending)
        } else if kind.proto && newest != 0 && main == Some(0) && unread {
            Some(newest)
        } else {
            None
        };
        (main, probe)
    }

    fn seal(&mut self, slot: u8, kind: Kind, msg: &[u8], dest: Option<u32>, out: &mut Vec<Bytes>) {
        let own = self.own;
        let own_id = self.own_id.0;
        let (reads, nokey) = dest.and_then(|d| self.peers.get(&d)).map_or((0, false), |p| (p.active, p.nokey));
        let has_master = self.master.is_some();
        let k = match slot {
            0 => self.master.as_mut(),
            s => self.tx.get_mut(usize::from(s) - 1).and_then(Option::as_mut),
        };
        let Some(k) = k else {
            self.stats.tx_no_key += 1;
            return;
        };
        if k.seqno == u64::MAX {
            // the kernel revokes a key before its counter wraps
            self.stats.tx_no_key += 1;
            return;
        }
        k.seqno += 1;
        let eh = EncHeader {
            user: if kind.cfg {
                EHDR_USER_CFG
            } else if kind.state {
                EHDR_USER_STATE
            } else {
                0
            },
            destined: dest.is_some(),
            tx_key: slot,
            rx_key_active: if dest.is_some() { reads } else { 0 },
            keepalive: kind.keepalive,
            master: has_master,
            rx_nokey: dest.is_some() && nokey,
            seqno: k.seqno,
            sender: if kind.cfg { Sender::Id(own_id) } else { Sender::Addr(own) },
        };
        let hl = eh.len();
        // pad so that ehdr + message is a multiple of 4 (both ehdr forms are)
        let padded = hl + msg.len().next_multiple_of(4);
        let mut buf = Vec::with_capacity(padded + TAG_SIZE);
        buf.resize(hl, 0);
        if eh.write(&mut buf).is_err() {
            self.stats.tx_no_key += 1;
            return;
        }
        buf.extend_from_slice(msg);
        buf.resize(padded + TAG_SIZE, 0);
        let n = nonce(&k.key, k.mode, &eh, dest.unwrap_or(0));
        let (aad, rest) = buf.split_at_mut(hl);
        let (body, tag) = rest.split_at_mut(padded - hl);
        let t = k.cipher.seal(&n, aad, body);
        tag.copy_from_slice(&t);
        self.stats.tx_encrypted += 1;
        out.push(Bytes::from(buf));
    }

    /// Decrypts a received encrypted frame; returns the plain TIPC message
    /// (header and data; pad bytes removed when the inner size field says
    /// so). `peer_of` names the sender from what its encryption header says
    /// (an address, or an identity on discovery): its address and identity
    /// if it is a known node. The frame's buffer is decrypted in place when
    /// `frame` is its only reference, else copied once.
    ///
    /// # Errors
    ///
    /// The [`DropReason`] when the frame is dropped (also counted).
    pub fn decrypt(
        &mut self,
        now: Instant,
        frame: Bytes,
        peer_of: impl FnOnce(Sender) -> Option<(u32, NodeId)>,
    ) -> Result<Bytes, DropReason> {
        let r = self.open(now, frame, peer_of);
        if let Err(reason) = r {
            self.stats.count_drop(reason);
        }
        r
    }

    fn open(
        &mut self,
        now: Instant,
        frame: Bytes,
        peer_of: impl FnOnce(Sender) -> Option<(u32, NodeId)>,
    ) -> Result<Bytes, DropReason> {
        let eh = EncHeader::parse(&frame).map_err(|_| DropReason::Malformed)?;
        if !self.is_on() {
            return Err(DropReason::NoKey);
        }
        let known = peer_of(eh.sender);
        if let Some((addr, id)) = known
            && !self.manual.is_empty()
        {
            // a `nodeid` key waiting for this node
            self.node_known(addr, id);
        }
        let peer = known.map(|(addr, _)| addr);
        let hl = eh.len();
        let tag_at = frame.len() - TAG_SIZE;
        let own = self.own;
        let mut aad_buf = [0u8; EHDR_CFG_SIZE];
        aad_buf[..hl].copy_from_slice(&frame[..hl]);
        let mut tag_buf = [0u8; TAG_SIZE];
        tag_buf.copy_from_slice(&frame[tag_at..]);
        let (aad, tag) = (&aad_buf[..hl], &tag_buf[..]);
        // the ciphertext, decrypted in place below
        let mut body = frame.try_into_mut().unwrap_or_else(|f| BytesMut::from(&f[..]));
        body.truncate(tag_at);
        body.advance(hl);
        let slot = eh.tx_key;
        // an own key of cluster mode opens frames of any sender (AES-GCM
        // checks the tag before it decrypts: a failed try leaves `body` as it was)
        let own_cluster = |c: &Crypto, body: &mut [u8]| -> Option<u8> {
            let try_key = |k: &TxKey, body: &mut [u8]| k.cipher.open(&nonce(&k.key, k.mode, &eh, own), aad, body, tag);
            if slot == 0 {
                return c.master.as_ref().filter(|k| try_key(k, body)).map(|_| 0);
            }
            (1..=3u8).find(|&s| c.tx_key(s).is_some_and(|k| k.mode == KeyMode::Cluster && try_key(k, body)))
        };
        if slot == 0 {
            // the master key: one replay window per sender as the ehdr
            // names it (address or identity), known node or not
            if self.master.is_none() {
                return Err(DropReason::NoKey);
            }
            if self.master_windows.get(&eh.sender).is_some_and(|w| !w.fresh(eh.seqno)) {
                return Err(DropReason::Replay);
            }
            if own_cluster(self, &mut body).is_none() {
                return Err(DropReason::BadTag);
            }
            if self.master_windows.len() < MAX_SENDERS || self.master_windows.contains_key(&eh.sender) {
                self.master_windows.entry(eh.sender).or_default().accept(eh.seqno);
            }
            if let Some(addr) = peer {
                self.install_manual(addr, peer_id_hint(&eh));
            }
            return Ok(self.opened(now, &eh, body, peer));
        }
        let Some(addr) = peer else {
            // a sender we cannot name: our keys of cluster mode apply, and a
            // `nodeid` key set for the identity a long header names (as the
            // kernel keeps such a key under a node entry made for it)
            if own_cluster(self, &mut body).is_some() {
                return Ok(self.opened(now, &eh, body, None));
            }
            let manual = peer_id_hint(&eh).and_then(|id| self.manual.get(&NodeId(id)));
            if let Some(k) = manual
                && Cipher::new(k).open(&nonce(k, KeyMode::PerNode, &eh, own), aad, &mut body, tag)
            {
                return Ok(self.opened(now, &eh, body, None));
            }
            return Err(DropReason::UnknownKey);
        };
        self.install_manual(addr, peer_id_hint(&eh));
        let p = self.peers.entry(addr).or_default();
        if p.slot(slot).is_none() && p.pending != 0 && p.active == 0 {
            // realign: the peer numbers its key differently from our guess
            let from = usize::from(p.pending - 1);
            p.rx.swap(from, usize::from(slot - 1));
            p.pending = slot;
        }
        let was_pending = p.pending == slot;
        let Some(k) = p.slot(slot) else {
            // a cluster key of ours may be the one it uses
            if let Some(s) = own_cluster(self, &mut body) {
                if let Some(k) = self.tx_key(s).map(|k| k.key.clone()) {
                    let p = self.peers.entry(addr).or_default();
                    let mut rk = RxKey::new(k, KeyMode::Cluster);
                    rk.window = ReplayWindow::starting_at(eh.seqno);
                    p.rx[usize::from(slot - 1)] = Some(rk);
                    self.activate(addr, slot);
                }
                return Ok(self.opened(now, &eh, body, Some(addr)));
            }
            let p = self.peers.entry(addr).or_default();
            // we lack its key: say so in our frames (N), unless one it sent
            // is still waiting to be used (as `tipc_crypto_rcv`)
            if p.pending == 0 {
                p.nokey = true;
            }
            return Err(DropReason::UnknownKey);
        };
        if !k.window.fresh(eh.seqno) {
            return Err(DropReason::Replay);
        }
        let n = nonce(&k.key, k.mode, &eh, own);
        if !k.cipher.open(&n, aad, &mut body, tag) {
            k.failures += 1;
            if k.failures >= MAX_PENDING_FAILURES && was_pending {
                p.rx[usize::from(slot - 1)] = None;
                p.pending = 0;
            }
            return Err(DropReason::BadTag);
        }
        if was_pending {
            // the key's first frame: nothing at or below it is taken later
            // (frames recorded before we had the key, or numbered anew when
            // our report changes: net/tipc/crypto.c `tipc_crypto_key_synch`
            // restarts its per-peer counter then)
            k.window = ReplayWindow::starting_at(eh.seqno);
        } else {
            k.window.accept(eh.seqno);
        }
        k.last_ok = Some(now);
        k.failures = 0;
        if was_pending {
            self.activate(addr, slot);
        }
        Ok(self.opened(now, &eh, body, Some(addr)))
    }

    /// A peer's pending key in `slot` opened a frame: it becomes active,
    /// the old active one passive.
    fn activate(&mut self, addr: u32, slot: u8) {
        let Some(p) = self.peers.get_mut(&addr) else { return };
        if p.active != 0 && p.active != slot {
            p.passive = p.active;
        }
        p.active = slot;
        if p.pending == slot {
            p.pending = 0;
        }
        if p.passive == slot {
            p.passive = 0;
        }
        p.nokey = false;
        self.stats.rx_keys_activated += 1;
    }

    /// A frame opened: strip the pad, note what its ehdr says of the
    /// sender's view of our keys.
    fn opened(&mut self, now: Instant, eh: &EncHeader, mut body: BytesMut, addr: Option<u32>) -> Bytes {
        self.stats.rx_decrypted += 1;
        let h = UncheckedHeader::new(&body[..]);
        // a size within the pad is the message's (the kernel's
        // tipc_msg_validate takes the longer buffer too)
        let size = Some(h.size()).filter(|&s| s <= body.len()).unwrap_or(body.len());
        let user = h.user();
        if let Some(addr) = addr
            && eh.destined
            && h.header_len() >= 32
            && h.dest_node().0 == self.own
        {
            let p = self.peers.entry(addr).or_default();
            p.has_master = eh.master;
            if p.reads_ours != eh.rx_key_active {
                p.reads_ours = eh.rx_key_active;
                self.users_changed = now;
            }
            if eh.rx_nokey {
                // it cannot read our frames: it gets our newest key by
                // unicast after a random 0.5–2.5 s (no sooner than 5 s
                // after the last); meanwhile our frames to it use the
                // master key, as it reports reading none of ours
                let jitter = Duration::from_millis(500 + u64::from(self.rng.next_u32() % 2000));
                let p = self.peers.entry(addr).or_default();
                if p.distr_at.is_none() && p.last_distr.is_none_or(|t| now.since(t) >= DISTR_RETRY) {
                    p.distr_at = Some(now + jitter);
                }
            }
        } else if let Some(addr) = addr {
            self.peers.entry(addr).or_default().has_master = eh.master;
        }
        body.truncate(size);
        if user == User::MsgCrypto {
            // a key inside: kept in a buffer zeroed on drop, this one zeroed now
            let z = Zeroizing::new(body.to_vec());
            body.as_mut().zeroize();
            Bytes::from_owner(z)
        } else {
            body.freeze()
        }
    }

    /// Installs a `nodeid` key of the node whose identity `id` is, once
    /// it is heard at `addr`.
    fn install_manual(&mut self, addr: u32, id: Option<[u8; 16]>) {
        if self.manual.is_empty() {
            return;
        }
        let Some(key) = id.and_then(|id| self.manual.remove(&NodeId(id))) else { return };
        let p = self.peers.entry(addr).or_default();
        let slot = next_slot(p.active.max(p.passive));
        p.rx[usize::from(slot - 1)] = Some(RxKey::new(key, KeyMode::PerNode));
        p.pending = slot;
    }

    /// Tells the manual keys which node is at `addr` (the link layer knows
    /// identities from discovery).
    pub fn node_known(&mut self, addr: u32, id: NodeId) {
        self.peers.entry(addr).or_default().id = Some(id);
        self.install_manual(addr, Some(id.0));
    }

    /// A MSG_CRYPTO message `msg` from `peer` that arrived encrypted
    /// (`encrypted` false: it is dropped, as the kernel does since the
    /// CVE-2021-43267 fix).
    ///
    /// # Errors
    ///
    /// What [`KeyDistr::parse`] finds wrong, or
    /// [`CryptoError::KeyMessage`] for a clear one.
    pub fn receive_key_msg(&mut self, peer: u32, msg: &[u8], encrypted: bool) -> Result<(), CryptoError> {
        if !encrypted {
            self.stats.key_msgs_refused += 1;
            return Err(CryptoError::KeyMessage("arrived in clear"));
        }
        let kd = match KeyDistr::parse(msg) {
            Ok(kd) => kd,
            Err(e) => {
                self.stats.key_msgs_refused += 1;
                return Err(e);
            }
        };
        if kd.dest != 0 && kd.dest != self.own {
            self.stats.key_msgs_refused += 1;
            return Err(CryptoError::KeyMessage("for another node"));
        }
        let p = self.peers.entry(peer).or_default();
        if p.last_gen == Some(kd.generation) && p.has_keys() {
            // a repeat of a key we hold
            return Ok(());
        }
        let base = if p.active != 0 { p.active } else { p.passive };
        let slot = if p.pending != 0 { p.pending } else { next_slot(base) };
        p.rx[usize::from(slot - 1)] = Some(RxKey::new(kd.key, kd.mode));
        if p.passive == slot {
            p.passive = 0;
        }
        p.pending = slot;
        p.last_gen = Some(kd.generation);
        p.nokey = false;
        self.stats.key_msgs_received += 1;
        Ok(())
    }

    /// The next KEY_DISTR message to send: (destination, 0 for the
    /// broadcast link; the message, whose buffer is zeroed when dropped).
    pub fn poll_key_msg(&mut self) -> Option<(u32, Bytes)> {
        while let Some((dest, slot)) = self.distr.pop_front() {
            let Some(k) = self.tx_key(slot) else { continue };
            let m = KeyDistr { generation: k.generation, mode: k.mode, key: k.key.clone(), dest }.build(self.own);
            self.stats.key_msgs_sent += 1;
            return Some((dest, m));
        }
        None
    }

    /// When [`Crypto::handle_timeout`] is due next: `None` while off.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.is_on() {
            return None;
        }
        [self.next_tick, self.next_rekey].into_iter().flatten().min()
    }

    /// Key-state work (net/tipc/crypto.c `tipc_crypto_timeout`,
    /// `tipc_crypto_work_rx`, `tipc_crypto_work_tx`): switches our pending key
    /// to active once the peers read it and nobody reads the old one for
    /// [`TX_SWITCH_DELAY`], frees passive receive keys, sends due unicast
    /// key messages and rekeys on the interval.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.is_on() {
            return;
        }
        if self.next_rekey.is_some_and(|t| t <= now) {
            self.next_rekey = self.rekey_interval.map(|d| now + d);
            self.rekey(now);
        }
        if self.next_tick.is_some_and(|t| t > now) {
            return;
        }
        self.next_tick = Some(now + TICK);
        let (pending, active) = (self.tx_pending, self.tx_active);
        if pending != 0
            && now.since(self.users_changed) >= TX_SWITCH_DELAY
            && self.peers.values().any(|p| p.reads_ours == pending)
            && !self.peers.values().any(|p| active != 0 && p.reads_ours == active)
        {
            if active != 0 {
                self.tx[usize::from(active - 1)] = None;
            }
            self.tx_active = pending;
            self.tx_pending = 0;
            self.stats.tx_switches += 1;
        }
        let newest = if self.tx_pending != 0 { self.tx_pending } else { self.tx_active };
        for (&addr, p) in self.peers.iter_mut() {
            if p.passive != 0 {
                let idle = p.rx[usize::from(p.passive - 1)]
                    .as_ref()
                    .and_then(|k| k.last_ok)
                    .is_none_or(|t| now.since(t) >= RX_PASSIVE_TIMEOUT);
                if idle {
                    p.rx[usize::from(p.passive - 1)] = None;
                    p.passive = 0;
                }
            }
            if p.distr_at.is_some_and(|t| t <= now) {
                p.distr_at = None;
                if newest != 0 {
                    p.last_distr = Some(now);
                    self.distr.push_back((addr, newest));
                }
            }
        }
    }
}

/// Opens one encrypted frame with `key` in `mode`, keeping no state (for
/// tools that read captures, and tests). `dest` is the destination node
/// the frame was encrypted for (used by per-node keys with D = 1). Returns
/// the plain message with its pad bytes, or `None` if the frame is not an
/// encrypted one or does not authenticate.
pub fn open_with(key: &AeadKey, mode: KeyMode, frame: &[u8], dest: u32) -> Option<Vec<u8>> {
    let eh = EncHeader::parse(frame).ok()?;
    let hl = eh.len();
    let tag_at = frame.len() - TAG_SIZE;
    let mut body = frame[hl..tag_at].to_vec();
    let n = nonce(key, mode, &eh, dest);
    Cipher::new(key).open(&n, &frame[..hl], &mut body, &frame[tag_at..]).then_some(body)
}

/// The identity a long-form ehdr names.
fn peer_id_hint(eh: &EncHeader) -> Option<[u8; 16]> {
    match eh.sender {
        Sender::Id(id) => Some(id),
        Sender::Addr(_) => None,
    }
}
