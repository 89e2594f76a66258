//! Free-threaded CPython's reference count, abstracted to the fields the protocol depends on.
//!
//! A free-threaded object carries an owner thread id (`ob_tid`), a count only the owner touches
//! (`ob_ref_local`) and a shared count with two flag bits (`ob_ref_shared`). The model keeps the
//! shared count and the flags apart:
//!
//! | CPython `ob_ref_shared` | model |
//! |---|---|
//! | `n << 2` | `shared = n`, no flag |
//! | `n << 2 \| _Py_REF_MAYBE_WEAKREF` | `shared = n`, `maybe_weakref` |
//! | `n << 2 \| _Py_REF_MERGED` | `shared = n`, `merged` (the owner's count was folded in) |
//!
//! The biased-refcount queue (`_Py_REF_QUEUED`, a non-owner driving the shared count negative) is
//! not modelled: the model never hands a reference from one thread to another, so a thread only
//! ever drops references it counted itself. [`RefCount::decref`] reports an underflow instead of
//! queueing, and the model turns that into a violation, so the assumption is checked, not hoped.

use crate::state::ActorId;

/// The reference count of one wrapper (a frontend object).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RefCount {
    /// `ob_tid`: the owning thread, `None` once the counts were merged.
    pub owner: Option<ActorId>,
    /// `ob_ref_local`: references counted by the owner thread.
    pub local: u8,
    /// The count part of `ob_ref_shared`: references counted by other threads.
    pub shared: u8,
    /// `_Py_REF_MAYBE_WEAKREF`: set by `PyUnstable_EnableTryIncRef` or by creating a weak
    /// reference; cleared when the object is (re-)initialised.
    pub maybe_weakref: bool,
    /// `_Py_REF_MERGED`: the local count was folded into the shared one and `ob_tid` cleared.
    pub merged: bool,
}

/// What a decrement did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decref {
    /// The object is still referenced.
    Alive,
    /// The owner's local count reached zero: `_Py_MergeZeroLocalRefcount` runs next (a separate
    /// atomic step, see [`RefCount::merge_zero_local`]).
    MergePending,
    /// The total reached zero: the object's deallocation starts now, on this thread.
    Dealloc,
    /// A thread dropped a reference it never counted (the unmodelled queue path).
    Underflow,
}

impl RefCount {
    /// `_Py_NewReference` on thread `owner`: one reference, counted locally, no flags.
    pub fn fresh(owner: ActorId) -> Self {
        RefCount {
            owner: Some(owner),
            local: 1,
            shared: 0,
            maybe_weakref: false,
            merged: false,
        }
    }

    /// A new object's count on a GIL build (`Config::gil`): one plain count, no owner, no
    /// flags to arm. Kept as a merged shared count, so `decref` by any thread deallocates at
    /// zero, `try_incref` fails exactly at zero, and `enable_try_incref` does nothing, as
    /// `PyUnstable_TryIncRef` and `PyUnstable_EnableTryIncRef` behave on a GIL build.
    pub fn gil_build() -> Self {
        RefCount {
            owner: None,
            local: 0,
            shared: 1,
            maybe_weakref: false,
            merged: true,
        }
    }

    /// Every reference the object has, whoever counted it.
    pub fn total(&self) -> u8 {
        self.local + self.shared
    }

    /// The object is dead: the counts can never rise again through `try_incref` by any thread
    /// other than a stale owner.
    pub fn is_zero(&self) -> bool {
        self.total() == 0
    }

    /// `Py_INCREF` by thread `by` (who already holds a reference).
    pub fn incref(&mut self, by: ActorId) {
        if self.owner == Some(by) {
            self.local += 1;
        } else {
            self.shared += 1;
        }
    }

    /// `Py_DECREF` by thread `by`.
    pub fn decref(&mut self, by: ActorId) -> Decref {
        if self.owner == Some(by) {
            if self.local == 0 {
                return Decref::Underflow;
            }
            self.local -= 1;
            if self.local == 0 {
                Decref::MergePending
            } else {
                Decref::Alive
            }
        } else {
            if self.shared == 0 {
                return Decref::Underflow;
            }
            self.shared -= 1;
            if self.merged && self.shared == 0 {
                Decref::Dealloc
            } else {
                Decref::Alive
            }
        }
    }

