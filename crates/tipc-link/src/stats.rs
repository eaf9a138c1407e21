//! Link counters, modelled on `tipc link stat show`.

/// Counters of one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LinkStats {
    /// Data and protocol packets sent on the link (sequenced).
    pub sent_pkts: u64,
    /// Sequenced packets received in order.
    pub recv_pkts: u64,
    /// Packets retransmitted.
    pub retransmitted: u64,
    /// Duplicate packets received.
    pub duplicates: u64,
    /// Packets placed in the deferred (out-of-order) queue.
    pub deferred: u64,
    /// NACKs (STATE with a gap) sent.
    pub sent_nacks: u64,
    /// NACKs received.
    pub recv_nacks: u64,
    /// STATE messages sent.
    pub sent_states: u64,
    /// STATE messages received.
    pub recv_states: u64,
    /// Probes sent.
    pub sent_probes: u64,
    /// Probes received.
    pub recv_probes: u64,
    /// Fragments sent.
    pub sent_fragments: u64,
    /// Fragments received.
    pub recv_fragments: u64,
    /// Bundles sent.
    pub sent_bundles: u64,
    /// Messages sent inside bundles.
    pub sent_bundled: u64,
    /// Bundles received.
    pub recv_bundles: u64,
    /// Times a sender was refused for congestion.
    pub link_congs: u64,
    /// Link resets / failures.
    pub resets: u64,
    /// Times this link failed while a parallel link stayed up, so its
    /// packets went over that one (FAILOVER_MSG).
    pub failovers: u64,
    /// Packets of this link handed to a failover (unacknowledged, backlog
    /// and the dummy).
    pub tunnelled: u64,
    /// Messages delivered from a peer's failover tunnelled on this link.
    pub tunnel_delivered: u64,
    /// Tunnel fragments sent on this link: FAILOVER_MSGs carrying part of
    /// a failed link's packet too large for this link.
    pub tunnel_fragments: u64,
    /// Packets put together from tunnel fragments a peer sent on this
    /// link.
    pub tunnel_reassembled: u64,
    /// Times this link came up beside another and synched (SYNCH_MSG sent).
    pub synchs: u64,
    /// Messages that arrived on this link while it synched and were held
    /// back until the old link had delivered what was sent before them.
    pub synch_held: u64,
}

/// Counters of the whole layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LayerStats {
    /// Frames that failed validation.
    pub malformed: u64,
    /// Frames from unknown nodes or for other nodes / networks.
    pub foreign: u64,
    /// Discovery messages received.
    pub disc_rx: u64,
    /// Discovery messages sent.
    pub disc_tx: u64,
    /// Protocol errors that reset a link (e.g. a fragment without FIRST).
    pub proto_errors: u64,
    /// Broadcast-link packets dropped: duplicates, outside the receive
    /// window, or from a peer not yet synchronised.
    pub bcast_dropped: u64,
    /// Discovered nodes not taken because [`crate::MAX_PEERS`] nodes were
    /// known, all with links up.
    pub peers_refused: u64,
    /// Discoveries of a known node on a further bearer that made no link:
    /// it already has two.
    pub links_refused: u64,
    /// Known nodes forgotten: link down and silent for [`crate::PEER_EXPIRY`],
    /// or the longest-silent such node when the table was full.
    pub peers_forgotten: u64,
    /// Conflicts seen on the segment, each also reported as a
    /// [`crate::Conflict`] event (other clusters and reflected frames: the
    /// first from each MAC).
    pub conflicts: u64,
}
