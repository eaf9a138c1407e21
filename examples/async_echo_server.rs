//! An async echo service (feature `tokio`): binds STREAM connections to
//! service `--service`:`--instance` and serves every client as a task on
//! one tokio runtime, copying what it reads back with `AsyncRead` and
//! `AsyncWrite` — no thread per client.
//!
//! ```text
//! cargo run --release --features tokio --example async_echo_server -- --udp 127.0.0.1 --udp-peer 127.0.0.2
//! ```

use clap::Parser;
use tipc_rs::wire::{Instance, ServiceRange, ServiceType};
use tipc_rs::{AsyncConnSocket, ConnKind, Scope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

#[derive(Parser, Debug)]
#[command(about = "Async STREAM echo server bound to a service name (tokio)")]
struct Args {
    #[command(flatten)]
    node: common::NodeArgs,
    #[command(flatten)]
    name: common::ServiceArgs,
    /// Stop after this many connections (0: never).
    #[arg(long, default_value_t = 0)]
    connections: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = Args::parse();
    let stack = a.node.start("async_echo_server");
    let fail = |what: &str, e: tipc_rs::Error| -> ! {
        eprintln!("async_echo_server: {what}: {}", e.with_errno());
        std::process::exit(1)
    };
    let sock = stack.conn_socket(ConnKind::Stream).unwrap_or_else(|e| fail("socket", e));
    let name = ServiceRange::single(ServiceType(a.name.service), Instance(a.name.instance));
    if let Err(e) = sock.bind(name, Scope::Cluster).and_then(|()| sock.listen()) {
        fail("listen", e);
    }
    let listener = AsyncConnSocket::new(sock).unwrap_or_else(|e| fail("async socket", e));
    println!("async_echo_server listening on {}:{}", a.name.service, a.name.instance);
    let mut served = 0u64;
    let mut clients = Vec::new();
    while a.connections == 0 || served < a.connections {
        let (mut conn, peer) = listener.accept().await.unwrap_or_else(|e| fail("accept", e));
        served += 1;
        clients.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 16384];
            let mut bytes = 0u64;
            let why = loop {
                match conn.read(&mut buf).await {
                    Ok(0) => break "closed by the client".to_string(),
                    Ok(k) => {
                        bytes += k as u64;
                        if let Err(e) = conn.write_all(&buf[..k]).await {
                            break format!("write: {e}");
                        }
                    }
                    Err(e) => break format!("read: {e}"),
                }
            };
            println!("connection from {peer} ended after {bytes} bytes: {why}");
        }));
    }
    for c in clients {
        let _ = c.await;
    }
    stack.close();
}
