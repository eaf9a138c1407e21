//! Message users, per-user message types and other small code points.
//!
//! Every enum keeps unknown values as `Unknown(n)` so that odd input is
//! reported and dropped rather than mis-read, and converts losslessly both ways.

macro_rules! enum_with_unknown {
    (
        $(#[$m:meta])* pub enum $name:ident($ty:ty) {
            $( $(#[$vm:meta])* $var:ident = $val:expr => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vm])* $var, )+
            /// A value this implementation does not know.
            Unknown($ty),
        }
        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                match v {
                    $( x if x == $val => $name::$var, )+
                    other => $name::Unknown(other),
                }
            }
        }
        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                match v {
                    $( $name::$var => $val, )+
                    $name::Unknown(other) => other,
                }
            }
        }
        impl $name {
            /// The kernel's name for this value (`"?"` when unknown).
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$var => $text, )+
                    $name::Unknown(_) => "?",
                }
            }
        }
        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self {
                    $name::Unknown(v) => write!(f, "?{}", v),
                    other => f.write_str(other.name()),
                }
            }
        }
    };
}

enum_with_unknown! {
    /// The message user (word 0 bits 25–28): data importance or internal protocol.
    pub enum User(u8) {
        /// Data, low importance.
        LowImportance = 0 => "LOW",
        /// Data, medium importance.
        MediumImportance = 1 => "MEDIUM",
        /// Data, high importance.
        HighImportance = 2 => "HIGH",
        /// Data, critical importance.
        CriticalImportance = 3 => "CRITICAL",
        /// Broadcast-link synchronisation and legacy NACKs.
        BcastProtocol = 5 => "BCAST_PROTOCOL",
        /// A bundle of small messages.
        MsgBundler = 6 => "MSG_BUNDLER",
        /// Link RESET / ACTIVATE / STATE.
        LinkProtocol = 7 => "LINK_PROTOCOL",
        /// Connection probes and acks.
        ConnManager = 8 => "CONN_MANAGER",
        /// Group membership and flow control.
        GroupProtocol = 9 => "GROUP_PROTOCOL",
        /// Link synch / failover tunnelling.
        TunnelProtocol = 10 => "TUNNEL_PROTOCOL",
        /// Name table updates.
        NameDistributor = 11 => "NAME_DISTRIBUTOR",
        /// A fragment of a long message.
        MsgFragmenter = 12 => "MSG_FRAGMENTER",
        /// Neighbour discovery.
        LinkConfig = 13 => "LINK_CONFIG",
        /// Key distribution (only with encryption configured).
        MsgCrypto = 14 => "MSG_CRYPTO",
    }
}

impl User {
    /// Whether this is one of the four data users (0–3).
    pub fn is_data(self) -> bool {
        matches!(self, User::LowImportance | User::MediumImportance | User::HighImportance | User::CriticalImportance)
    }
}

enum_with_unknown! {
    /// Importance of a data message (its user value 0–3), or 4 for system traffic.
    pub enum Importance(u8) {
        /// Low (default for RDM sockets).
        Low = 0 => "LOW",
        /// Medium.
        Medium = 1 => "MEDIUM",
        /// High.
        High = 2 => "HIGH",
        /// Critical.
        Critical = 3 => "CRITICAL",
        /// Internal protocol traffic; never rejected for congestion.
        System = 4 => "SYSTEM",
    }
}

enum_with_unknown! {
    /// Data message types (word 1 bits 29–31 of users 0–3).
    pub enum DataType(u8) {
        /// Connection data (24-byte header).
        Conn = 0 => "CONN",
        /// RDM multicast to a service range (44-byte header).
        Mcast = 1 => "MCAST",
        /// Sent to a service name (40-byte header).
        Named = 2 => "NAMED",
        /// Sent to a port id (32-byte header).
        Direct = 3 => "DIRECT",
        /// Group member event (node-local, never on the wire).
        GrpMemberEvt = 4 => "GRP_MEMBER_EVT",
        /// Group broadcast.
        GrpBcast = 5 => "GRP_BCAST",
        /// Group multicast to an instance.
        GrpMcast = 6 => "GRP_MCAST",
        /// Group unicast / anycast.
        GrpUcast = 7 => "GRP_UCAST",
    }
}

