//! Native reference counts and reclaim (the weak → 0 edge), on any thread.

use super::Exec;
use crate::config::Bug;
use crate::state::{DropPc, Frame, Mem, ObjId, ReclaimPc};
use crate::word::{Kind, Word};

impl Exec<'_> {
    /// GIL mode as built: reclaim writes a word that is not Detached only under the GIL.
    pub(crate) fn serial_reclaim(&self) -> bool {
        self.cfg.serialized() && !self.cfg.has(Bug::ReclaimWithoutGil)
    }

    pub(super) fn drop_native(&mut self, obj: ObjId, pc: DropPc) {
        match pc {
            DropPc::Strong => {
                let o = &self.s.objects[usize::from(obj)];
                if o.freed {
                    self.violate("S1: strong decrement on a freed allocation");
                    return;
                }
                if o.strong == 0 {
                    self.violate("model: strong count underflow");
                    return;
                }
                let o = &mut self.s.objects[usize::from(obj)];
                o.strong -= 1;
                if o.strong > 0 {
                    self.pop();
                    return;
                }
                // Last strong reference: drop the value (and the reference it holds).
                o.value_alive = false;
                self.set(Frame::DropNative {
                    obj,
                    pc: DropPc::Weak,
                });
                if let Some(inner) = self.cfg.objects[usize::from(obj)].holds {
                    self.push(Frame::DropNative {
                        obj: inner,
                        pc: DropPc::Strong,
                    });
                }
            }
            DropPc::Weak => {
                let o = &mut self.s.objects[usize::from(obj)];
                o.weak -= 1;
                if o.weak == 0 {
                    self.set(Frame::Reclaim {
                        obj,
                        pc: ReclaimPc::Load,
                    });
                } else {
                    self.pop();
                }
            }
        }
    }

    pub(super) fn reclaim(&mut self, obj: ObjId, pc: ReclaimPc) {
        let at = |pc| Frame::Reclaim { obj, pc };
        match pc {
            ReclaimPc::Load => {
                if !self.header(obj) {
                    self.set(at(ReclaimPc::FreeAlloc));
                    return;
                }
                let seen = self.word(obj);
                if seen.locked() {
                    self.violate(
                        "S3: reclaim found the word locked (a lookup without a reference)",
                    );
                    return;
                }
                let next = match seen.kind() {
                    Kind::Detached => ReclaimPc::FreeAlloc,
                    // GIL mode: the word is written only under the GIL, loaded again there.
                    Kind::InTransit(_) | Kind::Inactive(_) if self.serial_reclaim() => {
                        ReclaimPc::Lock(seen)
                    }
                    Kind::InTransit(w) => ReclaimPc::ClearTransit(w),
                    Kind::Inactive(w) => ReclaimPc::Detach(w),
                    Kind::Active(_) => {
                        self.violate("S3: reclaim found Active (a wrapper without its +1)");
                        return;
                    }
                    Kind::Malformed => {
                        self.violate("S6: reclaim loaded a malformed word");
                        return;
                    }
                };
                self.set(at(next));
            }
            ReclaimPc::Lock(first) => {
                // GIL mode. This step holds the GIL unless it is the foreign thread's and the
                // attach is refused (shutdown began): `needs_gil`.
                let locked = !self.is_native() || !self.s.shutdown;
                if self.is_native() && locked {
                    self.actor().attached = true;
                }
                // Load again: a settle may have run since the first load (not with the bug).
                let seen = if self.cfg.has(Bug::ReclaimStaleWord) {
                    first
                } else {
                    self.word(obj)
                };
                let next = match seen.kind() {
                    Kind::InTransit(w) if locked => ReclaimPc::ClearTransitStore(w),
                    Kind::InTransit(_) => {
                        // Refused: the settler may be between its load and its store. Leave the
                        // word alone; the settler caches W, the allocation is leaked.
                        self.s.objects[usize::from(obj)].leaked = true;
                        self.pop();
                        return;
                    }
                    Kind::Inactive(w) => ReclaimPc::Detach(w),
                    _ => {
                        self.violate("S6: reclaim's word left InTransit / Inactive for another");
                        return;
                    }
                };
                self.set(at(next));
            }
            ReclaimPc::ClearTransitStore(w) => {
                // GIL mode, under the GIL: the store after the load saw InTransit(W). Then the
                // foreign thread detaches its thread state (the GIL goes with it).
                self.write(
                    obj,
                    Word::inactive(w),
                    "reclaim: clear IN_TRANSIT (store, GIL)",
                );
                if self.is_native() {
                    self.actor().attached = false;
                }
                self.pop();
            }
            ReclaimPc::ClearTransit(w) => {
                if self.cfg.has(Bug::FirstSettlerFrees) {
                    // Bug 6: the first settler frees instead of deferring to the second.
                    self.free_alloc(obj, "reclaim: free on InTransit (first settler frees)");
                    self.pop();
                    return;
                }
                let r = self.cas(
                    obj,
                    Word::in_transit(w),
                    Word::inactive(w),
                    "reclaim: clear IN_TRANSIT (defer to the settler)",
                );
                match r {
                    Ok(()) => self.pop(),
                    Err(_) => self.set(at(ReclaimPc::Load)),
                }
            }
            ReclaimPc::Detach(w) if self.cfg.serialized() => {
                // GIL mode: a plain store after the load saw Inactive(W) (under the GIL unless
                // the attach was refused); nobody else can reach the word of an object without
                // strong references but a settler, and there is none once the word is Inactive.
                self.write(obj, Word::DETACHED, "reclaim: Inactive → Detached (store)");
                self.set(at(ReclaimPc::Attach(w)));
            }
            ReclaimPc::Detach(w) => {
                let r = self.cas(
                    obj,
                    Word::inactive(w),
                    Word::DETACHED,
                    "reclaim: Inactive → Detached",
                );
                self.set(at(match r {
                    Ok(()) => ReclaimPc::Attach(w),
                    Err(_) => ReclaimPc::Load,
                }));
            }
            ReclaimPc::Attach(w) => {
                if self.s.shutdown {
                    // Attach refused: leak W's memory on purpose, still free the allocation.
                    if self.s.wrappers[usize::from(w)].mem != Mem::Cached {
                        self.violate("S1: reclaim leaked memory the word did not own");
                        return;
                    }
                    self.wrapper(w).mem = Mem::Leaked;
                    self.set(at(ReclaimPc::FreeAlloc));
                } else {
                    // (GIL mode: the foreign thread attached already, at `Lock`: re-entrant.)
                    if self.is_native() {
                        self.actor().attached = true;
                    }
                    self.set(at(ReclaimPc::FreeWrapper(w)));
                }
            }
            ReclaimPc::FreeWrapper(w) => {
                if self.s.wrappers[usize::from(w)].mem != Mem::Cached {
                    self.violate("S1: reclaim freed wrapper memory the word did not own");
                    return;
                }
                self.wrapper(w).mem = Mem::Freed;
                let next = if self.is_native() {
                    ReclaimPc::Release
                } else {
                    ReclaimPc::FreeAlloc
                };
                self.set(at(next));
            }
            ReclaimPc::Release => {
                self.actor().attached = false;
                self.set(at(ReclaimPc::FreeAlloc));
            }
            ReclaimPc::FreeAlloc => {
                self.free_alloc(obj, "reclaim: free the allocation");
                self.pop();
            }
        }
    }
}
