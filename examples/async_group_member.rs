//! An async communication-group member (feature `tokio`): joins group
//! `--group` as member `--member`, prints member events and messages, and
//! broadcasts a line every `--every` milliseconds, all on one tokio task —
//! receiving and sending wait on the socket's readiness descriptor
//! through the runtime's reactor.
//!
//! ```text
//! cargo run --release --features tokio --example async_group_member -- --udp 127.0.0.1 --udp-peer 127.0.0.2 --member 1
//! ```

use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use tipc_rs::wire::{Instance, ServiceType};
use tipc_rs::{AsyncGroupSocket, GroupEvent, GroupSpec, Scope};

mod common;

#[derive(Parser, Debug)]
#[command(about = "Async TIPC group member (tokio)")]
struct Args {
    #[command(flatten)]
    node: common::NodeArgs,
    /// Group id (service type).
    #[arg(long, default_value_t = 4711)]
    group: u32,
    /// Our member id (instance).
    #[arg(long, default_value_t = 1)]
    member: u32,
    /// Broadcast a greeting this often, in milliseconds (0: never).
    #[arg(long, default_value_t = 1000)]
    every: u64,
    /// Stop after this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = Args::parse();
    let stack = a.node.start("async_group_member");
    let fail = |what: &str, e: tipc_rs::Error| -> ! {
        eprintln!("async_group_member: {what}: {}", e.with_errno());
        std::process::exit(1)
    };
    let sock = AsyncGroupSocket::new(stack.group_socket().unwrap_or_else(|e| fail("socket", e)))
        .unwrap_or_else(|e| fail("async socket", e));
    let spec = GroupSpec {
        stype: ServiceType(a.group),
        instance: Instance(a.member),
        scope: Scope::Cluster,
        loopback: false,
        member_events: true,
    };
    sock.get_ref().join(spec).unwrap_or_else(|e| fail("join", e));
    println!("joined group {} as member {} ({})", a.group, a.member, sock.get_ref().id());
    let mut tick = tokio::time::interval(Duration::from_millis(a.every.max(1)));
    let end = tokio::time::sleep(if a.seconds > 0 { Duration::from_secs(a.seconds) } else { Duration::MAX / 4 });
    tokio::pin!(end);
    let mut n = 0u64;
    loop {
        tokio::select! {
            ev = sock.recv() => match ev {
                Ok(GroupEvent::Message { from, data, .. }) => {
                    println!("{from}: {}", String::from_utf8_lossy(&data));
                }
                Ok(other) => println!("{other:?}"),
                Err(e) => fail("recv", e),
            },
            _ = tick.tick(), if a.every > 0 => {
                n += 1;
                let line = Bytes::from(format!("hello {n} from member {}", a.member));
                match sock.broadcast(line).await {
                    Ok(()) | Err(tipc_rs::Error::NoMembers) => {}
                    Err(e) => fail("broadcast", e),
                }
            }
            () = &mut end => break,
        }
    }
    drop(sock);
    stack.close();
}
