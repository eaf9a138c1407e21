//! # tipc-bearer — the bearers: raw Ethernet (AF_PACKET) and UDP
//!
//! Moves TIPC frames on one medium and nothing else: it knows Ethernet
//! and UDP, not TIPC's protocol state. [`Media`] picks the medium:
//!
//! * **Ethernet**: a raw `AF_PACKET` / `SOCK_RAW` socket (opened with
//!   `socket2`) bound to the interface and to ethertype 0x88CA; index and
//!   MAC come from `pnet`'s interface list, the MTU from `SIOCGIFMTU`.
//!   Needs `CAP_NET_RAW`.
//! * **UDP** ([`udp`]): an ordinary UDP socket, no privileges; a TIPC
//!   message is a datagram's whole payload; multicast or replicast for
//!   broadcast-type packets, as the kernel's UDP media does.
//!
//! What follows is shared by both:
//! * Batched IO: `recvmmsg` and `sendmmsg`, 64 frames per call by default
//!   (on UDP a frame to every replicast peer is one `sendmmsg` too).
//!   A blocking receive reads one frame with a plain `recv` while traffic is
//!   sparse (a request/response exchange then pays what raw `recv` pays)
//!   and switches to `recvmmsg` batches once frames queue up; a direct send
//!   is one contiguous `send`. (PACKET_RX_RING with TPACKET_V3 adds its
//!   block timer's latency; a TPACKET_V2 ring waited on with `poll` measured
//!   slower per round trip than `recv` on veth; the calls sit behind the
//!   private `sys` module so AF_XDP can replace them later.)
//! * Threads `tipc-eth-rx:<if>` and `tipc-eth-tx:<if>` (`tipc-udp-…:<name>`
//!   on UDP), joined on shutdown.
//!   The receive thread runs an [`RxHandler`]: by default it forwards
//!   batches to a bounded crossbeam channel; a stack can instead run its
//!   protocol work right there and avoid a thread hand-off per frame.
//!   [`TxHandle::send`] hands a frame to the kernel from the caller's thread
//!   with one non-blocking call when nothing is queued (latency), and queues
//!   it for the transmit thread otherwise (throughput, order kept).
//! * Filtering: frames of other ethertypes, frames for other hosts and our
//!   own echoes (multicast loops them back on UDP) never reach the stack;
//!   each message is cut to its TIPC size field (virtual NICs do not pad,
//!   physical ones do).
//! * Counters: [`BearerStats`].
//! * A full transmit queue blocks [`TxHandle::send`] or fails
//!   [`TxHandle::try_send`] with [`BearerError::WouldBlock`]; nothing is dropped.
//!
//! All `unsafe` code of the workspace is in this crate's private `sys`
//! module (`src/sys.rs`), each block with a `// SAFETY:` comment. Of its
//! system calls only one is public: [`open_packet_socket`], the bearer's raw
//! socket, for programs that handle raw TIPC frames themselves.
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod arena;
mod bearer;
mod error;
mod iface;
mod stats;
#[allow(unsafe_code)]
mod sys;
pub mod udp;

pub use bearer::{Bearer, BearerConfig, Media, POLLER_WAIT, RxFrame, RxHandler, RxPoller, TxFrame, TxHandle, Waker};
pub use error::BearerError;
pub use iface::{IfInfo, MIN_MTU, lookup_interface};
/// The socket type [`open_packet_socket`] returns.
pub use socket2::Socket;
pub use stats::BearerStats;
pub use udp::UdpConfig;

/// Opens the bearer's raw socket on interface `ifindex` (see
/// [`lookup_interface`]) in the calling thread's network namespace: an
/// `AF_PACKET` / `SOCK_RAW` socket bound to ethertype 0x88CA on that
/// interface that does not see its own frames again (`PACKET_IGNORE_OUTGOING`
/// where the kernel has it). [`Bearer`] reads and writes through such a
/// socket; a program that handles raw TIPC frames itself (a capture, a
/// frame relay, a fault injector) opens one here and uses `socket2` or
/// `nix` calls on it. Needs `CAP_NET_RAW`.
pub fn open_packet_socket(ifindex: u32) -> std::io::Result<Socket> {
    sys::open_packet_socket(ifindex)
}
