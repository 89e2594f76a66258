//! Lookup (make-return): native code hands an object to the frontend; the caller holds +1 strong.

use super::Exec;
use crate::config::Bug;
use crate::state::{DropPc, Frame, LookupPc, Mem, ObjId, Wait, WrapId};
use crate::word::{Kind, Word};

impl Exec<'_> {
    pub(super) fn lookup(
        &mut self,
        obj: ObjId,
        pc: LookupPc,
        spare: Option<WrapId>,
        due: Option<WrapId>,
        alloc_fails: bool,
    ) {
        let at = |pc| Frame::Lookup {
            obj,
            pc,
            spare,
            due,
        };
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
                // GIL mode: no word lock; the GIL serializes this load with the store after it.
                let serialized = self.cfg.serialized();
                let next = if seen.locked() {
                    wait(seen)
                } else {
                    match seen.kind() {
                        Kind::Active(w) if serialized => at(LookupPc::TryIncref(w)),
                        Kind::Active(w) => at(LookupPc::LockActive(w)),
                        Kind::Inactive(w) if serialized => at(LookupPc::Revive(w)),
                        Kind::Inactive(w) => at(LookupPc::LockInactive(w)),
                        Kind::InTransit(_) => wait(seen),
                        // A spare in hand is published instead of a new allocation.
                        Kind::Detached => match spare {
                            Some(w) => Frame::Lookup {
                                obj,
                                pc: if serialized {
                                    LookupPc::StoreFresh(w)
                                } else {
                                    LookupPc::PublishFresh(w)
                                },
                                spare: None,
                                due,
                            },
                            None => at(LookupPc::Allocate),
                        },
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
                let takeover = due == Some(w) && spare.is_some();
                self.set(at(match r {
                    // The broken takeover replaces W without asking its count again.
                    Ok(()) if takeover && self.cfg.has(Bug::TakeoverWithoutTryIncref) => {
                        LookupPc::Replace(w)
                    }
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
                if !hit && due == Some(w) && spare.is_some() {
                    self.set(at(LookupPc::Replace(w)));
                } else if self.cfg.serialized() {
                    // GIL mode: no lock to release; return W, or wait.
                    self.hit_or_wait(obj, w, hit, spare, due);
                } else {
                    self.set(at(LookupPc::Unlock(w, hit)));
                }
            }
            LookupPc::Unlock(w, hit) => {
                if self.word(obj) != Word::active(w).with_lock() {
                    self.violate("S6: the word changed under a lock this thread held");
                    return;
                }
                self.write(obj, Word::active(w), "lookup: unlock after try_incref");
                self.hit_or_wait(obj, w, hit, spare, due);
            }
            LookupPc::Replace(w) => {
                // GIL mode: a plain store, no lock to check (the GIL kept the word since the
                // load).
                if !self.cfg.serialized() && self.word(obj) != Word::active(w).with_lock() {
                    self.violate("S6: the word changed under a lock this thread held");
                    return;
                }
                let Some(new) = spare else {
                    unreachable!("a takeover has a spare")
                };
                if self.s.wrappers[usize::from(w)].mem != Mem::Live {
                    self.violate("S1: takeover of a wrapper whose memory is not live");
                    return;
                }
                if !self.s.wrappers[usize::from(w)].rc.is_zero() {
                    self.violate(
                        "S4: a takeover replaced a wrapper whose count is not zero (alive, \
                         it loses the binding)",
                    );
                    return;
                }
                let label = if self.cfg.serialized() {
                    "lookup: takeover, store the spare W2 (GIL)"
                } else {
                    "lookup: takeover, publish the spare W2 (unlock)"
                };
                self.write(obj, Word::active(new), label);
                self.wrapper(w).replaced = true;
                // S5's one exception: the re-fetch gets a new address while the object lives.
                self.wrapper(new).claimed = true;
                self.s.objects[usize::from(obj)].identity = Some(new);
                self.return_wrapper(obj, new);
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
                let rc = self.new_count();
                let wr = self.wrapper(w);
                if wr.mem != Mem::Cached {
                    self.violate("S1: revival of memory the word does not own");
                    return;
                }
                // Re-initialise in place; the caller's +1 becomes W's handle.
                wr.mem = Mem::Live;
                wr.rc = rc;
                wr.tracked = true;
                wr.handle = true;
                wr.weakrefs = false;
                wr.dying = false;
                wr.claimed = false;
                wr.replaced = false;
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
                if self.cfg.serialized() {
                    // GIL mode: a plain store; the GIL kept the word since the load.
                    self.write(obj, Word::active(w), "lookup: store revived W (GIL)");
                } else if self.word(obj) != Word::inactive(w).with_lock() {
                    self.violate("S6: the word changed under a lock this thread held");
                    return;
                } else {
                    self.write(obj, Word::active(w), "lookup: publish revived W (unlock)");
                }
                self.linearize(obj, w);
                self.set(Frame::Lookup {
                    obj,
                    pc: LookupPc::Return(w),
                    spare: None,
                    due: None,
                });
                self.discard_spare(obj, spare);
            }
            LookupPc::Allocate => {
                if alloc_fails {
                    // Word untouched; drop the caller's +1 and raise.
                    self.fail(obj);
                } else {
                    let w = self.new_wrapper(obj);
                    self.set(at(LookupPc::Clone(w)));
                }
            }
            LookupPc::AllocateSpare => {
                if alloc_fails {
                    // Nothing was published: raise.
                    self.fail(obj);
                } else {
                    let w = self.new_wrapper(obj);
                    self.strong_incr(obj);
                    let wr = self.wrapper(w);
                    wr.handle = true;
                    wr.rc.enable_try_incref();
                    self.set(Frame::Lookup {
                        obj,
                        pc: LookupPc::Load,
                        spare: Some(w),
                        due,
                    });
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
            LookupPc::PublishFresh(w) if self.cfg.has(Bug::BlindPublish) => {
                // GIL mode too: a store that trusts the load before make_fresh, which let the
                // GIL go.
                self.write(
                    obj,
                    Word::active(w),
                    "lookup: publish fresh W (blind store)",
                );
                self.linearize(obj, w);
                self.return_wrapper(obj, w);
            }
            LookupPc::PublishFresh(w) if self.cfg.serialized() => {
                // GIL mode: make_fresh let the GIL go; load the word again.
                let seen = self.word(obj);
                let pc = if seen == Word::DETACHED {
                    LookupPc::StoreFresh(w)
                } else {
                    // Lost the race: keep the candidate as the spare; retry.
                    LookupPc::Load
                };
                let spare = (pc == LookupPc::Load).then_some(w);
                self.set(Frame::Lookup {
                    obj,
                    pc,
                    spare,
                    due,
                });
            }
            LookupPc::StoreFresh(w) => {
                self.write(
                    obj,
                    Word::active(w),
                    "lookup: publish fresh W (store after a load of Detached, GIL)",
                );
                self.linearize(obj, w);
                self.return_wrapper(obj, w);
            }
            LookupPc::PublishFresh(w) => {
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
                    // Lost the race: keep the candidate as the spare, in case the winner's
                    // dealloc never comes; retry.
                    Err(_) => self.set(Frame::Lookup {
                        obj,
                        pc: LookupPc::Load,
                        spare: Some(w),
                        due,
                    }),
                }
            }
            LookupPc::Return(w) => self.finish(w),
            LookupPc::Fail => self.pop(),
        }
    }

    /// After `try_incref(w)` (and the unlock, if any): return W on a hit (discarding the spare),
    /// else wait, boundedly: the wait ends when the word (ignoring the lock) or W's count
    /// changes, or, the takeover, when the lookup stops waiting for W.
    fn hit_or_wait(
        &mut self,
        obj: ObjId,
        w: WrapId,
        hit: bool,
        spare: Option<WrapId>,
        due: Option<WrapId>,
    ) {
        if hit {
            self.return_wrapper(obj, w);
            self.discard_spare(obj, spare);
        } else {
            let rc = self.s.wrappers[usize::from(w)].rc;
            self.set(Frame::Lookup {
                obj,
                pc: LookupPc::Backoff(Wait {
                    word: Word::active(w),
                    ignore_lock: true,
                    rc: Some((w, rc)),
                }),
                spare,
                due,
            });
        }
    }

    /// The allocation failed: drop the caller's +1, then raise.
    fn fail(&mut self, obj: ObjId) {
        self.set(Frame::Lookup {
            obj,
            pc: LookupPc::Fail,
            spare: None,
            due: None,
        });
        self.push(Frame::DropNative {
            obj,
            pc: DropPc::Strong,
        });
    }

    /// Drop the caller's +1, then return `w`. The frame keeps no spare: the caller discards it
    /// (after this, so that its dealloc runs first).
    fn return_wrapper(&mut self, obj: ObjId, w: WrapId) {
        self.set(Frame::Lookup {
            obj,
            pc: LookupPc::Return(w),
            spare: None,
            due: None,
        });
        self.push(Frame::DropNative {
            obj,
            pc: DropPc::Strong,
        });
    }

    /// The lookup returns without using its spare: the spare dies as an ordinary non-canonical
    /// wrapper (its dealloc finds the word not naming it, drops its native reference, frees its
    /// memory), before the caller's +1 is dropped. One step: the spare was never published, so
    /// nobody else can see it, and its native drop is not the last one (the caller's +1 is still
    /// held), so nobody can see that either (`docs/spec.md`, "fused steps").
    fn discard_spare(&mut self, obj: ObjId, spare: Option<WrapId>) {
        let Some(w) = spare else { return };
        let wr = self.wrapper(w);
        if wr.mem != Mem::Live || !wr.handle || wr.rc.total() != 1 || wr.claimed {
            self.violate("model: a spare that is not the lookup's own");
            return;
        }
        if self.s.objects[usize::from(obj)].word.wrapper() == Some(w) {
            self.violate("S4: a discarded spare is named by the word");
            return;
        }
        let wr = self.wrapper(w);
        wr.rc = crate::refcount::RefCount::default();
        wr.dying = true;
        wr.tracked = false;
        wr.handle = false;
        wr.mem = Mem::Freed;
        let o = &mut self.s.objects[usize::from(obj)];
        if o.freed || o.strong < 2 {
            self.violate("model: a discarded spare held the last strong reference");
            return;
        }
        o.strong -= 1;
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
