//! A wrapper's count reaching zero: merge, dealloc (the binding transition), drop of its native
//! reference, and free (the settle of the InTransit baton).

use super::Exec;
use crate::config::Bug;
use crate::state::{DeallocPc, DropPc, Frame, LookupPc, Mem, Token, Wait, WrapId};
use crate::word::Word;

impl Exec<'_> {
    /// `_Py_MergeZeroLocalRefcount`, the step after the owner's local count reached zero.
    pub(super) fn merge(&mut self, w: WrapId) {
        self.pop();
        if self.s.wrappers[usize::from(w)].mem != Mem::Live {
            self.violate("S1: reference count of a dead wrapper merged");
            return;
        }
        if self.wrapper(w).rc.merge_zero_local() {
            self.start_dealloc(w);
        }
    }

    pub(super) fn dealloc(&mut self, w: WrapId, pc: DeallocPc) {
        let obj = self.s.wrappers[usize::from(w)].obj;
        let at = |pc| Frame::Dealloc { w, pc };
        match pc {
            DeallocPc::Untrack => {
                self.wrapper(w).tracked = false;
                let next = self.after_untrack(w);
                self.set(at(next));
            }
            DeallocPc::EarlyCallback => {
                self.set(at(DeallocPc::Transition));
                self.callback(w);
            }
            DeallocPc::Callback(token) => {
                self.drop_handle_then_free(w, token);
                self.callback(w);
            }
            DeallocPc::Bump => {
                // Bug 1: a resurrection bump (`Py_SET_REFCNT(self, 1)`) before user teardown.
                let me = self.me;
                self.wrapper(w).rc.set_refcnt(me, 1);
                self.set(at(DeallocPc::Transition));
            }
            DeallocPc::Transition | DeallocPc::Backoff(_) => self.transition(w),
            DeallocPc::TransitionStore(token) => {
                // GIL mode: the store after the load saw Active(W).
                if token == Token::InTransit {
                    self.write(
                        obj,
                        Word::in_transit(w),
                        "dealloc: Active → InTransit (cacheable, store, GIL)",
                    );
                } else {
                    self.write(
                        obj,
                        Word::DETACHED,
                        "dealloc: Active → Detached (not cacheable, store, GIL)",
                    );
                    self.s.objects[usize::from(obj)].identity = None;
                }
                self.after_transition(w, token, DeallocPc::Transition);
            }
            DeallocPc::Unbump(token) => {
                let rc = &mut self.wrapper(w).rc;
                if rc.local > 0 {
                    rc.local -= 1;
                } else {
                    rc.shared = rc.shared.saturating_sub(1);
                }
                self.after_transition(w, token, DeallocPc::Unbump(token));
            }
            DeallocPc::UntrackLate(token) => {
                self.wrapper(w).tracked = false;
                self.after_transition(w, token, DeallocPc::UntrackLate(token));
            }
            DeallocPc::Settle => {
                let seen = self.word(obj);
                if seen == Word::in_transit(w) && self.cfg.serialized() {
                    // GIL mode: this was the load; the store is the next step (reclaim writes
                    // the word only under the GIL too, so nothing comes in between).
                    self.set(at(DeallocPc::SettleStore));
                } else if seen == Word::in_transit(w) {
                    self.write(
                        obj,
                        Word::inactive(w),
                        "settle: InTransit → Inactive (keep W)",
                    );
                    self.wrapper(w).mem = Mem::Cached;
                    self.pop();
                } else if seen == Word::inactive(w) {
                    // Reclaim ran and deferred to us: we are the second settler.
                    self.set(at(DeallocPc::FreeAlloc));
                } else {
                    self.violate("S6: the settler found a word that is not its baton");
                }
            }
            DeallocPc::SettleStore => {
                self.write(
                    obj,
                    Word::inactive(w),
                    "settle: InTransit → Inactive (store, GIL)",
                );
                self.wrapper(w).mem = Mem::Cached;
                self.pop();
            }
            DeallocPc::FreeAlloc => {
                self.free_alloc(obj, "settle (second settler): free the allocation");
                self.set(at(DeallocPc::FreeWrapper));
            }
            DeallocPc::FreeWrapper => {
                if self.s.wrappers[usize::from(w)].mem != Mem::Live {
                    self.violate("S1: wrapper memory freed twice");
                    return;
                }
                self.wrapper(w).mem = Mem::Freed;
                self.pop();
            }
        }
    }

    /// Where `w`'s dealloc goes after the untrack.
    pub(super) fn after_untrack(&self, w: WrapId) -> DeallocPc {
        let weakrefs = self.s.wrappers[usize::from(w)].weakrefs;
        if self.cfg.has(Bug::BumpBeforeTransition) {
            DeallocPc::Bump
        } else if weakrefs && self.cfg.has(Bug::CallbackBeforeTransition) {
            DeallocPc::EarlyCallback
        } else {
            DeallocPc::Transition
        }
    }

    /// The binding transition: one compare-exchange from Active(W).
    fn transition(&mut self, w: WrapId) {
        let obj = self.s.wrappers[usize::from(w)].obj;
        if !self.header(obj) || !self.s.wrappers[usize::from(w)].handle {
            // No word, or an empty handle (moved out): W has no object to look at.
            self.after_transition(w, Token::Plain, DeallocPc::Transition);
            return;
        }
        let weakrefs = self.s.wrappers[usize::from(w)].weakrefs;
        let cacheable = !self.cfg.objects[usize::from(obj)].finalizer
            && (!weakrefs || self.cfg.has(Bug::CacheWithWeakrefs));
        let seen = self.word(obj);
        if seen == Word::active(w) && self.cfg.serialized() {
            // GIL mode: this was the load; the store is the next step.
            let token = if cacheable {
                Token::InTransit
            } else {
                Token::Plain
            };
            self.set(Frame::Dealloc {
                w,
                pc: DeallocPc::TransitionStore(token),
            });
        } else if seen == Word::active(w) {
            if cacheable {
                self.write(
                    obj,
                    Word::in_transit(w),
                    "dealloc: Active → InTransit (cacheable)",
                );
                self.after_transition(w, Token::InTransit, DeallocPc::Transition);
            } else {
                self.write(
                    obj,
                    Word::DETACHED,
                    "dealloc: Active → Detached (not cacheable)",
                );
                self.s.objects[usize::from(obj)].identity = None;
                self.after_transition(w, Token::Plain, DeallocPc::Transition);
            }
        } else if seen == Word::active(w).with_lock() {
            // A lookup is inside try_incref: back off (thread state detached).
            self.set(Frame::Dealloc {
                w,
                pc: DeallocPc::Backoff(Wait {
                    word: seen,
                    ignore_lock: false,
                    rc: None,
                }),
            });
        } else {
            // Not canonical (moved away, replaced by a takeover): word unchanged.
            self.after_transition(w, Token::Plain, DeallocPc::Transition);
        }
    }

    /// What follows the binding transition (`done` is the step just taken).
    fn after_transition(&mut self, w: WrapId, token: Token, done: DeallocPc) {
        let at = |pc| Frame::Dealloc { w, pc };
        let bump = self.cfg.has(Bug::BumpBeforeTransition);
        let late = self.cfg.has(Bug::BackoffBeforeUntrack);
        match done {
            DeallocPc::Transition | DeallocPc::Backoff(_) if bump => {
                self.set(at(DeallocPc::Unbump(token)));
            }
            DeallocPc::Transition | DeallocPc::Backoff(_) | DeallocPc::Unbump(_) if late => {
                self.set(at(DeallocPc::UntrackLate(token)));
            }
            _ => {
                let w_ = &self.s.wrappers[usize::from(w)];
                if w_.weakrefs && !self.cfg.has(Bug::CallbackBeforeTransition) {
                    self.set(at(DeallocPc::Callback(token)));
                } else {
                    self.drop_handle_then_free(w, token);
                }
            }
        }
    }

    /// Drop W's native +1 outside any lock (reclaim may run inside, on this thread), then free.
    fn drop_handle_then_free(&mut self, w: WrapId, token: Token) {
        let next = match token {
            Token::InTransit => DeallocPc::Settle,
            Token::Plain => DeallocPc::FreeWrapper,
        };
        self.set(Frame::Dealloc { w, pc: next });
        let obj = self.s.wrappers[usize::from(w)].obj;
        if std::mem::take(&mut self.wrapper(w).handle) {
            self.push(Frame::DropNative {
                obj,
                pc: DropPc::Strong,
            });
        }
    }

    /// A weak-reference callback: user code that re-fetches the object through the foreign
    /// thread's registry (if it still holds it) with a nested lookup on this thread.
    fn callback(&mut self, w: WrapId) {
        let obj = self.s.wrappers[usize::from(w)].obj;
        let o = &self.s.objects[usize::from(obj)];
        if o.rooted && !o.freed && o.strong > 0 {
            self.strong_incr(obj);
            self.push(Frame::Lookup {
                obj,
                pc: LookupPc::Load,
                spare: None,
                due: None,
            });
        }
    }
}
