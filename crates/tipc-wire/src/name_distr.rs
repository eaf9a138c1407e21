//! Name-distribution publication items (20 bytes each).

use crate::field::{set_word, word};
use crate::{Instance, PortId, ServiceRange, ServiceType};

/// One binding as distributed to other nodes. The publishing node is the
/// message's originating node; the scope is not carried (always cluster).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublItem {
    /// Service type.
    pub stype: ServiceType,
    /// Lowest instance.
    pub lower: Instance,
    /// Highest instance.
    pub upper: Instance,
    /// Publishing socket's port.
    pub port: PortId,
    /// Key, unique per publication on its node.
    pub key: u32,
}

impl PublItem {
    /// Encoded size.
    pub const LEN: usize = 20;

    /// Reads an item from exactly 20 bytes (shorter input reads zeros).
    pub fn read(b: &[u8]) -> PublItem {
        PublItem {
            stype: ServiceType(word(b, 0)),
            lower: Instance(word(b, 1)),
            upper: Instance(word(b, 2)),
            port: PortId(word(b, 3)),
            key: word(b, 4),
        }
    }
    /// Writes the item into 20 bytes.
    pub fn write(&self, b: &mut [u8]) {
        set_word(b, 0, self.stype.0);
        set_word(b, 1, self.lower.0);
        set_word(b, 2, self.upper.0);
        set_word(b, 3, self.port.0);
        set_word(b, 4, self.key);
    }
    /// The service range of the binding.
    pub fn range(&self) -> ServiceRange {
        ServiceRange { stype: self.stype, lower: self.lower, upper: self.upper }
    }
}
