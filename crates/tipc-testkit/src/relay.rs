//! A seeded fault-injecting relay between Ethernet segments, for the
//! reliability tests on real links (this kernel has no netem).
//!
//! It runs inside a namespace holding one interface per segment (see
//! [`crate::netns::Lab::relayed_pair`] and [`crate::netns::Lab::relayed_star`])
//! with one raw socket per port (the bearer's, bound to ethertype 0x88CA),
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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use parking_lot::Mutex;
use tipc_bearer::Socket;
use tipc_rs::fault::{FaultConfig, FaultInjector, FaultStats};

use crate::netns::{LabError, Netns};
use crate::sys::{Batches, Received, Wake};

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
    wake: Arc<Wake>,
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
        let wake = Arc::new(Wake::new()?);
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
        // one socket per port, opened in the namespace: the port's thread
        // reads it, the other ports' threads send out of it
        let opened = {
            let names = names.clone();
            ns.spawn("tipc-relay-open", move || open_ports(&names))?.join()
        };
        let socks = match opened {
            Ok(Ok(socks)) => Arc::new(socks),
            Ok(Err(e)) => return Err(LabError::Command { cmd: format!("relay {}", names.join("<->")), stderr: e }),
            Err(_) => return Err(LabError::Command { cmd: "relay".into(), stderr: "relay thread died".into() }),
        };
        for i in 0..names.len() {
            let port = Port { index: i, socks: socks.clone(), stations: stations.clone() };
            let (stop, wake, dir) = (relay.stop.clone(), relay.wake.clone(), relay.dirs[i].clone());
            let h = ns.spawn(&format!("tipc-relay-{i}"), move || relay_loop(&port, &stop, &wake, &dir))?;
            relay.threads.push(h);
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

/// Opens the raw socket of each port (interfaces of the calling thread's
/// namespace), with large buffers.
fn open_ports(names: &[String]) -> Result<Vec<Socket>, String> {
    names
        .iter()
        .map(|name| {
            let (idx, _) = tipc_bearer::lookup_interface(name).map_err(|e| e.to_string())?;
            let s = tipc_bearer::open_packet_socket(idx).map_err(|e| e.to_string())?;
            crate::sys::set_buffers(&s, 8 << 20);
            Ok(s)
        })
        .collect()
}

/// One input port and the sockets of every port.
struct Port {
    index: usize,
    /// Every port's socket, in port order: this port's is read, the others are sent on.
    socks: Arc<Vec<Socket>>,
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
            None => (0..self.socks.len()).filter(|&p| p != self.index).collect(),
        }
    }
}

fn relay_loop(port: &Port, stop: &AtomicBool, wake: &Wake, dir: &Dir) {
    const BATCH: usize = 64;
    const SLOT: usize = 2048;
    let t0 = std::time::Instant::now();
    let now_us = || t0.elapsed().as_micros() as u64;
    let mut arena = vec![0u8; SLOT * BATCH];
    let mut io = Batches::new(BATCH, SEND_MAX);
    let mut meta: Vec<Received> = Vec::with_capacity(BATCH);
    // (due time, arrival order, output port, frame)
    let mut held: BinaryHeap<Reverse<(u64, u64, usize, Bytes)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut out: Vec<Vec<Bytes>> = vec![Vec::new(); port.socks.len()];
    let rx = &port.socks[port.index];
    while !stop.load(Ordering::Relaxed) {
        let timeout = match held.peek() {
            Some(Reverse((t, ..))) => i32::try_from(t.saturating_sub(now_us()).div_ceil(1000)).unwrap_or(50),
            None => 50,
        };
        let (readable, woken) = wake.wait(rx, timeout).unwrap_or((false, false));
        if woken {
            wake.clear();
        }
        if readable {
            loop {
                let n = {
                    let mut bufs: Vec<&mut [u8]> = arena.chunks_mut(SLOT).collect();
                    io.recv(rx, &mut bufs, &mut meta).unwrap_or(0)
                };
                for (i, m) in meta.iter().take(n).enumerate() {
                    if m.outgoing || m.len < 14 {
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
            if target != port.index && !frames.is_empty() {
                send_all(&mut io, &port.socks[target], frames, dir);
            }
            frames.clear();
        }
    }
}

/// Frames one `sendmmsg` call takes at most.
const SEND_MAX: usize = 1024;

/// Sends `frames` out of one port, retrying briefly while the socket is full.
fn send_all(io: &mut Batches, tx: &Socket, frames: &[Bytes], dir: &Dir) {
    let mut done = 0;
    let mut tries = 0;
    while done < frames.len() && tries < 10_000 {
        match io.send(tx, &frames[done..]) {
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
