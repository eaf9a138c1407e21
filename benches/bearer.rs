//! Bearer throughput and latency as ratios to raw AF_PACKET, measured in the
//! same run, namespaces and CPU placement (`cargo bench --bench bearer`, as
//! root). Options: `--runs N` (default 3), `--secs S` per blast (default 2),
//! `--n N` round trips (default 20000).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::bounded;
use tipc_rs::bearer::{Bearer, BearerConfig, RxFrame, RxHandler, TxFrame, TxHandle};
use tipc_rs::wire::{DataMsg, DataType, MacAddr, Msg};
use tipc_testkit::netns::{Lab, NODE_IF, privileged};
use tipc_testkit::sys::pin_to_cpu;

use common::*;

fn frame(size: usize) -> Bytes {
    // a TIPC message that makes an Ethernet frame of `size` bytes
    let m = DataMsg::new(DataType::Direct, Bytes::from(vec![0x5au8; size.max(14 + 32) - 14 - 32]));
    Msg::Data(m).to_bytes().expect("encode")
}

/// Echoes every frame back to its sender from the receive thread.
struct Echo;
impl RxHandler for Echo {
    fn on_frames(&mut self, frames: &mut Vec<RxFrame>, tx: &TxHandle) {
        for f in frames.drain(..) {
            let _ = tx.send(f.src, f.msg);
        }
    }
}

/// Ping-pong driven from the receive thread: every reply triggers the next ping.
struct Pinger {
    peer: MacAddr,
    msg: Bytes,
    left: usize,
    sent_at: Instant,
    rtts: Vec<f64>,
    done: crossbeam_channel::Sender<Vec<f64>>,
}
impl RxHandler for Pinger {
    fn on_frames(&mut self, frames: &mut Vec<RxFrame>, tx: &TxHandle) {
        for _ in frames.drain(..) {
            self.rtts.push(self.sent_at.elapsed().as_secs_f64() * 1e6);
            if self.left == 0 {
                let _ = self.done.send(std::mem::take(&mut self.rtts));
                return;
            }
            self.left -= 1;
            self.sent_at = Instant::now();
            let _ = tx.send(self.peer, self.msg.clone());
        }
    }
}

