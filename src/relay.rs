//! A seeded fault-injecting relay between Ethernet segments, for the
//! reliability tests on real links (this kernel has no netem).
//!
//! It runs inside a namespace holding one interface per segment (see
//! [`crate::netns::Lab::relayed_pair`] and [`crate::netns::Lab::relayed_star`])
//! and switches every TIPC frame between them unchanged — MAC addresses
//! included, like a learning bridge: a frame to a known station goes out of
//! that station's port, a broadcast (or a frame to a station not yet seen)
//! out of every other port. Each copy it sends is first put to its
//! [`FaultInjector`], which may drop, duplicate, delay, reorder or corrupt
//! it. Corrupted frames are dropped by default, as an Ethernet FCS check
//! would drop them: TIPC carries no checksum of its own, so delivering them
//! tests hostile input, not link faults.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use parking_lot::Mutex;
use tipc_bearer_eth::sys::{self, EventFd, RecvMeta, SendItem};

use crate::fault::{FaultConfig, FaultInjector, FaultStats};
use crate::netns::{LabError, Netns};

/// Counters of one input port (for a two-port relay: one direction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayDirStats {
    /// Frames received on the input port.
    pub received: u64,
    /// Frames sent out of other ports (duplicates and flooded copies included).
    pub forwarded: u64,
    /// The injector's counters (one decision per copy sent).
    pub faults: FaultStats,
}

struct Dir {
    inj: Mutex<FaultInjector>,
    received: AtomicU64,
    forwarded: AtomicU64,
}

/// Which port each station (source MAC) was last seen on.
type Stations = Mutex<BTreeMap<[u8; 6], usize>>;

/// A running relay; dropping it stops and joins its threads.
pub struct Relay {
    stop: Arc<AtomicBool>,
    wake: Arc<EventFd>,
    dirs: Vec<Arc<Dir>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("stats", &self.stats()).finish()
    }
}

impl Relay {
    /// Starts relaying between `if_a` and `if_b` in `ns`, with faults from
    /// `cfg` applied in both directions. Each direction has its own generator
    /// derived from `seed`, so the same seed and the same input give the same
    /// decisions.
    pub fn start(ns: &Netns, if_a: &str, if_b: &str, cfg: FaultConfig, seed: u64) -> Result<Relay, LabError> {
        Relay::start_ports(ns, &[if_a, if_b], cfg, seed)
    }

    /// Starts a relay switching between all of `ports` (interfaces in `ns`),
    /// with faults from `cfg` applied to every copy it sends. Each input port
    /// has its own generator derived from `seed`.
    pub fn start_ports(ns: &Netns, ports: &[&str], cfg: FaultConfig, seed: u64) -> Result<Relay, LabError> {
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(EventFd::new()?);
        let stations: Arc<Stations> = Arc::new(Mutex::new(BTreeMap::new()));
        let dirs: Vec<Arc<Dir>> = (0..ports.len() as u64)
            .map(|i| {
                Arc::new(Dir {
                    inj: Mutex::new(FaultInjector::new(cfg, seed ^ (0xa5a5_0001 + i * 0x0101_0101))),
                    received: AtomicU64::new(0),
                    forwarded: AtomicU64::new(0),
                })
            })
            .collect();
        let mut relay = Relay { stop, wake, dirs, threads: Vec::new() };
        let names: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
        for i in 0..names.len() {
            let all = names.clone();
            let (stop, wake, dir, stations) =
                (relay.stop.clone(), relay.wake.clone(), relay.dirs[i].clone(), stations.clone());
            let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
            let h = ns.spawn(&format!("tipc-relay-{i}"), move || {
                let open = || -> Result<_, String> {
                    let mut outs = Vec::new();
                    let mut rx = None;
                    for (k, name) in all.iter().enumerate() {
                        let (idx, _) = tipc_bearer_eth::lookup_interface(name).map_err(|e| e.to_string())?;
                        if k == i {
                            let s = sys::open_packet_socket(idx).map_err(|e| e.to_string())?;
                            sys::set_buffers(s.as_raw_fd(), 8 << 20, 8 << 20);
                            rx = Some(s);
                            outs.push(None);
                        } else {
                            let s = sys::open_send_socket(idx).map_err(|e| e.to_string())?;
                            sys::set_buffers(s.as_raw_fd(), 8 << 20, 8 << 20);
                            outs.push(Some((s, idx)));
                        }
                    }
                    let rx = rx.ok_or("no input port")?;
                    Ok((rx, outs))
                };
                match open() {
                    Ok((rx, outs)) => {
                        let _ = ready_tx.send(Ok(()));
                        let port = Port { index: i, rx, outs, stations };
                        relay_loop(&port, &stop, &wake, &dir);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })?;
            relay.threads.push(h);
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(LabError::Command { cmd: format!("relay {}", names.join("<->")), stderr: e });
                }
                Err(_) => return Err(LabError::Command { cmd: "relay".into(), stderr: "relay thread died".into() }),
            }
        }
        Ok(relay)
    }

    /// Changes the faults of every port (e.g. `FaultConfig::loss(1.0)` for a blackhole).
    pub fn set_config(&self, cfg: FaultConfig) {
        for d in &self.dirs {
            d.inj.lock().set_config(cfg);
        }
    }

