//! The receive arena: received messages are copied out of the socket's
//! receive buffer into one shared buffer, many to an allocation.
//!
//! A message copied on its own costs two allocations (its buffer, and the
//! reference count `bytes` adds on its first clone, which the link makes)
//! and two frees, often on another thread and, past 1 KiB, on the
//! allocator's slow path. Here consecutive messages are slices of one
//! buffer of [`ARENA_SIZE`] bytes.
//!
//! When the buffer is full, the arena moves on to a buffer all of whose
//! messages are gone: the current one, or the oldest of up to [`SPARES`]
//! earlier ones it keeps. Only when none is free is a new buffer
//! allocated; the oldest spare is then let go, to live on until its last
//! message goes. A reader whose messages are consumed within a few
//! batches therefore cycles through the same buffers and never returns
//! to the allocator. Allocating a fresh buffer for every eight frames
//! made glibc shrink and regrow its heap (`madvise`, page faults and their
//! TLB shootdowns: about 4 % of the members' CPU in a broadcast to 8 on
//! veth, docs/throughput.md).
//!
//! The cost is memory held: the arena keeps up to `SPARES + 1` buffers
//! (136 KiB) for as long as the reader lives, and a message kept by the
//! application keeps its whole buffer (at most [`ARENA_SIZE`] bytes)
//! alive, as a kernel socket buffer keeps its page.
//!
//! What the copies into one buffer save is counted by `tools/instructions`
//! (docs/throughput.md): about 240–320 instructions per 64-byte hop and
//! 480–550 per 1 KiB message.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Bytes of one arena buffer: 8 KiB, five full Ethernet frames or about
/// eighty 64-byte messages. A 64 KiB buffer counted 2.6 % fewer
/// instructions per 1 KiB message and no fewer per round trip, and a held
/// message would keep eight times as much memory.
pub const ARENA_SIZE: usize = 8 * 1024;

/// Earlier buffers an arena keeps to reuse once their messages are gone:
/// 16, room for a batch of 64 full frames and as much again still queued
/// for the application.
pub const SPARES: usize = 16;

/// A receive thread's arena (see the module's documentation).
#[derive(Debug, Default)]
pub(crate) struct RxArena {
    /// The buffer being filled (its empty tail: the messages cut from it
    /// are their own handles).
    buf: BytesMut,
    /// Earlier buffers' empty tails, oldest first.
    spares: VecDeque<BytesMut>,
    /// Buffers allocated (new ones, not reused ones).
    allocated: u64,
}

impl RxArena {
    /// Copies `data` into the arena and returns it as its own [`Bytes`],
    /// sharing the arena's allocation.
    pub(crate) fn copy(&mut self, data: &[u8]) -> Bytes {
        if self.buf.capacity() - self.buf.len() < data.len() {
            self.next_buffer(data.len().max(ARENA_SIZE));
        }
        self.buf.extend_from_slice(data);
        self.buf.split().freeze()
    }

    /// Makes `buf` a buffer with room for `need` bytes: the current one
    /// or the oldest spare if every message in it is gone, else a new one.
    fn next_buffer(&mut self, need: usize) {
        // `try_reclaim` succeeds only on the sole handle of its buffer, and
        // then starts it over from its beginning
        if self.buf.try_reclaim(need) {
            return;
        }
        let full = std::mem::take(&mut self.buf);
        if let Some(oldest) = self.spares.front_mut()
            && oldest.try_reclaim(need)
        {
            self.buf = std::mem::replace(oldest, full);
            self.spares.rotate_left(1);
            return;
        }
        // (before the first allocation `full` holds no buffer at all)
        if self.allocated > 0 {
            if self.spares.len() == SPARES {
                // let the oldest go: it lives on until its last message does
                self.spares.pop_front();
            }
            self.spares.push_back(full);
        }
        self.buf = BytesMut::with_capacity(need);
        self.allocated += 1;
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

    /// The start of the allocation a message lives in is one of `starts`
    /// when it shares a buffer the arena had before.
    fn buffer_of(m: &Bytes, starts: &[(usize, usize)]) -> Option<usize> {
        let p = m.as_ptr() as usize;
        starts.iter().position(|&(lo, hi)| lo <= p && p < hi)
    }

    #[test]
    fn buffers_are_reused_once_their_messages_are_gone() {
        let mut a = RxArena::default();
        // fill several buffers, remembering where each message lives
        let first: Vec<Bytes> = (0..40u8).map(|i| a.copy(&[i; 1000])).collect();
        let mut starts: Vec<(usize, usize)> = Vec::new();
        for m in &first {
            let p = m.as_ptr() as usize;
            if !starts.iter().any(|&(lo, hi)| lo <= p && p < hi) {
                starts.push((p, p + ARENA_SIZE));
            }
        }
        assert!(starts.len() >= 5, "40 KB take at least five buffers");
        let allocated = a.allocated;
        drop(first);
        // the application consumed them all: the next messages go into the
        // same buffers, without a new allocation, again and again
        for round in 0..10u8 {
            let again: Vec<Bytes> = (0..40u8).map(|i| a.copy(&[i ^ round; 1000])).collect();
            for (i, m) in again.iter().enumerate() {
                assert!(buffer_of(m, &starts).is_some(), "round {round}: message {i} in a new buffer");
                assert!(m.iter().all(|&b| b == i as u8 ^ round));
            }
        }
        assert_eq!(a.allocated, allocated);
    }

    #[test]
    fn a_buffer_with_a_message_still_held_is_not_reused() {
        let mut a = RxArena::default();
        let held = a.copy(&[7u8; 1000]);
        let mut all = Vec::new();
        for i in 0..(4 * SPARES * ARENA_SIZE / 1000) {
            let m = a.copy(&[(i % 251) as u8; 1000]);
            // the others are consumed one batch later
            all.push((i, m));
            if all.len() > 64 {
                all.remove(0);
            }
            assert!(held.iter().all(|&b| b == 7), "after message {i}");
        }
        for (i, m) in all {
            assert!(m.iter().all(|&b| b == (i % 251) as u8));
        }
        assert!(a.spares.len() <= SPARES);
    }

    proptest::proptest! {
        /// Whatever the sizes and whatever the application keeps, every
        /// kept message keeps its bytes, and the arena holds at most
        /// `SPARES` spare buffers.
        #[test]
        fn kept_messages_keep_their_bytes(ops in proptest::collection::vec((1usize..3000, 0u8..4), 1..400)) {
            let mut a = RxArena::default();
            let mut kept: Vec<(u8, Bytes)> = Vec::new();
            for (n, (len, keep)) in ops.into_iter().enumerate() {
                let tag = (n % 251) as u8;
                let m = a.copy(&vec![tag; len]);
                proptest::prop_assert_eq!(m.len(), len);
                match keep {
                    0 => {}
                    1 => kept.push((tag, m)),
                    2 if !kept.is_empty() => { kept.remove(0); }
                    _ => kept.push((tag, m)),
                }
                for (t, k) in &kept {
                    proptest::prop_assert!(k.iter().all(|b| b == t));
                }
                proptest::prop_assert!(a.spares.len() <= SPARES);
            }
        }
    }
}
