//! The native values of tether's own classes: `tether.Object` ([`Fields`]), `tether.Array`
//! ([`Items`]) and `tether.Function` ([`Target`]). Each is a [`Class`](super::class::Class)
//! registered with `add_class`, like any binding author's type (their `impl Class` live in
//! `object.rs`, `array.rs` and `function.rs`).

use super::member::Member;
use super::native::{Handle, Native, Py, Value, Visit, release_all, release_py};

/// The fields of a `tether.Object`: one member per declared field, the first
/// [`INLINE_FIELDS`] in the native block itself.
///
/// A field read is a chain of dependent loads (wrapper, native block, member, the member's
/// object, its binding word, its wrapper). With the members in a separate allocation, found by
/// an index the getter loaded first, a `tether.Object` hit took ~22.8 ns on CPython 3.14; inline
/// and at a constant offset ([`inline_field`](Self::inline_field)), as an extension class's
/// member is, ~21 ns (inline but indexed at run time measured no gain). An object with at most
/// [`INLINE_FIELDS`] fields also makes one allocation instead of two.
// C layout: the length next to the first members (Rust's layout put it a cache line further).
#[repr(C)]
pub struct Fields {
    /// How many fields the object has.
    len: usize,
    inline: [Member; INLINE_FIELDS],
    /// The fields after the first [`INLINE_FIELDS`] (empty, so not allocated, for most classes).
    rest: Box<[Member]>,
}

/// How many of an object's fields live in its native block (the rest in one allocation).
pub const INLINE_FIELDS: usize = 4;

/// The elements of a `tether.Array` (immutable).
pub struct Items(pub Box<[Value]>);

/// The Python callable a `tether.Function` calls back into (released iteratively, see
/// `release_py`).
pub struct Target(pub core::mem::ManuallyDrop<Py>);

impl Drop for Target {
    fn drop(&mut self) {
        // SAFETY: dropped once; the field is not used after this.
        release_py(unsafe { core::mem::ManuallyDrop::take(&mut self.0) });
    }
}

impl Fields {
    /// `len` unset fields.
    pub fn new(len: usize) -> Self {
        Self {
            inline: [const { Member::new() }; INLINE_FIELDS],
            rest: (INLINE_FIELDS..len).map(|_| Member::new()).collect(),
            len,
        }
    }

    /// Field `index`, if the object has it.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&Member> {
        match self.inline.get(index) {
            Some(m) if index < self.len => Some(m),
            Some(_) => None,
            None => self.rest.get(index - INLINE_FIELDS),
        }
    }

    /// Inline field `I`, if the object has it: [`get`](Self::get) with the index a constant, so
    /// the member's address is the native block's plus a constant and a read's chain of
    /// dependent loads does not wait for the index (as an extension class's member).
    #[inline]
    pub fn inline_field<const I: usize>(&self) -> Option<&Member> {
        if I < self.len {
            Some(&self.inline[I])
        } else {
            None
        }
    }

    /// Every field, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.inline[..self.len.min(INLINE_FIELDS)]
            .iter()
            .chain(self.rest.iter())
    }

    /// Visits the Python objects the fields hold.
    pub fn visit(&self, visit: &Visit<'_>) {
        for f in self.iter() {
            f.visit(visit);
        }
    }

    /// Unsets every field (the values are dropped outside every lock).
    pub fn clear_all(&self) {
        for f in self.iter() {
            // SAFETY: tp_clear runs attached.
            drop(unsafe { f.replace(None) });
        }
    }
}

impl Items {
    /// Visits the Python objects among the elements.
    pub fn visit(&self, visit: &Visit<'_>) {
        for v in self.0.iter() {
            if let Value::Py(p) = v {
                visit.call_ptr(p.as_ptr().as_ptr());
            }
        }
    }
}

impl Target {
    /// Visits the callable.
    pub fn visit(&self, visit: &Visit<'_>) {
        visit.call_ptr(self.0.as_ptr().as_ptr());
    }
}

// The native references these objects hold are released iteratively (see `release_all`), so a
// long chain of objects does not recurse once per link.

impl Drop for Fields {
    fn drop(&mut self) {
        let used = self.len.min(INLINE_FIELDS);
        let children = self.inline[..used]
            .iter_mut()
            .chain(self.rest.iter_mut())
            .filter_map(|f| match f.take_exclusive() {
                Some(Value::Native(h)) => Some(h),
                _ => None,
            })
            .collect();
        release_all(children);
    }
}

impl Drop for Items {
    fn drop(&mut self) {
        let mut children = Vec::new();
        for v in core::mem::take(&mut self.0).into_vec() {
            match v {
                Value::Native(h) => children.push(h),
                Value::Py(p) => drop(p),
            }
        }
        release_all(children);
    }
}

/// A new native object of one of tether's own classes, whose wrappers have type `class`.
pub fn new_native<T: super::native::NativeValue>(class: Py, value: T) -> Handle {
    Native::new(value, Some(class)).erase()
}
