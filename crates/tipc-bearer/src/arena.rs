//! The receive arena: received messages are copied out of the socket's
//! receive buffer into one shared buffer, many to an allocation.
//!
//! A message copied on its own costs two allocations (its buffer, and the
//! reference count `bytes` adds on its first clone, which the link makes)
//! and two frees, often on another thread and, past 1 KiB, on the
//! allocator's slow path. Here consecutive messages are slices of one
//! buffer of [`ARENA_SIZE`] bytes: when it is full and every message in
//! it has been dropped, the buffer is used again; otherwise a new one is
//! allocated and the old one lives on until its last message goes.
//!
//! The cost is memory held longer: a message kept by the application keeps
//! its whole buffer (at most [`ARENA_SIZE`] bytes) alive, as a kernel
//! socket buffer keeps its page.
//!
//! What it saves is counted by `tools/instructions` (docs/throughput.md):
//! about 240–320 instructions per 64-byte hop and 480–550 per 1 KiB message. On
//! the veth bench the times did not move beyond their noise.

use bytes::{Bytes, BytesMut};

/// Bytes of one arena buffer: 8 KiB, five full Ethernet frames or about
/// eighty 64-byte messages. A 64 KiB buffer counted 2.6 % fewer
/// instructions per 1 KiB message and no fewer per round trip, and a held
/// message would keep eight times as much memory.
pub const ARENA_SIZE: usize = 8 * 1024;

/// A receive thread's arena (see the module's documentation).
#[derive(Debug, Default)]
pub(crate) struct RxArena {
    buf: BytesMut,
}

impl RxArena {
    /// Copies `data` into the arena and returns it as its own [`Bytes`],
    /// sharing the arena's allocation.
    pub(crate) fn copy(&mut self, data: &[u8]) -> Bytes {
        if self.buf.capacity() - self.buf.len() < data.len() {
            // reuses the buffer if every message in it is gone; otherwise a
            // new one of at least ARENA_SIZE
            self.buf.reserve(data.len().max(ARENA_SIZE));
        }
        self.buf.extend_from_slice(data);
        self.buf.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_exact_and_independent() {
        let mut a = RxArena::default();
        let msgs: Vec<Vec<u8>> = (0..300u32).map(|i| vec![(i % 251) as u8; 1 + (i as usize * 37) % 1500]).collect();
        let kept: Vec<Bytes> = msgs.iter().map(|m| a.copy(m)).collect();
        for (m, k) in msgs.iter().zip(&kept) {
            assert_eq!(&k[..], &m[..]);
        }
        // larger than a whole arena
        let big = vec![9u8; ARENA_SIZE * 2 + 3];
        assert_eq!(&a.copy(&big)[..], &big[..]);
        assert_eq!(&a.copy(b"after")[..], b"after");
        // earlier copies are untouched by later ones
        for (m, k) in msgs.iter().zip(&kept) {
            assert_eq!(&k[..], &m[..]);
        }
    }

    #[test]
    fn a_held_message_keeps_its_bytes_while_the_arena_moves_on() {
        let mut a = RxArena::default();
        let held = a.copy(&[4u8; 1000]);
        // wrap round the buffer several times, with messages dropped at once
        // and messages kept for a while
        let mut kept = Vec::new();
        for i in 0..(5 * ARENA_SIZE / 1000) {
            let m = a.copy(&[(i % 200) as u8; 1000]);
            if i % 7 == 0 {
                kept.push((i, m));
            }
            if kept.len() > 20 {
                kept.remove(0);
            }
        }
        assert!(held.iter().all(|&b| b == 4));
        for (i, m) in kept {
            assert!(m.iter().all(|&b| b == (i % 200) as u8));
        }
    }
}
