//! `tipc-rs`: looks into a running tipc-rs node through its control socket
//! (`StackBuilder::control_socket`), with the views and the output of the
//! kernel's `tipc` tool: `node list`, `link list`, `link stat show
//! [LINK]`, `bearer list`, `nametable show`, `socket list`, `group show
//! [TYPE]`, each with `-j` for JSON.
//!
//! The node answers one request, `stats`, with its statistics as JSON
//! (`tipc_rs::stats::StackStats`); every view is a selection of that.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(name = "tipc-rs", about = "Inspect a running tipc-rs node through its control socket", version)]
struct Cli {
    /// The node's control socket (StackBuilder::control_socket; the
    /// examples' --control-socket).
    #[arg(short, long, env = "TIPC_RS_SOCKET", global = true)]
    socket: Option<PathBuf>,
    /// Print JSON, as `tipc -j`.
    #[arg(short, long, global = true)]
    json: bool,
    /// Indent the JSON, as `tipc -jp`.
    #[arg(short, long, global = true)]
    pretty: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Nodes: this one and its peers.
    Node {
        #[command(subcommand)]
        cmd: ListOnly,
    },
    /// Links.
    Link {
        #[command(subcommand)]
        cmd: LinkCmd,
    },
    /// Bearers.
    Bearer {
        #[command(subcommand)]
        cmd: ListOnly,
    },
    /// The name table.
    Nametable {
        #[command(subcommand)]
        cmd: ShowOnly,
    },
    /// This node's sockets.
    Socket {
        #[command(subcommand)]
        cmd: ListOnly,
    },
    /// Communication groups as this node's member sockets see them.
    Group {
        #[command(subcommand)]
        cmd: GroupCmd,
    },
}

#[derive(Subcommand, Debug)]
enum ListOnly {
    /// List them.
    List,
}

#[derive(Subcommand, Debug)]
enum ShowOnly {
    /// Show it.
    Show,
}

#[derive(Subcommand, Debug)]
enum LinkCmd {
    /// Every link and its state, the broadcast link first.
    List,
    /// Link statistics.
    Stat {
        #[command(subcommand)]
        cmd: StatCmd,
    },
}

