//! The properties S1–S6 and L1 as predicates on one state, plus the model's own bookkeeping
//! check. Each returns `true` when the state satisfies it.
//!
//! Memory errors are caught by the step that commits them (it sets [`State::violation`] with a
//! message tagged by the property it breaks); the structural invariants below catch the states a
//! wrong protocol reaches before anything touches freed memory.

use crate::config::{Bug, Config};
use crate::state::{
    ActorId, DeallocPc, Frame, LookupPc, Mem, MovePc, ObjId, State, Token, Wait, WrapId,
};
use crate::steps;
use crate::word::{Kind, Word};

fn tagged(s: &State, tag: &str) -> bool {
    s.violation.is_some_and(|v| v.starts_with(tag))
}

/// S1 memory safety: no step accessed freed memory, freed anything twice, or let a corpse look
/// alive.
pub fn s1_memory_safety(_: &Config, s: &State) -> bool {
    !tagged(s, "S1")
}

/// S2 no leak: whenever no operation is in flight, everything unreachable has been freed: an
/// allocation with no strong reference is freed, a live wrapper is referenced, and cached memory
/// is owned by its object's word (memory leaked at shutdown is the one exception, and only after
/// the shutdown flag was set).
pub fn s2_no_leak(_: &Config, s: &State) -> bool {
    if tagged(s, "S2") {
        return false;
    }
    if s.any_busy() {
        return true;
    }
    // GIL mode, after shutdown: an allocation a refused reclaim left to a settler that cached
    // its wrapper instead is leaked on purpose (its wrapper is then cached in it, below).
    let objects_ok = s
        .objects
        .iter()
        .all(|o| (o.strong == 0) == (o.freed || (o.leaked && s.shutdown)));
    let wrappers_ok = s.wrappers.iter().enumerate().all(|(i, w)| match w.mem {
        Mem::Live => s.is_held(i as WrapId) && w.rc.total() > 0 && !w.dying,
        Mem::Cached => {
            let o = &s.objects[usize::from(w.obj)];
            !o.freed && o.word == Word::inactive(i as WrapId)
        }
        Mem::Leaked => s.shutdown,
        Mem::Freed => true,
    });
    objects_ok && wrappers_ok
}

/// S3 canonical: a word that reads Active(W) names a live wrapper of this object that owns +1
/// (its handle); reclaim never finds Active.
pub fn s3_canonical(cfg: &Config, s: &State) -> bool {
    if tagged(s, "S3") {
        return false;
    }
    s.objects.iter().enumerate().all(|(i, o)| {
        if o.freed || !cfg.objects[i].header {
            return true;
        }
        match o.word.kind() {
            Kind::Active(w) => {
                let wr = &s.wrappers[usize::from(w)];
                usize::from(wr.obj) == i && wr.mem == Mem::Live && wr.handle
            }
            _ => true,
        }
    })
}

/// S4 one wrapper: every wrapper a lookup returned is still the canonical one while it is alive,
/// unless a rebind displaced it. Two lookups that returned different wrappers of one object
/// cannot both satisfy this.
pub fn s4_one_wrapper(_: &Config, s: &State) -> bool {
    if tagged(s, "S4") {
        return false;
    }
    s.wrappers.iter().enumerate().all(|(i, w)| {
        !(w.claimed && !w.dying && w.mem == Mem::Live)
            || s.objects[usize::from(w.obj)].word.unlocked() == Word::active(i as WrapId)
    })
}

/// S5 stable identity: while the native object lives, a lookup of a cacheable object returns the
/// wrapper the previous lookup returned (checked by the returning step).
pub fn s5_stable_identity(_: &Config, s: &State) -> bool {
    !tagged(s, "S5")
}

/// Whether thread frame `f` carries the InTransit baton (it has not settled yet).
fn holds_baton(f: &Frame) -> Option<WrapId> {
    match *f {
        Frame::Dealloc {
            w,
            pc:
                DeallocPc::Settle
                | DeallocPc::SettleStore
                | DeallocPc::Callback(Token::InTransit)
                | DeallocPc::Unbump(Token::InTransit)
                | DeallocPc::UntrackLate(Token::InTransit),
        } => Some(w),
        _ => None,
    }
}

