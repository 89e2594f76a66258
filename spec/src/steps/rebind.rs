//! Rebind: moving a handle to a new wrapper, and eager detach before a handle is moved out.
//! (Construct, `Detached → Active(self)` on a brand-new object, has no concurrent observer and is
//! the same compare-exchange as the fresh publish, which the lookup models.)

use super::Exec;
use crate::state::{DetachPc, DropPc, Frame, MovePc, Wait, WrapId};
use crate::word::Word;

impl Exec<'_> {
    pub(super) fn move_handle(&mut self, from: WrapId, to: WrapId, pc: MovePc) {
        let obj = self.s.wrappers[usize::from(from)].obj;
        let at = |pc| Frame::Move { from, to, pc };
        match pc {
            MovePc::Arm => {
                self.wrapper(to).rc.enable_try_incref();
                self.set(at(MovePc::Handle));
            }
            MovePc::Handle => {
                // The pointer is copied; the +1 changes hands at ClearSource.
                self.wrapper(to).handle = true;
                self.set(at(MovePc::Rebind));
            }
            MovePc::Rebind | MovePc::Backoff(_) => {
                let seen = self.word(obj);
                if seen == Word::active(from) && self.cfg.serialized() {
                    // GIL mode: this was the load; the store is the next step.
                    self.set(at(MovePc::RebindStore));
                } else if seen == Word::active(from) {
                    self.write(obj, Word::active(to), "rebind: move Active(W) → Active(W2)");
                    self.wrapper(from).claimed = false;
                    self.wrapper(to).claimed = true;
                    self.s.objects[usize::from(obj)].identity = Some(to);
                    self.set(at(MovePc::ClearSource));
                } else if seen.locked() {
                    self.set(at(MovePc::Backoff(Wait {
                        word: seen,
                        ignore_lock: false,
                        rc: None,
                    })));
                } else {
                    // `from` is not canonical: only the handle moves.
                    self.set(at(MovePc::ClearSource));
                }
            }
            MovePc::RebindStore => {
                self.write(
                    obj,
                    Word::active(to),
                    "rebind: move Active(W) → Active(W2) (store, GIL)",
                );
                self.wrapper(from).claimed = false;
                self.wrapper(to).claimed = true;
                self.s.objects[usize::from(obj)].identity = Some(to);
                self.set(at(MovePc::ClearSource));
            }
            MovePc::ClearSource => {
                self.wrapper(from).handle = false;
                let held = &mut self.actor().held;
                held.push(to);
                held.sort_unstable();
                self.pop();
            }
        }
    }

    pub(super) fn detach(&mut self, w: WrapId, pc: DetachPc) {
        let obj = self.s.wrappers[usize::from(w)].obj;
        let at = |pc| Frame::Detach { w, pc };
        match pc {
            DetachPc::Cas | DetachPc::Backoff(_) => {
                let seen = self.word(obj);
                if seen == Word::active(w) && self.cfg.serialized() {
                    // GIL mode: this was the load; the store is the next step.
                    self.set(at(DetachPc::Store));
                } else if seen == Word::active(w) {
                    self.write(obj, Word::DETACHED, "rebind: detach Active(W) → Detached");
                    self.wrapper(w).claimed = false;
                    self.s.objects[usize::from(obj)].identity = None;
                    self.set(at(DetachPc::Take));
                } else if seen.locked() {
                    self.set(at(DetachPc::Backoff(Wait {
                        word: seen,
                        ignore_lock: false,
                        rc: None,
                    })));
                } else {
                    self.set(at(DetachPc::Take));
                }
            }
            DetachPc::Store => {
                self.write(
                    obj,
                    Word::DETACHED,
                    "rebind: detach Active(W) → Detached (store, GIL)",
                );
                self.wrapper(w).claimed = false;
                self.s.objects[usize::from(obj)].identity = None;
                self.set(at(DetachPc::Take));
            }
            DetachPc::Take => {
                // The handle moves out into native code, which drops it.
                self.wrapper(w).handle = false;
                self.set(Frame::DropNative {
                    obj,
                    pc: DropPc::Strong,
                });
            }
        }
    }
}
