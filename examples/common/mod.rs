//! Options and start-up shared by the LAN examples (not an example itself).
#![allow(dead_code)] // each example uses part of it

use std::time::Duration;

use tipc_rs::wire::NodeId;
use tipc_rs::{Stack, StackBuilder};

/// The options every LAN example takes.
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// Ethernet interface to run TIPC on.
    #[arg(long)]
    pub iface: String,
    /// Node identity (text, up to 16 characters; default: from the MAC).
    #[arg(long)]
    pub node_id: Option<String>,
    /// Record every frame sent and received to this pcap file.
    #[arg(long)]
    pub pcap: Option<String>,
}

impl NodeArgs {
    /// A stack builder for these options.
    pub fn builder(&self) -> Result<StackBuilder, String> {
        let mut b = Stack::builder().iface(&self.iface);
        if let Some(id) = &self.node_id {
            b = b.node_id(NodeId::from_text(id).map_err(|e| format!("--node-id: {e}"))?);
        }
        if let Some(p) = &self.pcap {
            b = b.pcap(p);
        }
        Ok(b)
    }

    /// Starts the node and waits for its address, or exits explaining why not.
    pub fn start(&self, who: &str) -> Stack {
        let fail = |e: String| -> ! {
            eprintln!("{who}: {e}");
            std::process::exit(1)
        };
        let stack = self.builder().unwrap_or_else(|e| fail(e)).start().unwrap_or_else(|e| fail(e.to_string()));
        if let Err(e) = stack.wait_ready(Duration::from_secs(5)) {
            fail(format!("no address: {e}"));
        }
        stack
    }
}
