//! Native reference counts and reclaim (the weak → 0 edge), on any thread.

use super::Exec;
use crate::config::Bug;
use crate::state::{DropPc, Frame, Mem, ObjId, ReclaimPc};
use crate::word::{Kind, Word};

impl Exec<'_> {
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
            ReclaimPc::ClearTransit(w) if self.cfg.has(Bug::SerializedReclaim) => {
                // The broken GIL mode: a plain load now, the store in a separate step.
                let next = if self.word(obj) == Word::in_transit(w) {
                    ReclaimPc::ClearTransitStore(w)
                } else {
                    ReclaimPc::Load
                };
                self.set(at(next));
            }
            ReclaimPc::ClearTransitStore(w) => {
                self.write(
                    obj,
                    Word::inactive(w),
                    "reclaim: clear IN_TRANSIT (plain store)",
                );
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
                // GIL mode: a plain store after the load saw Inactive(W); nobody else can
                // reach the word of an object without strong references but a settler, and
                // there is none once the word is Inactive.
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