    /// `_Py_MergeZeroLocalRefcount`, run by the owner after its local count reached zero.
    /// Returns whether the object must be deallocated.
    pub fn merge_zero_local(&mut self) -> bool {
        if self.shared == 0 && !self.maybe_weakref && !self.merged {
            // Fast path: the whole shared word is zero; `ob_tid` is left as it is.
            return true;
        }
        self.owner = None;
        self.merged = true;
        self.maybe_weakref = false;
        self.shared += self.local;
        self.local = 0;
        self.shared == 0
    }

    /// `_Py_TryIncref` by thread `by`: the owner's fast path, then the shared path, which refuses
    /// when the shared word is exactly `0` or exactly `_Py_REF_MERGED`.
    pub fn try_incref(&mut self, by: ActorId) -> bool {
        if self.owner == Some(by) {
            self.local += 1;
            return true;
        }
        let refuses = self.shared == 0 && (self.merged || !self.maybe_weakref);
        if refuses {
            return false;
        }
        self.shared += 1;
        true
    }

    /// `PyUnstable_EnableTryIncRef` (and `_PyObject_SetMaybeWeakref`): set the flag unless a flag
    /// (`MERGED`) is already there.
    pub fn enable_try_incref(&mut self) {
        if !self.merged {
            self.maybe_weakref = true;
        }
    }

    /// `Py_SET_REFCNT(op, n)` by thread `by` (only the broken "bump" dealloc uses it).
    pub fn set_refcnt(&mut self, by: ActorId, n: u8) {
        if self.owner == Some(by) {
            self.local = n;
            self.shared = 0;
        } else {
            self.owner = None;
            self.local = 0;
            self.shared = n;
            self.merged = true;
            self.maybe_weakref = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_object_refuses_foreign_try_incref_until_enabled() {
        let mut rc = RefCount::fresh(0);
        assert!(
            !rc.try_incref(1),
            "shared word is 0: a non-owner must be refused"
        );
        assert!(rc.try_incref(0), "the owner's fast path succeeds");
        rc.enable_try_incref();
        assert!(rc.try_incref(1));
        assert_eq!(rc.total(), 3);
    }

    #[test]
    fn owner_drop_with_flag_merges_and_deallocates() {
        let mut rc = RefCount::fresh(0);
        rc.enable_try_incref();
        assert_eq!(rc.decref(0), Decref::MergePending);
        // Between the local store and the merge a non-owner may still revive it legitimately.
        let mut raced = rc;
        assert!(raced.try_incref(1));
        assert!(!raced.merge_zero_local());
        assert_eq!(raced.owner, None);
        assert!(rc.merge_zero_local());
        assert!(rc.merged);
        assert!(!rc.try_incref(1), "merged and zero: refused");
        assert!(!rc.try_incref(0), "no owner any more: refused");
    }

    #[test]
    fn fast_path_dealloc_keeps_owner() {
        let mut rc = RefCount::fresh(0);
        assert_eq!(rc.decref(0), Decref::MergePending);
        assert!(rc.merge_zero_local());
        assert_eq!(rc.owner, Some(0));
        assert!(!rc.try_incref(1));
    }

    #[test]
    fn shared_references_keep_object_alive_after_owner_leaves() {
        let mut rc = RefCount::fresh(0);
        rc.enable_try_incref();
        assert!(rc.try_incref(1));
        assert_eq!(rc.decref(0), Decref::MergePending);
        assert!(!rc.merge_zero_local());
        assert!(rc.try_incref(2), "merged with a live count: allowed");
        assert_eq!(rc.decref(2), Decref::Alive);
        assert_eq!(rc.decref(1), Decref::Dealloc);
        assert_eq!(rc.decref(1), Decref::Underflow);
    }

    #[test]
    fn gil_build_count_is_plain() {
        let mut rc = RefCount::gil_build();
        rc.enable_try_incref();
        assert!(rc.try_incref(1), "alive: any thread's try_incref succeeds");
        assert_eq!(rc.decref(0), Decref::Alive);
        assert_eq!(
            rc.decref(1),
            Decref::Dealloc,
            "zero: dealloc at once, no merge"
        );
        assert!(!rc.try_incref(0), "zero: refused");
        rc.enable_try_incref();
        assert!(!rc.try_incref(1), "arming does nothing on a GIL build");
    }

    #[test]
    fn bump_makes_a_corpse_look_alive() {
        let mut rc = RefCount::fresh(0);
        rc.enable_try_incref();
        assert_eq!(rc.decref(0), Decref::MergePending);
        assert!(rc.merge_zero_local());
        assert!(!rc.try_incref(1));
        rc.set_refcnt(0, 1);
        assert!(rc.try_incref(1), "a resurrection bump re-opens try_incref");
    }
}