/// S6 baton: IN_TRANSIT only ever overlays Inactive (never Active, never under LOCKED); an
/// InTransit word has a dealloc holding its baton; and while the baton is held, the allocation
/// is not freed (exactly one settler, the second, frees).
pub fn s6_baton(cfg: &Config, s: &State) -> bool {
    if tagged(s, "S6") {
        return false;
    }
    let batons: Vec<WrapId> = s
        .actors
        .iter()
        .flat_map(|a| a.stack.iter().filter_map(holds_baton))
        .collect();
    let words_ok = s.objects.iter().enumerate().all(|(i, o)| {
        if o.freed || !cfg.objects[i].header {
            return true;
        }
        match o.word.kind() {
            Kind::Malformed => false,
            Kind::InTransit(w) => batons.contains(&w),
            _ => true,
        }
    });
    let batons_ok = batons
        .iter()
        .all(|&w| !s.objects[usize::from(s.wrappers[usize::from(w)].obj)].freed);
    words_ok && batons_ok
}

/// L1, deadlock freedom: a state in which some operation is in flight has an enabled step.
pub fn l1_no_deadlock(cfg: &Config, s: &State) -> bool {
    if s.violation.is_some() || !s.any_busy() {
        return true;
    }
    let mut acts = Vec::new();
    steps::actions(cfg, s, &mut acts);
    !acts.is_empty()
}

/// L1, progress: even if every idle thread stops for good (starts nothing, drops nothing), some
/// in-flight operation can take a step. Waits are modelled as blocking until what the waiter
/// observed changes, so a thread that would spin forever is a thread with no enabled step. A
/// lookup's bounded wait after a miss can always end (the takeover), and a thread with parked
/// deallocs and an empty stack can always unwind.
///
/// GIL mode: a thread waiting for the GIL has no enabled step, like any waiter; what makes that
/// a wait and not a deadlock is checked here too: the GIL is only ever held by a thread that is
/// in the middle of an operation and can take its next step.
pub fn l1_progress(cfg: &Config, s: &State) -> bool {
    if s.violation.is_some() {
        return true;
    }
    if let Some(h) = s.gil
        && (s.actors[usize::from(h)].stack.is_empty() || !steps::in_flight_can_move(cfg, s, h))
    {
        return false;
    }
    if !s.any_busy() {
        return true;
    }
    (0..s.actors.len() as ActorId)
        .filter(|&a| s.actors[usize::from(a)].busy())
        .any(|a| steps::in_flight_can_move(cfg, s, a))
}

/// The model's own bookkeeping: every native strong count and every live wrapper's frontend
/// count equals the number of holders the model can name. A wrong model fails this first.
pub fn accounting(cfg: &Config, s: &State) -> bool {
    if let Some(v) = s.violation {
        // A step that commits a violation stops mid-way; only the model's own errors count here.
        return !v.starts_with("model");
    }
    let strong_ok = s
        .objects
        .iter()
        .enumerate()
        .all(|(i, o)| o.freed || u32::from(o.strong) == strong_holders(cfg, s, i as ObjId));
    let rc_ok = s.wrappers.iter().enumerate().all(|(i, w)| {
        w.mem != Mem::Live || u32::from(w.rc.total()) == rc_holders(cfg, s, i as WrapId)
    });
    strong_ok && rc_ok
}

