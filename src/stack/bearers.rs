//! What a bearer of a [`super::Stack`] is made of: an Ethernet interface
//! ([`Eth`]) or a UDP socket ([`Udp`]), each with the link settings `tipc
//! bearer set` changes (priority, tolerance, window; MTU on UDP).
//!
//! A node runs up to three bearers (net/tipc/bearer.h `MAX_BEARERS`); each
//! peer gets at most two links, on two of them. Of two links the
//! higher-priority one carries the traffic; equal priorities share it, a
//! socket's messages keeping to one link (net/tipc/node.c
//! `__tipc_node_link_up`, `tipc_node_xmit`).

use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use tipc_bearer::{BearerConfig, Media, UdpConfig};
use tipc_link::BearerSettings;
use tipc_wire::{Duration, MediaAddr};

use crate::error::Error;

/// An Ethernet bearer on an interface (needs `CAP_NET_RAW`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eth {
    /// The interface name.
    pub iface: String,
    /// Link settings; `None` takes the stack's defaults.
    pub link: LinkSettings,
}

/// A UDP bearer on a local address (no privileges needed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Udp {
    /// The local address and port (port 0 takes a free one).
    pub local: SocketAddr,
    /// Replicast peers; empty: the cluster's multicast group.
    pub peers: Vec<SocketAddr>,
    /// The bearer's name, `udp:NAME` (default `udp`).
    pub name: String,
    /// Link settings; `None` takes the stack's defaults.
    pub link: LinkSettings,
}

/// Per-bearer link settings (`tipc bearer set`); `None` fields take the
/// stack builder's tolerance and window and the kernel's priority 10.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkSettings {
    /// Link priority, 0–31.
    pub priority: Option<u8>,
    /// Link tolerance, 50 ms – 30 s.
    pub tolerance: Option<StdDuration>,
    /// Send window in packets, 16–8191.
    pub window: Option<u16>,
    /// Largest TIPC message (UDP only; Ethernet takes the interface's).
    pub mtu: Option<usize>,
}

/// One bearer to run: [`Eth`] or [`Udp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BearerSpec {
    /// An Ethernet interface.
    Eth(Eth),
    /// A UDP socket.
    Udp(Udp),
}

impl Eth {
    /// A bearer on interface `iface` with default settings.
    pub fn new(iface: impl Into<String>) -> Eth {
        Eth { iface: iface.into(), link: LinkSettings::default() }
    }
}

/// The link settings both kinds of bearer take.
macro_rules! link_setters {
    ($t:ty) => {
        impl $t {
            /// Link priority (0–31; default 10).
            #[must_use]
            pub fn priority(mut self, p: u8) -> Self {
                self.link.priority = Some(p);
                self
            }
            /// Link tolerance (50 ms – 30 s).
            #[must_use]
            pub fn tolerance(mut self, t: StdDuration) -> Self {
                self.link.tolerance = Some(t);
                self
            }
            /// Send window in packets.
            #[must_use]
            pub fn window(mut self, w: u16) -> Self {
                self.link.window = Some(w);
                self
            }
        }
    };
}
link_setters!(Eth);
link_setters!(Udp);

impl Udp {
    /// A bearer at `local` (multicast discovery, name `udp`).
    pub fn new(local: SocketAddr) -> Udp {
        Udp { local, peers: Vec::new(), name: "udp".into(), link: LinkSettings::default() }
    }
    /// Adds a replicast peer (repeatable): broadcast-type packets are
    /// copied to each instead of a multicast group.
    #[must_use]
    pub fn peer(mut self, p: SocketAddr) -> Udp {
        self.peers.push(p);
        self
    }
    /// The bearer's name (`udp:NAME`), sent in RESET/ACTIVATE and part of
    /// link names.
    #[must_use]
    pub fn name(mut self, n: impl Into<String>) -> Udp {
        self.name = n.into();
        self
    }
    /// Largest TIPC message on the bearer, in bytes: lowers the default,
    /// the kernel's 14 000 over IPv4 (1 280 over IPv6), whose packets
    /// leave as IP fragments — a value at or below the path MTU minus 28
    /// avoids them; the kernel's `tipc bearer set mtu`.
    #[must_use]
    pub fn mtu(mut self, m: usize) -> Udp {
        self.link.mtu = Some(m);
        self
    }
}

impl From<Eth> for BearerSpec {
    fn from(e: Eth) -> Self {
        BearerSpec::Eth(e)
    }
}
impl From<Udp> for BearerSpec {
    fn from(u: Udp) -> Self {
        BearerSpec::Udp(u)
    }
}

/// A bearer ready to open: the bearer crate's configuration, our media
/// address and the link settings.
pub(super) struct Resolved {
    pub(super) config: BearerConfig,
    pub(super) settings: BearerSettings,
    /// An MTU asked for, which caps the bearer's.
    pub(super) mtu_cap: Option<usize>,
}

impl BearerSpec {
    /// Resolves the spec with the stack's defaults (`tolerance`, `window`)
    /// and cluster `net_id`.
    ///
    /// # Errors
    /// [`Error::Bearer`] when an Ethernet interface is missing or down.
    pub(super) fn resolve(&self, net_id: u32, tolerance: StdDuration, window: u16) -> Result<Resolved, Error> {
        let (config, media, name, link) = match self {
            BearerSpec::Eth(e) => {
                let (_, mac) = tipc_bearer::lookup_interface(&e.iface)?;
                (BearerConfig::new(e.iface.clone()), MediaAddr::Eth(mac), e.iface.clone(), &e.link)
            }
            BearerSpec::Udp(u) => {
                let mut c = if u.peers.is_empty() {
                    UdpConfig::multicast(u.local, net_id)
                } else {
                    UdpConfig::replicast(u.local, u.peers.clone())
                };
                c.name = u.name.clone();
                let mut b = BearerConfig::new(u.name.clone());
                b.media = Media::Udp(c);
                (b, MediaAddr::Udp(u.local), u.name.clone(), &u.link)
            }
        };
        let mut settings = BearerSettings::new(media, &name, 1500);
        settings.priority = link.priority.unwrap_or(tipc_link::DEFAULT_PRIORITY).min(tipc_link::MAX_PRIORITY);
        settings.tolerance = Duration::from(link.tolerance.unwrap_or(tolerance));
        settings.window = link.window.unwrap_or(window);
        Ok(Resolved { config, settings, mtu_cap: link.mtu })
    }
}
