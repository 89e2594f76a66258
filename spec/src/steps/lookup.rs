//! Lookup (make-return): native code hands an object to the frontend; the caller holds +1 strong.

use super::Exec;
use crate::config::Bug;
use crate::state::{DropPc, Frame, LookupPc, Mem, ObjId, Wait, WrapId};
use crate::word::{Kind, Word};

impl Exec<'_> {
    pub(super) fn lookup(&mut self, obj: ObjId, pc: LookupPc, alloc_fails: bool) {
        let at = |pc| Frame::Lookup { obj, pc };
        match pc {
            LookupPc::Probe => {
                // Bug 4: recognise "carries our header" by reading the bytes before the object.
                if self.header(obj) {
                    self.set(at(LookupPc::Load));
                } else {
                    self.violate(
                        "S1: header probe read memory before an object that an older \
                         allocator built without the word (tvm-ffi #696)",
                    );
                }
            }
            LookupPc::Load | LookupPc::Backoff(_) => {
                // A back-off ends by re-attaching and loading again: one step.
                let seen = self.word(obj);
                let wait = |word| {
                    at(LookupPc::Backoff(Wait {
                        word,
                        ignore_lock: false,
                        rc: None,
                    }))
                };
                let next = if seen.locked() {
                    wait(seen)
                } else {
                    match seen.kind() {
                        Kind::Active(w) => at(LookupPc::LockActive(w)),
                        Kind::Inactive(w) => at(LookupPc::LockInactive(w)),
                        Kind::InTransit(_) => wait(seen),
                        Kind::Detached => at(LookupPc::Allocate),
                        Kind::Malformed => {
                            self.violate("S6: lookup loaded a malformed word");
                            return;
                        }
                    }
                };
                self.set(next);
            }
            LookupPc::LockActive(w) => {
                let r = self.cas(
                    obj,
                    Word::active(w),
                    Word::active(w).with_lock(),
                    "lookup: lock to try_incref",
                );
                self.set(at(match r {
                    Ok(()) => LookupPc::TryIncref(w),
                    Err(_) => LookupPc::Load,
                }));
            }
            LookupPc::TryIncref(w) => {
                if self.s.wrappers[usize::from(w)].mem != Mem::Live {
                    self.violate("S1: try_incref on a wrapper whose memory is not live");
                    return;
                }
                let me = self.me;
                let hit = self.wrapper(w).rc.try_incref(me);
                if hit && self.s.wrappers[usize::from(w)].dying {
                    self.violate(
                        "S1: try_incref succeeded on a wrapper whose dealloc had begun \
                         (a corpse looked alive: cython#7769)",
                    );
                    return;
                }
                if hit {
                    self.linearize(obj, w);
                }
                self.set(at(LookupPc::Unlock(w, hit)));
            }
            LookupPc::Unlock(w, hit) => {
                if self.word(obj) != Word::active(w).with_lock() {
                    self.violate("S6: the word changed under a lock this thread held");
                    return;
                }
                self.write(obj, Word::active(w), "lookup: unlock after try_incref");
                if hit {
                    self.return_wrapper(obj, w);
                } else {
                    let rc = self.s.wrappers[usize::from(w)].rc;
                    self.set(at(LookupPc::Backoff(Wait {
                        word: Word::active(w),
                        ignore_lock: true,
                        rc: Some((w, rc)),
                    })));
                }
            }
            LookupPc::LockInactive(w) => {
                let r = self.cas(
                    obj,
                    Word::inactive(w),
                    Word::inactive(w).with_lock(),
                    "lookup: lock to revive",
                );
                self.set(at(match r {
                    Ok(()) => LookupPc::Revive(w),
                    Err(_) => LookupPc::Load,
                }));
            }
            LookupPc::Revive(w) => {
                let me = self.me;
                let wr = self.wrapper(w);
                if wr.mem != Mem::Cached {
                    self.violate("S1: revival of memory the word does not own");
                    return;
                }
                // Re-initialise in place; the caller's +1 becomes W's handle.
                wr.mem = Mem::Live;
                wr.rc = crate::refcount::RefCount::fresh(me);
                wr.tracked = true;
                wr.handle = true;
                wr.weakrefs = false;
                wr.dying = false;
                wr.claimed = false;
                let next = if self.cfg.has(Bug::ReviveWithoutRearm) {
                    LookupPc::PublishRevived(w)
                } else {
                    LookupPc::Rearm(w)
                };
                self.set(at(next));
            }
            LookupPc::Rearm(w) => {
                self.wrapper(w).rc.enable_try_incref();
                self.set(at(LookupPc::PublishRevived(w)));
            }
            LookupPc::PublishRevived(w) => {
                if self.word(obj) != Word::inactive(w).with_lock() {
                    self.violate("S6: the word changed under a lock this thread held");
                    return;
                }
                self.write(obj, Word::active(w), "lookup: publish revived W (unlock)");
                self.linearize(obj, w);
                self.set(at(LookupPc::Return(w)));
            }
            LookupPc::Allocate => {
                if alloc_fails {
                    // Word untouched; drop the caller's +1 and raise.
                    self.set(at(LookupPc::Fail));
                    self.push(Frame::DropNative {
                        obj,
                        pc: DropPc::Strong,
                    });
                } else {
                    let w = self.new_wrapper(obj);
                    self.set(at(LookupPc::Clone(w)));
                }
            }
            LookupPc::Clone(w) => {
                self.strong_incr(obj);
                self.wrapper(w).handle = true;
                if self.header(obj) {
                    self.set(at(LookupPc::ArmFresh(w)));
                } else {
                    // No word: an ordinary, unbound wrapper.
                    self.return_wrapper(obj, w);
                }
            }
            LookupPc::ArmFresh(w) => {
                self.wrapper(w).rc.enable_try_incref();
                self.set(at(LookupPc::PublishFresh(w)));
            }
            LookupPc::PublishFresh(w) => {
                if self.cfg.has(Bug::BlindPublish) {
                    self.write(
                        obj,
                        Word::active(w),
                        "lookup: publish fresh W (blind store)",
                    );
                    self.linearize(obj, w);
                    self.return_wrapper(obj, w);
                    return;
                }
                let r = self.cas(
                    obj,
                    Word::DETACHED,
                    Word::active(w),
                    "lookup: publish fresh W (CAS from Detached)",
                );
                match r {
                    Ok(()) => {
                        self.linearize(obj, w);
                        self.return_wrapper(obj, w);
                    }
                    Err(_) => self.set(at(LookupPc::Discard(w))),
                }
            }
            LookupPc::Discard(w) => {
                // The losing candidate dies as an ordinary non-canonical wrapper; then retry.
                self.set(at(LookupPc::Load));
                self.decref(w);
            }
            LookupPc::Return(w) => self.finish(w),
            LookupPc::Fail => self.pop(),
        }
    }

    /// Drop the caller's +1, then return `w`.
    fn return_wrapper(&mut self, obj: ObjId, w: WrapId) {
        self.set(Frame::Lookup {
            obj,
            pc: LookupPc::Return(w),
        });
        self.push(Frame::DropNative {
            obj,
            pc: DropPc::Strong,
        });
    }

    /// The moment the lookup's result is decided (`w` is canonical now): the ghost checks of S4
    /// and S5 happen here.
    fn linearize(&mut self, obj: ObjId, w: WrapId) {
        self.wrapper(w).claimed = true;
        let o = &mut self.s.objects[usize::from(obj)];
        if o.identity.replace(w).is_some_and(|prev| prev != w) {
            self.violate(
                "S5: a re-fetched wrapper has a new address while the native object lived",
            );
        }
    }

    /// The lookup returns `w` to the frontend.
    fn finish(&mut self, w: WrapId) {
        let held = &mut self.actor().held;
        held.push(w);
        held.sort_unstable();
        self.pop();
    }
}