fn strong_holders(cfg: &Config, s: &State, obj: ObjId) -> u32 {
    let o = &s.objects[usize::from(obj)];
    let mut n = u32::from(o.rooted);
    if let Some(outer) = cfg.holder_of(obj) {
        n += u32::from(s.objects[usize::from(outer)].value_alive);
    }
    n += s
        .wrappers
        .iter()
        .filter(|w| w.obj == obj && w.handle)
        .count() as u32;
    for f in s.actors.iter().flat_map(|a| a.stack.iter()) {
        match *f {
            Frame::Lookup { obj: o2, pc, .. } if o2 == obj => {
                let gave_away = matches!(
                    pc,
                    LookupPc::Rearm(_)
                        | LookupPc::PublishRevived(_)
                        | LookupPc::Return(_)
                        | LookupPc::Fail
                );
                n += u32::from(!gave_away);
            }
            Frame::DropNative {
                obj: o2,
                pc: crate::state::DropPc::Strong,
            } if o2 == obj => n += 1,
            Frame::Move { from, pc, .. }
                if s.wrappers[usize::from(from)].obj == obj
                    && matches!(
                        pc,
                        MovePc::Rebind
                            | MovePc::RebindStore
                            | MovePc::Backoff(_)
                            | MovePc::ClearSource
                    ) =>
            {
                // Both wrappers carry the pointer until the source is cleared: one +1.
                n -= 1;
            }
            _ => {}
        }
    }
    n
}

fn rc_holders(cfg: &Config, s: &State, w: WrapId) -> u32 {
    let mut n: u32 = s
        .actors
        .iter()
        .map(|a| a.held.iter().filter(|&&h| h == w).count() as u32)
        .sum();
    for f in s.actors.iter().flat_map(|a| a.stack.iter()) {
        if let Frame::Lookup { spare: Some(x), .. } = *f {
            // The spare's one reference is the lookup's.
            n += u32::from(x == w);
        }
        let holds = match *f {
            Frame::Lookup {
                pc:
                    LookupPc::Unlock(x, true)
                    | LookupPc::Rearm(x)
                    | LookupPc::PublishRevived(x)
                    | LookupPc::Clone(x)
                    | LookupPc::ArmFresh(x)
                    | LookupPc::PublishFresh(x)
                    | LookupPc::StoreFresh(x)
                    | LookupPc::Return(x),
                ..
            } => x == w,
            Frame::Move { to, .. } => to == w,
            Frame::Dealloc { w: x, pc } => {
                x == w
                    && cfg.has(Bug::BumpBeforeTransition)
                    && matches!(
                        pc,
                        DeallocPc::Transition | DeallocPc::Backoff(_) | DeallocPc::Unbump(_)
                    )
            }
            _ => false,
        };
        n += u32::from(holds);
    }
    n
}

/// A property: its name, whether it is an invariant (`always`) or a reachability witness
/// (`sometimes`), and its predicate.
pub struct Prop {
    /// Name, as reported by the checker.
    pub name: &'static str,
    /// `true` for `always`, `false` for `sometimes`.
    pub always: bool,
    /// The predicate.
    pub holds: fn(&Config, &State) -> bool,
}

/// The invariants every run checks.
pub const INVARIANTS: [Prop; 9] = [
    Prop {
        name: "S1 memory safety",
        always: true,
        holds: s1_memory_safety,
    },
    Prop {
        name: "S2 no leak",
        always: true,
        holds: s2_no_leak,
    },
    Prop {
        name: "S3 canonical",
        always: true,
        holds: s3_canonical,
    },
    Prop {
        name: "S4 one wrapper",
        always: true,
        holds: s4_one_wrapper,
    },
    Prop {
        name: "S5 stable identity",
        always: true,
        holds: s5_stable_identity,
    },
    Prop {
        name: "S6 baton",
        always: true,
        holds: s6_baton,
    },
    Prop {
        name: "L1 no deadlock",
        always: true,
        holds: l1_no_deadlock,
    },
    Prop {
        name: "L1 progress",
        always: true,
        holds: l1_progress,
    },
    Prop {
        name: "model accounting",
        always: true,
        holds: accounting,
    },
];

fn any_frame(s: &State, p: impl Fn(&Frame) -> bool) -> bool {
    s.actors.iter().flat_map(|a| a.stack.iter()).any(p)
}

