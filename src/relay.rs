//! A seeded fault-injecting relay between two Ethernet segments, for the
//! reliability tests on real links (this kernel has no netem).
//!
//! It runs inside a namespace with two interfaces (see
//! [`crate::netns::Lab::relayed_pair`]) and forwards every TIPC frame from
//! one to the other unchanged — MAC addresses included, like a bridge —
//! unless its [`FaultInjector`] decides to drop, duplicate, delay, reorder
//! or corrupt it. Corrupted frames are dropped by default, as an Ethernet
//! FCS check would drop them: TIPC carries no checksum of its own, so
//! delivering them tests hostile input, not link faults.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use parking_lot::Mutex;
use tipc_bearer_eth::sys::{self, EventFd, RecvMeta, SendItem};

use crate::fault::{FaultConfig, FaultInjector, FaultStats};
use crate::netns::{LabError, Netns};

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayDirStats {
    /// Frames received on the input side.
    pub received: u64,
    /// Frames sent on the output side (duplicates included).
    pub forwarded: u64,
    /// The injector's counters.
    pub faults: FaultStats,
}

struct Dir {
    inj: Mutex<FaultInjector>,
    received: AtomicU64,
    forwarded: AtomicU64,
}

/// A running relay; dropping it stops and joins its threads.
pub struct Relay {
    stop: Arc<AtomicBool>,
    wake: Arc<EventFd>,
    dirs: [Arc<Dir>; 2],
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
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(EventFd::new()?);
        let mk = |s: u64| {
            Arc::new(Dir {
                inj: Mutex::new(FaultInjector::new(cfg, s)),
                received: AtomicU64::new(0),
                forwarded: AtomicU64::new(0),
            })
        };
        let dirs = [mk(seed ^ 0xa5a5_0001), mk(seed ^ 0x5a5a_0002)];
        let mut threads = Vec::new();
        for (i, (from, to)) in [(if_a, if_b), (if_b, if_a)].into_iter().enumerate() {
            let (from, to) = (from.to_string(), to.to_string());
            let (stop2, wake2, dir) = (stop.clone(), wake.clone(), dirs[i].clone());
            let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
            let h = ns.spawn(&format!("tipc-relay-{i}"), move || {
                let open = || -> Result<_, String> {
                    let (in_idx, _) = tipc_bearer_eth::lookup_interface(&from).map_err(|e| e.to_string())?;
                    let (out_idx, _) = tipc_bearer_eth::lookup_interface(&to).map_err(|e| e.to_string())?;
                    let rx = sys::open_packet_socket(in_idx).map_err(|e| e.to_string())?;
                    let tx = sys::open_send_socket(out_idx).map_err(|e| e.to_string())?;
                    sys::set_buffers(rx.as_raw_fd(), 8 << 20, 8 << 20);
                    sys::set_buffers(tx.as_raw_fd(), 8 << 20, 8 << 20);
                    Ok((rx, tx, out_idx))
                };
                match open() {
                    Ok((rx, tx, out_idx)) => {
                        let _ = ready_tx.send(Ok(()));
                        relay_loop(&rx, &tx, out_idx, &stop2, &wake2, &dir);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })?;
            threads.push(h);
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    stop.store(true, Ordering::SeqCst);
                    wake.signal();
                    return Err(LabError::Command { cmd: format!("relay {if_a}<->{if_b}"), stderr: e });
                }
                Err(_) => return Err(LabError::Command { cmd: "relay".into(), stderr: "relay thread died".into() }),
            }
        }
        Ok(Relay { stop, wake, dirs, threads })
    }

    /// Changes the faults of both directions (e.g. `FaultConfig::loss(1.0)` for a blackhole).
    pub fn set_config(&self, cfg: FaultConfig) {
        for d in &self.dirs {
            d.inj.lock().set_config(cfg);
        }
    }

    /// Counters: `[a→b, b→a]`.
    pub fn stats(&self) -> [RelayDirStats; 2] {
        let s = |d: &Dir| RelayDirStats {
            received: d.received.load(Ordering::Relaxed),
            forwarded: d.forwarded.load(Ordering::Relaxed),
            faults: d.inj.lock().stats(),
        };
        [s(&self.dirs[0]), s(&self.dirs[1])]
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

fn relay_loop(
    rx: &tipc_bearer_eth::Socket,
    tx: &tipc_bearer_eth::Socket,
    out_idx: u32,
    stop: &AtomicBool,
    wake: &EventFd,
    dir: &Dir,
) {
    const BATCH: usize = 64;
    const SLOT: usize = 2048;
    let t0 = std::time::Instant::now();
    let now_us = || t0.elapsed().as_micros() as u64;
    let mut arena = vec![0u8; SLOT * BATCH];
    let mut meta = vec![RecvMeta::default(); BATCH];
    let mut held: BinaryHeap<Reverse<(u64, u64, Bytes)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut out: Vec<Bytes> = Vec::with_capacity(BATCH * 2);
    while !stop.load(Ordering::Relaxed) {
        let timeout = match held.peek() {
            Some(Reverse((t, _, _))) => i32::try_from(t.saturating_sub(now_us()).div_ceil(1000)).unwrap_or(50),
            None => 50,
        };
        let (readable, woken) = sys::poll2(rx.as_raw_fd(), wake.fd(), timeout).unwrap_or((false, false));
        if woken {
            wake.clear();
        }
        if readable {
            loop {
                let n = {
                    let mut bufs: Vec<&mut [u8]> = arena.chunks_mut(SLOT).collect();
                    sys::recv_batch(rx.as_raw_fd(), &mut bufs, &mut meta).unwrap_or(0)
                };
                for (i, m) in meta.iter().take(n).enumerate() {
                    if m.pkttype == sys::PACKET_OUTGOING || m.len < 14 {
                        continue;
                    }
                    dir.received.fetch_add(1, Ordering::Relaxed);
                    let frame = &arena[i * SLOT..i * SLOT + m.len];
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
                            out.push(f);
                        } else {
                            seq += 1;
                            held.push(Reverse((now_us() + c.delay.as_micros(), seq, f)));
                        }
                    }
                }
                if n < BATCH {
                    break;
                }
            }
        }
        let now = now_us();
        while held.peek().is_some_and(|Reverse((t, _, _))| *t <= now) {
            if let Some(Reverse((_, _, f))) = held.pop() {
                out.push(f);
            }
        }
        let mut done = 0;
        let mut tries = 0;
        while done < out.len() && tries < 10_000 {
            let heads: Vec<[u8; 14]> = out[done..]
                .iter()
                .map(|f| {
                    let mut h = [0u8; 14];
                    h.copy_from_slice(&f[..14]);
                    h
                })
                .collect();
            let items: Vec<SendItem<'_>> =
                out[done..].iter().zip(&heads).map(|(f, h)| SendItem { eth: h, msg: &f[14..] }).collect();
            match sys::send_batch(tx.as_raw_fd(), out_idx, &items) {
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
        out.clear();
    }
}