    /// Changes the faults of frames arriving on port `i` only (one
    /// direction of a two-port relay, or one station of a star).
    pub fn set_port_config(&self, i: usize, cfg: FaultConfig) {
        if let Some(d) = self.dirs.get(i) {
            d.inj.lock().set_config(cfg);
        }
    }

    /// Counters per input port, in the order the ports were given (for
    /// [`Relay::start`]: `[a→b, b→a]`).
    pub fn stats(&self) -> Vec<RelayDirStats> {
        self.dirs
            .iter()
            .map(|d| RelayDirStats {
                received: d.received.load(Ordering::Relaxed),
                forwarded: d.forwarded.load(Ordering::Relaxed),
                faults: d.inj.lock().stats(),
            })
            .collect()
    }

    /// Stops and joins the relay threads.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.signal();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One input port and the sockets of every output port.
struct Port {
    index: usize,
    rx: tipc_bearer_eth::Socket,
    outs: Vec<Option<(tipc_bearer_eth::Socket, u32)>>,
    stations: Arc<Stations>,
}

impl Port {
    /// The output ports a frame to `dst` goes out of.
    fn targets(&self, dst: &[u8], src: &[u8]) -> Vec<usize> {
        let mut st = self.stations.lock();
        if let Ok(src) = <[u8; 6]>::try_from(src) {
            st.insert(src, self.index);
        }
        let known = <[u8; 6]>::try_from(dst).ok().and_then(|d| st.get(&d).copied());
        match known {
            Some(p) if p == self.index => Vec::new(),
            Some(p) => vec![p],
            None => (0..self.outs.len()).filter(|&p| p != self.index).collect(),
        }
    }
}

fn relay_loop(port: &Port, stop: &AtomicBool, wake: &EventFd, dir: &Dir) {
    const BATCH: usize = 64;
    const SLOT: usize = 2048;
    let t0 = std::time::Instant::now();
    let now_us = || t0.elapsed().as_micros() as u64;
    let mut arena = vec![0u8; SLOT * BATCH];
    let mut meta = vec![RecvMeta::default(); BATCH];
    // (due time, arrival order, output port, frame)
    let mut held: BinaryHeap<Reverse<(u64, u64, usize, Bytes)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut out: Vec<Vec<Bytes>> = vec![Vec::new(); port.outs.len()];
    let rx = port.rx.as_raw_fd();
    while !stop.load(Ordering::Relaxed) {
        let timeout = match held.peek() {
            Some(Reverse((t, ..))) => i32::try_from(t.saturating_sub(now_us()).div_ceil(1000)).unwrap_or(50),
            None => 50,
        };
        let (readable, woken) = sys::poll2(rx, wake.fd(), timeout).unwrap_or((false, false));
        if woken {
            wake.clear();
        }
        if readable {
            loop {
                let n = {
                    let mut bufs: Vec<&mut [u8]> = arena.chunks_mut(SLOT).collect();
                    sys::recv_batch(rx, &mut bufs, &mut meta).unwrap_or(0)
                };
                for (i, m) in meta.iter().take(n).enumerate() {
                    if m.pkttype == sys::PACKET_OUTGOING || m.len < 14 {
                        continue;
                    }
                    dir.received.fetch_add(1, Ordering::Relaxed);
                    let frame = &arena[i * SLOT..i * SLOT + m.len];
                    for target in port.targets(&frame[..6], &frame[6..12]) {
                        let verdict = dir.inj.lock().decide();
                        for c in verdict.copies {
                            let mut f = frame.to_vec();
                            if let Some((idx, x)) = c.corrupt {
                                let span = f.len() - 14;
                                if span > 0 {
                                    f[14 + idx % span] ^= x;
                                }
                            }
                            let f = Bytes::from(f);
                            if c.delay.as_micros() == 0 && held.is_empty() {
                                out[target].push(f);
                            } else {
                                seq += 1;
                                held.push(Reverse((now_us() + c.delay.as_micros(), seq, target, f)));
                            }
                        }
                    }
                }
                if n < BATCH {
                    break;
                }
            }
        }
        let now = now_us();
        while held.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
            if let Some(Reverse((_, _, target, f))) = held.pop() {
                out[target].push(f);
            }
        }
        for (target, frames) in out.iter_mut().enumerate() {
            if let Some((tx, idx)) = &port.outs[target]
                && !frames.is_empty()
            {
                send_all(tx, *idx, frames, dir);
            }
            frames.clear();
        }
    }
}

/// Sends `frames` out of one port, retrying briefly while the socket is full.
fn send_all(tx: &tipc_bearer_eth::Socket, idx: u32, frames: &[Bytes], dir: &Dir) {
    let mut done = 0;
    let mut tries = 0;
    while done < frames.len() && tries < 10_000 {
        let heads: Vec<[u8; 14]> = frames[done..]
            .iter()
            .map(|f| {
                let mut h = [0u8; 14];
                h.copy_from_slice(&f[..14]);
                h
            })
            .collect();
        let items: Vec<SendItem<'_>> =
            frames[done..].iter().zip(&heads).map(|(f, h)| SendItem { eth: h, msg: &f[14..] }).collect();
        match sys::send_batch(tx.as_raw_fd(), idx, &items) {
            Ok(0) => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_micros(20));
            }
            Ok(k) => {
                done += k;
                dir.forwarded.fetch_add(k as u64, Ordering::Relaxed);
            }
            Err(_) => done += 1,
        }
    }
}
