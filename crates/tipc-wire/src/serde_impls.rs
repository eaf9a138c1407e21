//! `serde::Serialize` for the identities and quantities that appear in
//! statistics (feature `serde`). Each is written the way an operator
//! reads it: node identities, node addresses, MACs and media addresses as
//! the text the kernel's `tipc` tool prints, numbers as numbers, scopes by
//! name, durations as whole microseconds.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::{
    Duration, Instance, MacAddr, MediaAddr, MemberId, NodeAddr, NodeId, PortId, Scope, SeqNo, ServiceRange, ServiceType,
};

/// Serialises as its `Display` text.
macro_rules! as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
as_text!(NodeId, NodeAddr, MacAddr, MediaAddr);

/// Serialises as its number.
macro_rules! as_u32 {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u32(self.0)
            }
        }
    )*};
}
as_u32!(PortId, ServiceType, Instance);

impl Serialize for SeqNo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

/// Whole microseconds.
impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.as_micros())
    }
}

/// `"cluster"`, `"node"`, `"zone"`, `"none"` (or the number of a scope
/// this version does not know).
impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Scope::Unknown(v) => s.serialize_u8(*v),
            known => s.serialize_str(known.name()),
        }
    }
}

/// `{"type": T, "lower": L, "upper": U}`, as `tipc nametable show -j`.
impl Serialize for ServiceRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ServiceRange", 3)?;
        st.serialize_field("type", &self.stype)?;
        st.serialize_field("lower", &self.lower)?;
        st.serialize_field("upper", &self.upper)?;
        st.end()
    }
}

/// `{"node": "01001001", "port": P}`.
impl Serialize for MemberId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("MemberId", 2)?;
        st.serialize_field("node", &self.node)?;
        st.serialize_field("port", &self.port)?;
        st.end()
    }
}