/// Witnesses that the interesting interleavings are reachable at all (a model that cannot reach
/// them would pass every invariant vacuously).
pub const WITNESSES: [Prop; 12] = [
    Prop {
        name: "witness: revival in place",
        always: false,
        holds: |_, s| {
            any_frame(s, |f| {
                matches!(
                    f,
                    Frame::Lookup {
                        pc: LookupPc::Revive(_),
                        ..
                    }
                )
            })
        },
    },
    Prop {
        name: "witness: lookup refused by a dying wrapper",
        always: false,
        holds: |_, s| {
            any_frame(
                s,
                |f| matches!(f, Frame::Lookup { pc: LookupPc::Backoff(w), .. } if w.ignore_lock),
            )
        },
    },
    Prop {
        name: "witness: dealloc backs off on a locked word",
        always: false,
        holds: |_, s| {
            any_frame(s, |f| {
                matches!(
                    f,
                    Frame::Dealloc {
                        pc: DeallocPc::Backoff(_),
                        ..
                    }
                )
            })
        },
    },
    Prop {
        name: "witness: lost publish race",
        always: false,
        // Only a lost publish leaves a lookup a spare it did not make for a takeover.
        holds: |_, s| {
            any_frame(s, |f| {
                matches!(
                    f,
                    Frame::Lookup {
                        spare: Some(_),
                        due: None,
                        ..
                    }
                )
            })
        },
    },
    Prop {
        name: "witness: reclaim deferred, the settler frees",
        always: false,
        holds: |_, s| {
            any_frame(s, |f| {
                matches!(
                    f,
                    Frame::Dealloc {
                        pc: DeallocPc::FreeAlloc,
                        ..
                    }
                )
            })
        },
    },
    Prop {
        name: "witness: reclaim frees a cached wrapper",
        always: false,
        holds: |_, s| {
            any_frame(s, |f| {
                matches!(
                    f,
                    Frame::Reclaim {
                        pc: crate::state::ReclaimPc::FreeWrapper(_),
                        ..
                    }
                )
            })
        },
    },
    Prop {
        name: "witness: everything freed",
        always: false,
        holds: |_, s| {
            s.objects.iter().all(|o| o.freed)
                && s.wrappers.iter().all(|w| w.mem == Mem::Freed)
                && !s.wrappers.is_empty()
        },
    },
    Prop {
        name: "witness: a lookup replaced a dying wrapper (takeover)",
        always: false,
        holds: |_, s| s.wrappers.iter().any(|w| w.replaced),
    },
    Prop {
        name: "witness: a lookup missed on a dealloc parked on its own thread",
        always: false,
        holds: |_, s| {
            s.actors.iter().any(|a| {
                a.stack.iter().any(|f| match *f {
                    Frame::Lookup {
                        pc:
                            LookupPc::Backoff(Wait {
                                rc: Some((w, _)), ..
                            }),
                        ..
                    } => a.parked.contains(&w),
                    _ => false,
                })
            })
        },
    },
    Prop {
        name: "witness: a replaced wrapper's late dealloc frees it (not canonical)",
        always: false,
        holds: |_, s| {
            any_frame(s, |f| match *f {
                Frame::Dealloc {
                    w,
                    pc: DeallocPc::FreeWrapper,
                } => s.wrappers[usize::from(w)].replaced,
                _ => false,
            })
        },
    },
    Prop {
        name: "witness: a thread waits for the GIL while another holds it",
        always: false,
        holds: |cfg, s| (0..s.actors.len() as ActorId).any(|a| steps::blocked_on_gil(cfg, s, a)),
    },
    Prop {
        name: "witness: the settle races a reclaim on another thread",
        always: false,
        holds: |_, s| {
            s.actors.iter().enumerate().any(|(i, a)| {
                let transit = match a.top() {
                    Some(Frame::Reclaim {
                        pc: crate::state::ReclaimPc::ClearTransit(w),
                        ..
                    }) => Some(*w),
                    // GIL mode: the reclaim about to take the GIL (attach) and load again.
                    Some(Frame::Reclaim {
                        pc: crate::state::ReclaimPc::Lock(first),
                        ..
                    }) => match first.kind() {
                        Kind::InTransit(w) => Some(w),
                        _ => None,
                    },
                    _ => None,
                };
                matches!(
                    transit,
                    Some(w) if s.actors.iter().enumerate().any(|(j, b)| {
                        j != i
                            && matches!(b.top(), Some(&Frame::Dealloc {
                                w: w2,
                                pc: DeallocPc::Settle,
                            }) if w2 == w)
                    })
                )
            })
        },
    },
];
