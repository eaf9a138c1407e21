//! Options and start-up shared by the LAN examples (not an example itself).
#![allow(dead_code)] // each example uses part of it

use std::time::Duration;

use tipc_rs::wire::NodeId;
use tipc_rs::{Stack, StackBuilder};

/// The options every LAN example takes.
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// Ethernet interface to run TIPC on (needs CAP_NET_RAW); repeatable,
    /// and may be mixed with --udp: up to three bearers, a node reached on
    /// two of them gets two links that fail over to each other.
    #[arg(long, required_unless_present = "udp")]
    pub iface: Vec<String>,
    /// Run a UDP bearer at this local address (IP[:PORT], port 6118 by
    /// default): no privileges needed. Discovery uses the cluster's
    /// multicast group unless --udp-peer names peers. Repeatable (bearers
    /// come in the order: every --iface, then every --udp).
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = parse_udp)]
    pub udp: Vec<std::net::SocketAddr>,
    /// A UDP peer to copy broadcast-type packets to instead of multicast
    /// (repeatable; every node lists every other one); for the first --udp.
    #[arg(long, value_name = "ADDR[:PORT]", requires = "udp", value_parser = parse_udp)]
    pub udp_peer: Vec<std::net::SocketAddr>,
    /// Node identity (text, up to 16 characters; default: from the MAC).
    #[arg(long)]
    pub node_id: Option<String>,
    /// Record every frame sent and received to this pcap file (encrypted
    /// frames as they went on the wire).
    #[arg(long)]
    pub pcap: Option<String>,
    /// Encrypt: read the key from this file, one line in the format of
    /// `tipc node set key`'s arguments, e.g. `0x<16, 24 or 32 key bytes
    /// and 4 salt bytes in hex> master`. Without this option the key is
    /// read from the environment variable TIPC_KEY, if set. (Never from
    /// the command line, where `ps` would show it.)
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<std::path::PathBuf>,
    /// With a key: make a new session key every N minutes (as `tipc node
    /// set key rekeying N`).
    #[arg(long, value_name = "N")]
    pub rekey_minutes: Option<u64>,
}

/// The environment variable the examples read a key from.
pub const KEY_ENV: &str = "TIPC_KEY";

/// The key of `--key-file`, else of TIPC_KEY, if any. Errors name the
/// source, never the key.
pub fn load_key(file: Option<&std::path::Path>) -> Result<Option<tipc_rs::crypto::KeySpec>, String> {
    let text = match file {
        Some(path) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(m) = std::fs::metadata(path)
                    && m.permissions().mode() & 0o077 != 0
                {
                    eprintln!("warning: {} can be read by others (chmod 600 it)", path.display());
                }
            }
            let t = std::fs::read_to_string(path).map_err(|e| format!("--key-file {}: {e}", path.display()))?;
            zeroize_string(t, |t| t.trim().parse().map_err(|e| format!("--key-file {}: {e}", path.display())))?
        }
        None => match std::env::var(KEY_ENV) {
            Ok(t) => zeroize_string(t, |t| t.trim().parse().map_err(|e| format!("{KEY_ENV}: {e}")))?,
            Err(_) => return Ok(None),
        },
    };
    Ok(Some(text))
}

/// Runs `f` on `t`, then zeroes `t`'s bytes before freeing them.
fn zeroize_string<R>(mut t: String, f: impl FnOnce(&str) -> R) -> R {
    let r = f(&t);
    zeroize::Zeroize::zeroize(&mut t);
    r
}

/// Reads `IP`, `IP:PORT`, `[IPv6]:PORT` or `IPv6`; the port defaults to
/// TIPC's 6118.
pub fn parse_udp(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    // `[::1]` without a port, as well as `::1`
    let bare = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
    bare.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, tipc_rs::bearer::udp::DEFAULT_PORT))
        .map_err(|_| format!("`{s}` is not an IP address with an optional port"))
}

