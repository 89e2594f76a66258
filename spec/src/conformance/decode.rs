//! Bytes → [`Program`]: how the fuzzer (and anything else holding raw bytes) builds a test case.
//!
//! One byte per object, then two bytes per operation until the input ends (at most
//! [`MAX_OPS`]). Every input decodes to a program, and every program is meaningful: indices are
//! taken modulo what exists when the operation runs, and the setup is normalised by [`setup`].
//!
//! [`setup`]: super::setup

use arbitrary::{Arbitrary, Result, Unstructured};

use super::{MAX_OBJECTS, MAX_OPS, Program};
use crate::config::ObjSpec;
use crate::sequential::Op;

impl Op {
    /// Decodes one operation from a tag byte and an argument byte. Lookups are the most frequent,
    /// then drops of wrapper and native references.
    pub fn decode(tag: u8, arg: u8) -> Op {
        let thread = arg & 1;
        let x = arg >> 1;
        // Bit 4 turns one drop tag into a parked drop and the shutdown tag into an unwind.
        let alt = tag & 0b1_0000 != 0;
        match tag % 16 {
            0..=5 => Op::Lookup {
                thread,
                obj: x,
                // One lookup in eight fails its allocation (if it allocates).
                alloc_fails: tag >> 5 == 7,
            },
            8 if alt => Op::DropParked { thread, nth: x },
            6..=8 => Op::DropWrapper { thread, nth: x },
            9 => Op::Move { thread, nth: x },
            10 => Op::Detach { thread, nth: x },
            11 => Op::CloneNative { obj: x },
            12 => Op::StashHandle { thread, nth: x },
            13 | 14 => Op::DropNative { obj: x },
            _ if alt => Op::Unwind { thread },
            _ => Op::Shutdown,
        }
    }
}

impl ObjSpec {
    /// Decodes one object of a conformance setup from a byte: bits 0–1 zero = a finalizer type
    /// (never cached), bit 2 = rooted, bit 3 = its value holds object `(byte >> 4) % n`.
    pub fn decode(byte: u8, n: u8) -> ObjSpec {
        ObjSpec {
            header: true,
            finalizer: byte & 0b11 == 0,
            rooted: byte & 0b100 != 0,
            holds: (byte & 0b1000 != 0).then_some((byte >> 4) % n),
        }
    }
}

impl<'a> Arbitrary<'a> for Program {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let n = u.int_in_range(1..=MAX_OBJECTS as u8)?;
        let objects = (0..n)
            .map(|_| Ok(ObjSpec::decode(u.arbitrary()?, n)))
            .collect::<Result<_>>()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(Op::decode(u.arbitrary()?, u.arbitrary()?));
        }
        Ok(Program { objects, ops })
    }
}
