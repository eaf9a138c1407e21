//! Copies files over a STREAM connection: `file_copy serve` binds a service
//! name and writes every file it receives into a directory; `file_copy
//! send FILE` connects by name and streams the file, then both print its
//! length and a checksum (FNV-1a, 64 bit) to compare.
//!
//! ```text
//! sudo cargo run --release --example file_copy -- --iface eth0 serve --dir /tmp/in
//! sudo cargo run --release --example file_copy -- --iface eth1 send ./big.iso
//! ```
//!
//! The wire format is the file name's length (2 bytes, big-endian), the
//! name, the file's length (8 bytes, big-endian) and its bytes.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use tipc_rs::wire::{Instance, ServiceRange, ServiceType};
use tipc_rs::{ConnKind, ConnSocket, Error, Scope};

mod common;

#[derive(Parser, Debug)]
#[command(about = "Copy files over a TIPC STREAM connection")]
struct Args {
    #[command(flatten)]
    node: common::NodeArgs,
    /// Service type of the file service.
    #[arg(long, default_value_t = 18001)]
    service: u32,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Receive files into `--dir` (one connection at a time).
    Serve {
        /// Where received files go.
        #[arg(long)]
        dir: PathBuf,
        /// Stop after this many files (0: never).
        #[arg(long, default_value_t = 0)]
        files: u64,
    },
    /// Send one file.
    Send {
        /// The file.
        file: PathBuf,
        /// How long to wait for the service to appear, in seconds.
        #[arg(long, default_value_t = 10)]
        wait: u64,
    },
}

/// Reads exactly `buf.len()` bytes.
fn read_exact(c: &ConnSocket, buf: &mut [u8]) -> Result<(), String> {
    let mut off = 0;
    while off < buf.len() {
        match c.read_timeout(&mut buf[off..], Duration::from_secs(30)) {
            Ok(0) => return Err(format!("the connection ended after {off} of {} bytes", buf.len())),
            Ok(n) => off += n,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

fn receive(c: &ConnSocket, dir: &std::path::Path) -> Result<(String, u64, u64), String> {
    let mut len2 = [0u8; 2];
    read_exact(c, &mut len2)?;
    let mut name = vec![0u8; usize::from(u16::from_be_bytes(len2))];
    read_exact(c, &mut name)?;
    let name = String::from_utf8_lossy(&name).to_string();
    // only the last component: the sender does not choose where we write
    let base = std::path::Path::new(&name).file_name().ok_or("an empty file name")?.to_owned();
    let mut len8 = [0u8; 8];
    read_exact(c, &mut len8)?;
    let len = u64::from_be_bytes(len8);
    let mut out = std::fs::File::create(dir.join(&base)).map_err(|e| format!("{}: {e}", base.to_string_lossy()))?;
    let (mut got, mut h) = (0u64, common::FNV0);
    let mut buf = vec![0u8; 1 << 16];
    while got < len {
        let want = buf.len().min((len - got) as usize);
        let n = match c.read_timeout(&mut buf[..want], Duration::from_secs(30)) {
            Ok(0) => return Err(format!("the connection ended after {got} of {len} bytes")),
            Ok(n) => n,
            Err(e) => return Err(e.to_string()),
        };
        out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        h = common::fnv1a(h, &buf[..n]);
        got += n as u64;
    }
    Ok((base.to_string_lossy().to_string(), len, h))
}

fn main() {
    let a = Args::parse();
    let stack = a.node.start("file_copy");
    common::node_signals(&stack, || {});
    let name = ServiceRange::single(ServiceType(a.service), Instance(1));
    match a.cmd {
        Cmd::Serve { dir, files } => {
            let l = stack.conn_socket(ConnKind::Stream).expect("socket");
            if let Err(e) = l.bind(name, Scope::Cluster).and_then(|()| l.listen()) {
                eprintln!("file_copy: {}", e.with_errno());
                std::process::exit(1);
            }
            println!("serving {} into {}", a.service, dir.display());
            let mut n = 0;
            while files == 0 || n < files {
                let (c, peer) = match l.accept() {
                    Ok(x) => x,
                    Err(e) => {
                        eprintln!("file_copy: accept: {e}");
                        std::process::exit(1);
                    }
                };
                match receive(&c, &dir) {
                    Ok((f, len, h)) => println!("received {f} from {peer}: {len} bytes fnv={h:016x}"),
                    Err(e) => println!("transfer from {peer} failed: {e}"),
                }
                n += 1;
            }
            drop(l);
        }
        Cmd::Send { file, wait } => {
            let fail = |what: &str, e: String| -> ! {
                eprintln!("file_copy: {what}: {e}");
                std::process::exit(1)
            };
            let mut f = std::fs::File::open(&file).unwrap_or_else(|e| fail("open", e.to_string()));
            let len = f.metadata().map(|m| m.len()).unwrap_or_else(|e| fail("stat", e.to_string()));
            let end = Instant::now() + Duration::from_secs(wait);
            let c = loop {
                let c = stack.conn_socket(ConnKind::Stream).unwrap_or_else(|e| fail("socket", e.to_string()));
                match c.connect(name.stype, name.lower) {
                    Ok(()) => break c,
                    Err(Error::NoService(..) | Error::ConnRefused(_)) if Instant::now() < end => {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => fail("connect", e.with_errno()),
                }
            };
            let fname = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let mut head = Vec::new();
            head.extend_from_slice(&(fname.len() as u16).to_be_bytes());
            head.extend_from_slice(fname.as_bytes());
            head.extend_from_slice(&len.to_be_bytes());
            c.send(Bytes::from(head)).unwrap_or_else(|e| fail("send", e.to_string()));
            let t0 = Instant::now();
            let (mut sent, mut h) = (0u64, common::FNV0);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf).unwrap_or_else(|e| fail("read", e.to_string()));
                if n == 0 {
                    break;
                }
                h = common::fnv1a(h, &buf[..n]);
                c.send(Bytes::copy_from_slice(&buf[..n])).unwrap_or_else(|e| fail("send", e.to_string()));
                sent += n as u64;
            }
            let _ = c.shutdown();
            let secs = t0.elapsed().as_secs_f64();
            println!("sent {fname}: {sent} bytes fnv={h:016x} in {secs:.2} s");
            drop(c);
        }
    }
    stack.close();
}