#[derive(Subcommand, Debug)]
enum StatCmd {
    /// Every link's counters, or those of LINK.
    Show {
        /// A link name, as `link list` prints it (`broadcast-link` for
        /// the broadcast link).
        link: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum GroupCmd {
    /// The members of every group, or of group TYPE.
    Show {
        /// A group's service type.
        group: Option<u64>,
    },
}

/// A failure the user is told about, with the exit status 1.
struct Fail(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(out) => {
            let mut o = std::io::stdout().lock();
            // a closed pipe (`| head`) ends the output quietly
            let _ = o.write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(Fail(msg)) => {
            eprintln!("tipc-rs: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<String, Fail> {
    let Some(path) = &cli.socket else {
        return Err(Fail(
            "no control socket given: use --socket PATH (or TIPC_RS_SOCKET); a node serves one when built \
             with StackBuilder::control_socket, an example when started with --control-socket"
                .into(),
        ));
    };
    let stats = fetch(path)?;
    let v = match &cli.cmd {
        Cmd::Node { .. } => nodes(&stats),
        Cmd::Link { cmd: LinkCmd::List } => link_list(&stats),
        Cmd::Link { cmd: LinkCmd::Stat { cmd: StatCmd::Show { link } } } => link_stats(&stats, link.as_deref())?,
        Cmd::Bearer { .. } => bearers(&stats),
        Cmd::Nametable { .. } => stats["names"].clone(),
        Cmd::Socket { .. } => stats["sockets"].clone(),
        Cmd::Group { cmd: GroupCmd::Show { group } } => members(&stats, *group),
    };
    if cli.json {
        let text = if cli.pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) };
        return text.map(|t| t + "\n").map_err(|e| Fail(e.to_string()));
    }
    Ok(match &cli.cmd {
        Cmd::Node { .. } => node_text(&v),
        Cmd::Link { cmd: LinkCmd::List } => link_list_text(&v),
        Cmd::Link { cmd: LinkCmd::Stat { .. } } => link_stats_text(&v),
        Cmd::Bearer { .. } => v.as_array().into_iter().flatten().map(|b| format!("{}\n", s(b))).collect(),
        Cmd::Nametable { .. } => names_text(&v),
        Cmd::Socket { .. } => sockets_text(&v),
        Cmd::Group { .. } => members_text(&v),
    })
}

/// Asks the node at `path` for its statistics.
fn fetch(path: &Path) -> Result<Value, Fail> {
    let at = path.display();
    let mut c = UnixStream::connect(path).map_err(|e| {
        Fail(match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("no control socket at {at} ({e}): is the node running with its control socket there?")
            }
            std::io::ErrorKind::ConnectionRefused => {
                format!("nobody answers at {at} ({e}): the node that served it has stopped, or it is not a socket")
            }
            std::io::ErrorKind::PermissionDenied => {
                format!("{at}: {e} (a control socket is open to its owner only)")
            }
            _ => format!("{at}: {e}"),
        })
    })?;
    let io = |e: std::io::Error| Fail(format!("{at}: {e}"));
    c.set_read_timeout(Some(Duration::from_secs(5))).map_err(io)?;
    c.set_write_timeout(Some(Duration::from_secs(5))).map_err(io)?;
    c.write_all(b"stats\n").map_err(io)?;
    let mut text = String::new();
    c.read_to_string(&mut text).map_err(io)?;
    let v: Value = serde_json::from_str(text.trim())
        .map_err(|e| Fail(format!("{at} answered something that is not JSON ({e}): is it a tipc-rs node?")))?;
    if let Some(e) = v.get("error") {
        return Err(Fail(format!("{at}: the node says: {}", s(e))));
    }
    if !v.get("links").is_some_and(Value::is_array) || !v.get("node_id").is_some_and(Value::is_string) {
        return Err(Fail(format!("{at} answered JSON that is not a tipc-rs node's statistics")));
    }
    Ok(v)
}

/// A JSON value as text (strings without quotes).
fn s(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn links(stats: &Value) -> impl Iterator<Item = &Value> {
    stats["links"].as_array().into_iter().flatten()
}

/// This node and every peer a link knows: identity, hash (address) and
/// state, as `tipc node list`.
fn nodes(stats: &Value) -> Value {
    let mut out = vec![json!({ "identity": stats["node_id"], "hash": stats["address"], "state": "up" })];
    let mut seen: Vec<&Value> = Vec::new();
    for l in links(stats) {
        if seen.contains(&&l["peer"]) {
            continue;
        }
        seen.push(&l["peer"]);
        let up = links(stats).any(|m| m["peer"] == l["peer"] && m["state"] == "Established");
        out.push(json!({ "identity": l["peer_id"], "hash": l["peer"], "state": if up { "up" } else { "down" } }));
    }
    Value::Array(out)
}

fn node_text(v: &Value) -> String {
    let mut t = format!("{:<32} {:<8} {}\n", "Node Identity", "Hash", "State");
    for n in v.as_array().into_iter().flatten() {
        t += &format!("{:<32} {:<8} {}\n", s(&n["identity"]), s(&n["hash"]), s(&n["state"]));
    }
    t
}

/// `[{"broadcast-link": "up"}, {"NAME": "up" | "down"}, ...]`, as `tipc -j link list`.
fn link_list(stats: &Value) -> Value {
    let mut out = vec![json!({ "broadcast-link": "up" })];
    for l in links(stats) {
        let state = if l["state"] == "Established" { "up" } else { "down" };
        let mut m = serde_json::Map::new();
        m.insert(s(&l["name"]), json!(state));
        out.push(Value::Object(m));
    }
    Value::Array(out)
}

fn link_list_text(v: &Value) -> String {
    let mut t = String::new();
    for e in v.as_array().into_iter().flatten() {
        for (name, state) in e.as_object().into_iter().flatten() {
            t += &format!("{name}: {}\n", s(state));
        }
    }
    t
}

/// Every link's statistics (the broadcast link's as `broadcast-link`), or
/// those of the one named.
fn link_stats(stats: &Value, name: Option<&str>) -> Result<Value, Fail> {
    let b = &stats["bcast"];
    let bcast = json!({ "name": "broadcast-link", "bcast": b });
    let all: Vec<Value> = std::iter::once(bcast).chain(links(stats).cloned()).collect();
    match name {
        None => Ok(Value::Array(all)),
        Some(n) => all
            .into_iter()
            .find(|l| l["name"] == n)
            .map(|l| Value::Array(vec![l]))
            .ok_or_else(|| Fail(format!("no link named {n} (see `tipc-rs link list`)"))),
    }
}

fn link_stats_text(v: &Value) -> String {
    let mut t = String::new();
    for l in v.as_array().into_iter().flatten() {
        if l["name"] == "broadcast-link" {
            let b = &l["bcast"];
            t += &format!(
                "Link <broadcast-link>\n  TX packets:{} retransmitted:{}\n  In flight:{} waiting:{}\n\n",
                s(&b["sent"]),
                s(&b["retransmitted"]),
                s(&b["in_flight"]),
                s(&b["waiting"])
            );
            continue;
        }
        let st = &l["stats"];
        let role = match (l["state"] == "Established", l["active"] == true) {
            (true, true) => "ACTIVE",
            (true, false) => "STANDBY",
            _ => "DEFUNCT",
        };
        let tol_ms = l["tolerance"].as_u64().unwrap_or(0) / 1000;
        t += &format!("Link <{}>\n", s(&l["name"]));
        t += &format!(
            "  {role}  MTU:{}  Priority:{}  Tolerance:{tol_ms} ms  Window:{} packets\n",
            s(&l["mtu"]),
            s(&l["priority"]),
            s(&l["window"])
        );
        // every counter the link keeps, in its own names
        for (k, v) in st.as_object().into_iter().flatten() {
            t += &format!("  {k}:{}\n", s(v));
        }
        let q = l["queued"].as_array();
        let q = |i: usize| q.and_then(|a| a.get(i)).map(s).unwrap_or_default();
        t += &format!(
            "  Send queue: window {} backlog {}{}\n\n",
            q(0),
            q(1),
            if l["congested"] == true { " congested" } else { "" }
        );
    }
    t
}

/// `eth:IFACE` or `udp:NAME` per bearer, as `tipc bearer list`.
fn bearers(stats: &Value) -> Value {
    let rows = stats["bearers"].as_array().into_iter().flatten();
    Value::Array(
        rows.map(|b| {
            let set = &b["settings"];
            let udp = s(&set["media"]).parse::<std::net::SocketAddr>().is_ok();
            json!(format!("{}:{}", if udp { "udp" } else { "eth" }, s(&set["name"])))
        })
        .collect(),
    )
}

fn names_text(v: &Value) -> String {
    let mut t = format!("{:<10} {:<10} {:<10} {:<8} {:<10} {}\n", "Type", "Lower", "Upper", "Scope", "Port", "Node");
    for p in v.as_array().into_iter().flatten() {
        let r = &p["range"];
        t += &format!(
            "{:<10} {:<10} {:<10} {:<8} {:<10} {}\n",
            s(&r["type"]),
            s(&r["lower"]),
            s(&r["upper"]),
            s(&p["scope"]),
            s(&p["port"]),
            s(&p["node"])
        );
    }
    t
}

fn sockets_text(v: &Value) -> String {
    let mut t = String::new();
    for sk in v.as_array().into_iter().flatten() {
        t += &format!("socket {}\n", s(&sk["port"]));
        for b in sk["bindings"].as_array().into_iter().flatten() {
            let r = &b["range"];
            t += &format!(
                "        bound to {{{},{},{}}} scope {}\n",
                s(&r["type"]),
                s(&r["lower"]),
                s(&r["upper"]),
                s(&b["scope"])
            );
        }
        if !sk["group_type"].is_null() {
            t += &format!("        member of group {} as {}\n", s(&sk["group_type"]), s(&sk["group_instance"]));
        }
        if sk["listening"] == true {
            t += "        listening\n";
        }
        if let Some(p) = sk["connected_to"].as_object() {
            t += &format!("        connected to <{}:{}>\n", s(&p["node"]), s(&p["port"]));
        }
    }
    t
}

/// The members local group sockets see, of every group or of `group`.
fn members(stats: &Value, group: Option<u64>) -> Value {
    let all = stats["members"].as_array().into_iter().flatten();
    Value::Array(all.filter(|m| group.is_none_or(|g| m["group"].as_u64() == Some(g))).cloned().collect())
}

fn members_text(v: &Value) -> String {
    let mut t = format!(
        "{:<8} {:<12} {:<22} {:>8} {:<11} {:>7} {:>6} {:>6}\n",
        "Group", "Socket", "Member", "Instance", "State", "Window", "Adv", "Queued"
    );
    for m in v.as_array().into_iter().flatten() {
        let id = format!("{}:{}", s(&m["member"]["node"]), s(&m["member"]["port"]));
        t += &format!(
            "{:<8} {:<12} {:<22} {:>8} {:<11} {:>7} {:>6} {:>6}\n",
            s(&m["group"]),
            s(&m["socket"]),
            id,
            s(&m["instance"]),
            s(&m["state"]),
            s(&m["window"]),
            s(&m["advertised"]),
            s(&m["queued"])
        );
    }
    t
}