/// The start value of a 64-bit FNV-1a hash.
pub const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

/// Continues the 64-bit FNV-1a hash `h` over `data` (what `file_copy` and
/// `group_member`'s `sink` step print, as tipc-client's `sink` does).
pub fn fnv1a(h: u64, data: &[u8]) -> u64 {
    data.iter().fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The service name a connection example binds or connects to.
#[derive(clap::Args, Debug)]
pub struct ServiceArgs {
    /// Service type.
    #[arg(long, default_value_t = 18000)]
    pub service: u32,
    /// Service instance.
    #[arg(long, default_value_t = 1)]
    pub instance: u32,
}

impl NodeArgs {
    /// A stack builder for these options.
    pub fn builder(&self) -> Result<StackBuilder, String> {
        let mut b = Stack::builder();
        for i in &self.iface {
            b = b.bearer(tipc_rs::Eth::new(i.clone()));
        }
        for (k, u) in self.udp.iter().enumerate() {
            let mut spec = tipc_rs::Udp::new(*u);
            if k == 0 {
                spec.peers = self.udp_peer.clone();
            } else {
                // further UDP bearers need names of their own
                spec = spec.name(format!("udp{k}"));
            }
            b = b.bearer(spec);
        }
        if let Some(id) = &self.node_id {
            b = b.node_id(NodeId::from_text(id).map_err(|e| format!("--node-id: {e}"))?);
        }
        if let Some(p) = &self.pcap {
            b = b.pcap(p);
        }
        if let Some(k) = load_key(self.key_file.as_deref())? {
            b = b.key(k);
            if let Some(m) = self.rekey_minutes {
                b = b.rekey_interval(Duration::from_secs(m * 60));
            }
        }
        Ok(b)
    }

    /// Starts the node and waits for its address, or exits explaining why not.
    pub fn start(&self, who: &str) -> std::sync::Arc<Stack> {
        init_tracing();
        let fail = |e: String| -> ! {
            eprintln!("{who}: {e}");
            std::process::exit(1)
        };
        let stack = self.builder().unwrap_or_else(|e| fail(e)).start().unwrap_or_else(|e| fail(e.to_string()));
        if let Err(e) = stack.wait_ready(Duration::from_secs(5)) {
            fail(format!("no address: {e}"));
        }
        std::sync::Arc::new(stack)
    }
}

/// The examples' signal handling, on a thread of its own so it works
/// whatever the main thread waits on (a socket, stdin, a sleep):
/// SIGUSR1 calls `usr1` at once; SIGINT and SIGTERM call `quit`, then the
/// process exits with status 0.
///
/// # Panics
/// If the signal handlers cannot be installed (an example has no way on
/// without them).
pub fn on_signals(usr1: impl Fn() + Send + 'static, quit: impl FnOnce() + Send + 'static) {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGUSR1, SIGINT, SIGTERM]).expect("signal handlers");
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGUSR1 {
                    usr1();
                } else {
                    quit();
                    std::process::exit(0);
                }
            }
        })
        .expect("signal thread");
}

/// [`on_signals`] for an example with one node: SIGUSR1 prints the node's
/// statistics to stderr; SIGINT/SIGTERM run `before`, close the node
/// (peers see it, and every group member on it, leave at once) and print
/// its statistics before exiting 0.
pub fn node_signals(stack: &std::sync::Arc<Stack>, before: impl FnOnce() + Send + 'static) {
    let (s1, s2) = (stack.clone(), stack.clone());
    on_signals(
        move || eprintln!("{}", s1.stats()),
        move || {
            before();
            s2.close();
            eprintln!("{}", s2.stats());
        },
    );
}

/// Sends the library's `tracing` events to stderr, filtered by `RUST_LOG`
/// (`RUST_LOG=info` for links and nodes coming and going, `debug` for
/// members, names, retransmissions and congestion; errors only when it is
/// not set). Call it before starting a stack: the node's span is made then.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
}