fn main() {
    if !privileged() {
        eprintln!("bearer bench: needs root (network namespaces and raw sockets)");
        std::process::exit(1);
    }
    let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(3);
    let secs: u32 = arg("--secs").and_then(|v| v.parse().ok()).unwrap_or(2);
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let raw = build_rawlimit();
    let lab = Lab::pair("bbench").expect("veth pair");
    let (a, b) = (lab.node(0), lab.node(1));
    let mac_a = a.mac(NODE_IF).expect("mac");
    let mac_b = b.mac(NODE_IF).expect("mac");
    let mut r = std::collections::BTreeMap::<&str, Vec<f64>>::new();

    for run in 0..runs {
        eprintln!("run {}/{runs}", run + 1);
        r.entry("raw.rtt.64.same").or_default().push(raw_rtt(&raw, a, b, 64, n, 0));

        // our RTT: echo and pinger both run on their bearers' receive threads, CPU 0
        let echo = b
            .spawn("echo", || {
                pin_to_cpu(0).expect("pin");
                Bearer::open_with_handler(BearerConfig::new(NODE_IF), Echo).expect("open")
            })
            .expect("spawn")
            .join()
            .expect("echo");
        let (done_tx, done_rx) = bounded(1);
        let warm = n / 10;
        let pinger = a
            .spawn("pinger", move || {
                pin_to_cpu(0).expect("pin");
                let p = Pinger {
                    peer: mac_b,
                    msg: frame(64),
                    left: n + warm,
                    sent_at: Instant::now(),
                    rtts: Vec::with_capacity(n + warm),
                    done: done_tx,
                };
                let bearer = Bearer::open_with_handler(BearerConfig::new(NODE_IF), p).expect("open");
                std::thread::sleep(Duration::from_millis(100));
                bearer.tx().send(mac_b, frame(64)).expect("first ping");
                bearer
            })
            .expect("spawn")
            .join()
            .expect("pinger");
        let mut rtts = done_rx.recv_timeout(Duration::from_secs(120)).expect("pingpong finished");
        drop(pinger);
        let mut rtts = rtts.split_off(warm.min(rtts.len()));
        r.entry("bearer.rtt.64.same.handler").or_default().push(median(&mut rtts));

        // the same with the client on the channel path (rx thread -> application thread)
        let mut rtts = a
            .spawn("client", move || {
                pin_to_cpu(0).expect("pin");
                let bearer = Bearer::open(BearerConfig::new(NODE_IF)).expect("open");
                let rx = bearer.rx().expect("channel").clone();
                let tx = bearer.tx();
                let msg = frame(64);
                let mut v = Vec::with_capacity(n);
                for i in 0..n + warm {
                    let t = Instant::now();
                    tx.send(mac_b, msg.clone()).expect("send");
                    rx.recv_timeout(Duration::from_secs(2)).expect("echo reply");
                    if i >= warm {
                        v.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
                v
            })
            .expect("spawn")
            .join()
            .expect("client");
        r.entry("bearer.rtt.64.same.channel").or_default().push(median(&mut rtts));
        drop(echo);

        for size in [64usize, 1500] {
            let raw_fps = raw_blast(&raw, a, b, &mac_b.to_string(), size, secs, 0, 1);
            r.entry(if size == 64 { "raw.blast.64.cross" } else { "raw.blast.1500.cross" }).or_default().push(raw_fps);
            // ours: sink bearer on CPU 1 (channel mode, consumer counts), sender on CPU 0 in bursts of 64
            let count = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let (c2, s2) = (count.clone(), stop.clone());
            let sink = b
                .spawn("sink", move || {
                    pin_to_cpu(1).expect("pin");
                    let bearer = Bearer::open(BearerConfig::new(NODE_IF)).expect("open");
                    let rx = bearer.rx().expect("channel").clone();
                    let (mut first, mut last) = (None, Instant::now());
                    while !s2.load(Ordering::Relaxed) {
                        if let Ok(batch) = rx.recv_timeout(Duration::from_millis(1500)) {
                            first.get_or_insert_with(Instant::now);
                            last = Instant::now();
                            c2.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        } else if first.is_some() {
                            break;
                        }
                    }
                    let window = first.map(|f| last.duration_since(f).as_secs_f64()).unwrap_or(0.0);
                    (window, bearer.stats())
                })
                .expect("spawn");
            std::thread::sleep(Duration::from_millis(300));
            let sent = a
                .spawn("blast", move || {
                    pin_to_cpu(0).expect("pin");
                    let bearer = Bearer::open(BearerConfig::new(NODE_IF)).expect("open");
                    let tx = bearer.tx();
                    let msg = frame(size);
                    let end = Instant::now() + Duration::from_secs(u64::from(secs));
                    let mut burst = Vec::with_capacity(64);
                    let mut sent = 0u64;
                    while Instant::now() < end {
                        burst.extend((0..64).map(|_| TxFrame { dst: mac_b.into(), msg: msg.clone() }));
                        tx.send_burst(&mut burst).expect("send");
                        sent += 64;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                    sent
                })
                .expect("spawn")
                .join()
                .expect("blast");
            let (window, st) = sink.join().expect("sink");
            stop.store(true, Ordering::Relaxed);
            let got = count.load(Ordering::Relaxed);
            let fps = if window > 0.0 { got as f64 / window } else { 0.0 };
            eprintln!(
                "  blast {size}: sent {sent}, received {got} ({:.3} Mfps), kernel drops {}",
                fps / 1e6,
                st.drop_kernel
            );
            r.entry(if size == 64 { "bearer.blast.64.cross" } else { "bearer.blast.1500.cross" })
                .or_default()
                .push(fps);
        }
        let _ = mac_a;
    }

    let mut med = std::collections::BTreeMap::new();
    for (k, v) in r.iter_mut() {
        med.insert(*k, median(v));
    }
    println!("\nbearer bench: median of {runs} runs, same sitting, same namespaces");
    println!("{:<34} {:>12}", "metric", "value");
    for (k, v) in &med {
        let unit = if k.contains("rtt") { "us" } else { "fps" };
        println!("{k:<34} {v:>12.2} {unit}");
    }
    let g = |k: &str| med.get(k).copied().unwrap_or(f64::NAN);
    println!("\nratios to raw AF_PACKET:");
    println!(
        "  RTT 64 B, handler path : {:.2}x raw (target <= 1.2x)",
        g("bearer.rtt.64.same.handler") / g("raw.rtt.64.same")
    );
    println!("  RTT 64 B, channel path : {:.2}x raw", g("bearer.rtt.64.same.channel") / g("raw.rtt.64.same"));
    println!(
        "  blast 64 B             : {:.0}% of raw (target >= 80%)",
        100.0 * g("bearer.blast.64.cross") / g("raw.blast.64.cross")
    );
    println!(
        "  blast 1500 B           : {:.0}% of raw (target >= 80%)",
        100.0 * g("bearer.blast.1500.cross") / g("raw.blast.1500.cross")
    );
}
