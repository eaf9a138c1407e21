//! The pcap tap: every frame the node sends or receives, written as an
//! Ethernet frame with its time since the stack started
//! ([`super::StackBuilder::pcap`]). On a UDP bearer each message is
//! written as the IPv4 or IPv6 UDP datagram that carries it (Ethernet
//! addresses zero; a broadcast-type packet to the limited-broadcast
//! address, or `ff02::1`, on the bearer's port), so pcap tools decode it
//! as they decode the kernel's.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tipc_wire::pcap::PcapSink;

use tipc_wire::{Duration, EthFrame, MediaAddr, TxDest, WireError};

/// A pcap file being written, or nothing.
#[derive(Default)]
pub(super) struct Tap(Option<PcapSink<BufWriter<File>>>);

impl Tap {
    /// A tap writing to a new file at `path`.
    ///
    /// # Errors
    /// The file could not be created or its header written.
    pub(super) fn create(path: &Path) -> Result<Tap, WireError> {
        PcapSink::create(path).map(|s| Tap(Some(s)))
    }

    /// Whether frames are recorded.
    pub(super) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Records a frame `src` → `dst` carrying the TIPC message `msg`, at
    /// `at_us` microseconds since the stack started. A failed write is not
    /// an error of the node: the recording just misses the frame.
    pub(super) fn record(&mut self, at_us: u64, dst: TxDest, src: MediaAddr, msg: &[u8]) {
        let Some(p) = self.0.as_mut() else { return };
        let frame = match src {
            MediaAddr::Udp(from) => {
                let to = match dst {
                    TxDest::Unicast(MediaAddr::Udp(a)) => a,
                    _ => {
                        let all: IpAddr = if from.is_ipv4() {
                            Ipv4Addr::BROADCAST.into()
                        } else {
                            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).into()
                        };
                        SocketAddr::new(all, from.port())
                    }
                };
                udp_frame(from, to, msg)
            }
            _ => EthFrame::build(dst.mac().unwrap_or_default(), src.mac().unwrap_or_default(), msg),
        };
        let _ = p.write_frame(Duration::from_micros(at_us), &frame);
    }

    /// Flushes and closes the file; later frames are not recorded.
    pub(super) fn close(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::io::Write::flush(&mut p.into_inner());
        }
    }
}

/// An Ethernet frame (zero addresses) carrying `msg` in a UDP datagram
/// `from` → `to` (one IP version; a mixed pair is written as IPv4 with the
/// IPv6 side unspecified). UDP checksums are zero, as the kernel sends
/// them over IPv4.
fn udp_frame(from: SocketAddr, to: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let udp_len = 8 + msg.len();
    let mut f = Vec::with_capacity(14 + 40 + udp_len);
    f.extend_from_slice(&[0u8; 12]);
    match (from.ip(), to.ip()) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(udp_len as u16).to_be_bytes());
            f.extend_from_slice(&[17, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let v4 = |a: IpAddr| match a {
                IpAddr::V4(x) => x.octets(),
                IpAddr::V6(_) => [0; 4],
            };
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
            h[8] = 64;
            h[9] = 17;
            h[12..16].copy_from_slice(&v4(s));
            h[16..20].copy_from_slice(&v4(d));
            let sum = h.chunks(2).fold(0u32, |a, w| a + u32::from(u16::from_be_bytes([w[0], w[1]])));
            let sum = (sum & 0xffff) + (sum >> 16);
            let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            f.extend_from_slice(&h);
        }
    }
    f.extend_from_slice(&from.port().to_be_bytes());
    f.extend_from_slice(&to.port().to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(msg);
    f
}