impl DataType {
    /// Whether this is one of the group data types (4–7).
    pub fn is_group(self) -> bool {
        matches!(self, DataType::GrpMemberEvt | DataType::GrpBcast | DataType::GrpMcast | DataType::GrpUcast)
    }
}

enum_with_unknown! {
    /// LINK_PROTOCOL message types.
    pub enum LinkProtoType(u8) {
        /// Supervision, acks and NACKs.
        State = 0 => "STATE",
        /// Link reset request.
        Reset = 1 => "RESET",
        /// Link activation.
        Activate = 2 => "ACTIVATE",
    }
}

enum_with_unknown! {
    /// LINK_CONFIG (discovery) message types.
    pub enum DiscoveryType(u8) {
        /// Request (broadcast).
        Req = 0 => "DSC_REQ",
        /// Response (unicast).
        Resp = 1 => "DSC_RESP",
        /// Address trial (broadcast).
        Trial = 2 => "DSC_TRIAL",
        /// Objection to a trial address, with a suggestion.
        TrialFail = 3 => "DSC_TRIAL_FAIL",
    }
}

enum_with_unknown! {
    /// MSG_FRAGMENTER message types.
    pub enum FragmentType(u8) {
        /// First fragment (carries the original header).
        First = 0 => "FIRST_FRAGMENT",
        /// Middle fragment.
        Middle = 1 => "FRAGMENT",
        /// Last fragment.
        Last = 2 => "LAST_FRAGMENT",
    }
}

enum_with_unknown! {
    /// NAME_DISTRIBUTOR message types.
    pub enum NameDistrType(u8) {
        /// Add bindings.
        Publication = 0 => "PUBLICATION",
        /// Remove bindings.
        Withdrawal = 1 => "WITHDRAWAL",
    }
}

enum_with_unknown! {
    /// GROUP_PROTOCOL message types.
    pub enum GroupProtoType(u8) {
        /// Member joins (sync point, window grant).
        Join = 0 => "GRP_JOIN",
        /// Member leaves (sync point).
        Leave = 1 => "GRP_LEAVE",
        /// Window advertisement.
        Adv = 2 => "GRP_ADV",
        /// Broadcast acknowledgement.
        Ack = 3 => "GRP_ACK",
        /// Receiver wants a large window back.
        Reclaim = 4 => "GRP_RECLAIM",
        /// Answer to a reclaim, with the unused window.
        Remit = 5 => "GRP_REMIT",
    }
}

enum_with_unknown! {
    /// CONN_MANAGER message types.
    pub enum ConnMgrType(u8) {
        /// Connection probe.
        Probe = 0 => "CONN_PROBE",
        /// Probe reply.
        ProbeReply = 1 => "CONN_PROBE_REPLY",
        /// Flow-control acknowledgement.
        Ack = 2 => "CONN_ACK",
    }
}

enum_with_unknown! {
    /// TUNNEL_PROTOCOL message types.
    pub enum TunnelType(u8) {
        /// Synchronisation of a parallel link.
        Synch = 0 => "SYNCH",
        /// Failover of a lost link's packets.
        Failover = 1 => "FAILOVER",
    }
}

enum_with_unknown! {
    /// Error codes in data messages (word 1 bits 25–28).
    pub enum ErrorCode(u8) {
        /// No error.
        Ok = 0 => "OK",
        /// No such service name.
        NoName = 1 => "NO_NAME",
        /// No such port.
        NoPort = 2 => "NO_PORT",
        /// No such node.
        NoNode = 3 => "NO_NODE",
        /// Receiver overloaded.
        Overload = 4 => "OVERLOAD",
        /// Connection shut down.
        ConnShutdown = 5 => "CONN_SHUTDOWN",
    }
}

enum_with_unknown! {
    /// Lookup scope (word 1 bits 19–20 of data messages) and binding scope.
    pub enum Scope(u8) {
        /// No scope (direct and connection messages).
        None = 0 => "none",
        /// Zone (legacy; treated as cluster).
        Zone = 1 => "zone",
        /// The whole cluster.
        Cluster = 2 => "cluster",
        /// This node only.
        Node = 3 => "node",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn unknown_values_survive() {
        for v in 0u8..16 {
            assert_eq!(u8::from(User::from(v)), v);
        }
        assert_eq!(User::from(4), User::Unknown(4));
        assert_eq!(User::from(7).to_string(), "LINK_PROTOCOL");
        assert_eq!(LinkProtoType::from(3).to_string(), "?3");
    }
}
