//! The binding word, encoded bit for bit as the kernel encodes it.
//!
//! The model keeps the real encoding (a wrapper "address" plus three tag bits) instead of an enum,
//! so that malformed combinations (IN_TRANSIT over Active, LOCKED over InTransit) are representable
//! and property S6 can rule them out rather than have the type system hide them.

use std::fmt;

use crate::state::WrapId;

/// One binding word: `(wrapper index + 1) << 3 | LOCKED | IN_TRANSIT | INACTIVE`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Word(u8);

/// The protocol state a word encodes, ignoring `LOCKED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `0`: no canonical wrapper.
    Detached,
    /// `W`: W is alive and canonical.
    Active(WrapId),
    /// `W | INACTIVE`: W's memory is cached for revival.
    Inactive(WrapId),
    /// `W | INACTIVE | IN_TRANSIT`: W's teardown holds the baton.
    InTransit(WrapId),
    /// Any other bit pattern (never valid).
    Malformed,
}

impl Word {
    /// Tag bit: the wrapper is dead (its memory is cached or being torn down).
    pub const INACTIVE: u8 = 0b001;
    /// Tag bit: the wrapper is between its binding transition and its free.
    pub const IN_TRANSIT: u8 = 0b010;
    /// Tag bit: the per-word spin lock.
    pub const LOCKED: u8 = 0b100;
    /// The Detached word.
    pub const DETACHED: Word = Word(0);

    fn pointer(w: WrapId) -> u8 {
        assert!(w < 31, "the model encodes at most 31 wrappers per run");
        (w + 1) << 3
    }

    /// `Active(w)`.
    pub fn active(w: WrapId) -> Word {
        Word(Self::pointer(w))
    }

    /// `Inactive(w)`.
    pub fn inactive(w: WrapId) -> Word {
        Word(Self::pointer(w) | Self::INACTIVE)
    }

    /// `InTransit(w)`.
    pub fn in_transit(w: WrapId) -> Word {
        Word(Self::pointer(w) | Self::INACTIVE | Self::IN_TRANSIT)
    }

    /// The wrapper the word points at, if any.
    pub fn wrapper(self) -> Option<WrapId> {
        match self.0 >> 3 {
            0 => None,
            p => Some(p - 1),
        }
    }

    /// Whether the lock bit is set.
    pub fn locked(self) -> bool {
        self.0 & Self::LOCKED != 0
    }

    /// Whether the in-transit bit is set.
    pub fn in_transit_bit(self) -> bool {
        self.0 & Self::IN_TRANSIT != 0
    }

    /// This word with the lock bit set.
    pub fn with_lock(self) -> Word {
        Word(self.0 | Self::LOCKED)
    }

    /// This word with the lock bit clear.
    pub fn unlocked(self) -> Word {
        Word(self.0 & !Self::LOCKED)
    }

    /// The protocol state, ignoring the lock bit.
    pub fn kind(self) -> Kind {
        let tags = self.0 & 0b011;
        match (self.wrapper(), tags) {
            (None, 0) => Kind::Detached,
            (Some(w), 0) => Kind::Active(w),
            (Some(w), 0b001) => Kind::Inactive(w),
            (Some(w), 0b011) if !self.locked() => Kind::InTransit(w),
            _ => Kind::Malformed,
        }
    }

    /// A short name of the state for diagrams: `Detached`, `Active`, `Active+LOCKED`, ...
    pub fn shape(self) -> &'static str {
        match (self.kind(), self.locked()) {
            (Kind::Detached, false) => "Detached",
            (Kind::Active(_), false) => "Active",
            (Kind::Active(_), true) => "ActiveLocked",
            (Kind::Inactive(_), false) => "Inactive",
            (Kind::Inactive(_), true) => "InactiveLocked",
            (Kind::InTransit(_), _) => "InTransit",
            _ => "Malformed",
        }
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            Kind::Detached => write!(f, "Detached")?,
            Kind::Active(w) => write!(f, "Active(w{w})")?,
            Kind::Inactive(w) => write!(f, "Inactive(w{w})")?,
            Kind::InTransit(w) => write!(f, "InTransit(w{w})")?,
            Kind::Malformed => write!(f, "Malformed({:#010b})", self.0)?,
        }
        if self.locked() {
            write!(f, "|LOCKED")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() {
        assert_eq!(Word::DETACHED.kind(), Kind::Detached);
        assert_eq!(Word::active(3).kind(), Kind::Active(3));
        assert_eq!(Word::active(3).with_lock().kind(), Kind::Active(3));
        assert!(Word::active(3).with_lock().locked());
        assert_eq!(Word::inactive(0).kind(), Kind::Inactive(0));
        assert_eq!(Word::in_transit(2).kind(), Kind::InTransit(2));
        assert_eq!(Word::in_transit(2).with_lock().kind(), Kind::Malformed);
        assert_eq!(Word(Word::IN_TRANSIT | 8).kind(), Kind::Malformed);
        assert_eq!(Word(Word::INACTIVE).kind(), Kind::Malformed);
        assert_eq!(
            format!("{:?}", Word::inactive(1).with_lock()),
            "Inactive(w1)|LOCKED"
        );
    }
}
