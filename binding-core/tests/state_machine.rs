//! proptest-state-machine: random operation sequences run against the kernel (with the model
//! frontend) and against a small reference model of the sequential semantics. After every step
//! the binding state, the wrapper identities, the native strong counts and the stats must agree.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

use std::ptr::NonNull;

use binding_core::model::{Config, Foreign, ModelFactory, ModelFrontend, Own, System, WrapperRef};
use binding_core::{NativeObject, NativeRef, StateKind};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

const OBJECTS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    /// Native code takes another strong reference to object `o` (if it holds one).
    Clone(usize),
    /// Native code drops one of its strong references to `o`.
    DropNative(usize),
    /// Native code returns `o` to the frontend: a lookup (cacheable or finalizer type).
    Lookup(usize, bool),
    /// The frontend drops one of its wrapper references (the k-th held, modulo).
    DropWrapper(usize),
    /// `x._move()` on the k-th held wrapper reference.
    Move(usize),
    /// The runtime starts finalising.
    Shutdown,
}

#[derive(Clone, Debug, Default)]
struct RefWrapper {
    refs: usize,
    object: Option<usize>,
    cacheable: bool,
}

/// The reference model.
#[derive(Clone, Debug, Default)]
struct Reference {
    /// Strong references native code holds, per object (objects start with one).
    native: [usize; OBJECTS],
    /// Whether each object is still alive.
    alive: [bool; OBJECTS],
    /// Word state per object: None = Detached, Some((wrapper, inactive)).
    word: [Option<(usize, bool)>; OBJECTS],
    wrappers: BTreeMap<usize, RefWrapper>,
    /// The frontend's held wrapper references, in order.
    held: Vec<usize>,
    next_wrapper: usize,
    shutdown: bool,
    fresh: usize,
    revivals: usize,
}

impl Reference {
    fn strong(&self, o: usize) -> usize {
        self.native[o]
            + self
                .wrappers
                .values()
                .filter(|w| w.refs > 0 && w.object == Some(o))
                .count()
    }

    fn maybe_reclaim(&mut self, o: usize) {
        if self.alive[o] && self.strong(o) == 0 {
            self.alive[o] = false;
            self.word[o] = None;
        }
    }

    fn lookup(&mut self, o: usize, cacheable: bool) -> usize {
        match self.word[o] {
            Some((w, false)) => {
                self.wrappers.get_mut(&w).unwrap().refs += 1;
                w
            }
            Some((w, true)) => {
                self.revivals += 1;
                let wr = self.wrappers.get_mut(&w).unwrap();
                wr.refs = 1;
                wr.object = Some(o);
                self.word[o] = Some((w, false));
                w
            }
            None => {
                self.fresh += 1;
                let w = self.next_wrapper;
                self.next_wrapper += 1;
                self.wrappers.insert(
                    w,
                    RefWrapper {
                        refs: 1,
                        object: Some(o),
                        cacheable,
                    },
                );
                self.word[o] = Some((w, false));
                w
            }
        }
    }

    fn release(&mut self, w: usize) {
        let wr = self.wrappers.get_mut(&w).unwrap();
        wr.refs -= 1;
        if wr.refs > 0 {
            return;
        }
        let (object, cacheable) = (wr.object.take(), wr.cacheable);
        if let Some(o) = object {
            if self.word[o] == Some((w, false)) {
                self.word[o] = cacheable.then_some((w, true));
            }
            self.maybe_reclaim(o);
        }
    }
}

impl ReferenceStateMachine for Reference {
    type State = Reference;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Self::State> {
        Just(Reference {
            native: [1; OBJECTS],
            alive: [true; OBJECTS],
            next_wrapper: 0,
            ..Default::default()
        })
        .boxed()
    }

    fn transitions(state: &Self::State) -> BoxedStrategy<Self::Transition> {
        // Only transitions the state allows (native code can only act on objects it holds).
        let held: Vec<usize> = (0..OBJECTS).filter(|&o| state.native[o] > 0).collect();
        let mut ops: Vec<(u32, BoxedStrategy<Op>)> = Vec::new();
        if !held.is_empty() {
            let o = proptest::sample::select(held);
            ops.push((2, o.clone().prop_map(Op::Clone).boxed()));
            ops.push((2, o.clone().prop_map(Op::DropNative).boxed()));
            let lookup = (o, prop::bool::weighted(0.8)).prop_map(|(o, c)| Op::Lookup(o, c));
            ops.push((5, lookup.boxed()));
        }
        if !state.held.is_empty() {
            ops.push((3, (0..8usize).prop_map(Op::DropWrapper).boxed()));
            ops.push((1, (0..8usize).prop_map(Op::Move).boxed()));
        }
        if !state.shutdown {
            ops.push((1, Just(Op::Shutdown).boxed()));
        }
        if ops.is_empty() {
            // Everything was released: only an idempotent no-op remains.
            return Just(Op::Shutdown).boxed();
        }
        proptest::strategy::Union::new_weighted(ops).boxed()
    }

    fn preconditions(state: &Self::State, op: &Self::Transition) -> bool {
        match *op {
            Op::Clone(o) | Op::DropNative(o) | Op::Lookup(o, _) => state.native[o] > 0,
            Op::DropWrapper(_) | Op::Move(_) => !state.held.is_empty(),
            Op::Shutdown => true,
        }
    }

    fn apply(mut state: Self::State, op: &Self::Transition) -> Self::State {
        match *op {
            Op::Clone(o) => state.native[o] += 1,
            Op::DropNative(o) => {
                state.native[o] -= 1;
                state.maybe_reclaim(o);
            }
            Op::Lookup(o, cacheable) => {
                let w = state.lookup(o, cacheable);
                state.held.push(w);
            }
            Op::DropWrapper(k) => {
                let w = state.held.remove(k % state.held.len());
                state.release(w);
            }
            Op::Move(k) => {
                let from = state.held[k % state.held.len()];
                let object = state.wrappers[&from].object;
                if let Some(o) = object {
                    let to = state.next_wrapper;
                    state.next_wrapper += 1;
                    state.wrappers.insert(
                        to,
                        RefWrapper {
                            refs: 1,
                            object: Some(o),
                            cacheable: true,
                        },
                    );
                    state.wrappers.get_mut(&from).unwrap().object = None;
                    if state.word[o] == Some((from, false)) {
                        state.word[o] = Some((to, false));
                    }
                    state.held.push(to);
                }
            }
            Op::Shutdown => state.shutdown = true,
        }
        state
    }
}

/// The system under test: the kernel with the model frontend, over object system `S`.
struct Kernel<S: System> {
    rt: ModelFrontend<0, false, S>,
    native: Vec<Vec<NativeRef<S::Native<0, false>>>>,
    /// Each object's address, read only while the model's shadow heap says it is allocated.
    objects: Vec<NonNull<S::Native<0, false>>>,
    held: Vec<WrapperRef<0, false, S>>,
    /// Reference wrapper id → SUT wrapper block id.
    ids: BTreeMap<usize, u64>,
}

impl<S: System> StateMachineTest for Kernel<S> {
    type SystemUnderTest = Kernel<S>;
    type Reference = Reference;

    fn init_test(_ref: &Reference) -> Kernel<S> {
        let rt = ModelFrontend::new(Config::default());
        let native: Vec<_> = (0..OBJECTS)
            .map(|i| vec![rt.native(i as u32, None)])
            .collect();
        let objects = native.iter().map(|o| o[0].as_ptr()).collect();
        Kernel {
            rt,
            native,
            objects,
            held: Vec::new(),
            ids: BTreeMap::new(),
        }
    }

    fn apply(mut sut: Kernel<S>, reference: &Reference, op: Op) -> Kernel<S> {
        match op {
            Op::Clone(o) => {
                let h = sut.native[o][0].clone();
                sut.native[o].push(h);
            }
            Op::DropNative(o) => drop(sut.native[o].pop()),
            Op::Lookup(o, cacheable) => {
                let factory = ModelFactory::new(sut.rt.clone()).cacheable(cacheable);
                let w = sut
                    .rt
                    .lookup_with(sut.native[o][0].clone(), &factory)
                    .unwrap();
                let expect = *reference.held.last().unwrap();
                let id = *sut.ids.entry(expect).or_insert(w.wrapper().id());
                assert_eq!(
                    w.wrapper().id(),
                    id,
                    "lookup returned another wrapper than the model"
                );
                sut.held.push(w);
            }
            Op::DropWrapper(k) => {
                let n = sut.held.len();
                drop(sut.held.remove(k % n));
            }
            Op::Move(k) => {
                let n = sut.held.len();
                if let Some(to) = sut.held[k % n].take_over() {
                    let expect = *reference.held.last().unwrap();
                    sut.ids.insert(expect, to.wrapper().id());
                    sut.held.push(to);
                }
            }
            Op::Shutdown => sut.rt.shutdown(),
        }
        sut
    }

    fn check_invariants(sut: &Kernel<S>, reference: &Reference) {
        for o in 0..OBJECTS {
            let ptr = sut.objects[o];
            let live = sut.rt.is_native_live(ptr);
            assert_eq!(live, reference.alive[o], "object {o} liveness");
            if !live {
                continue;
            }
            // SAFETY: the shadow heap says the block is allocated, and nothing runs concurrently.
            let obj = unsafe { ptr.as_ref() };
            let expected_state = match reference.word[o] {
                None => StateKind::Detached,
                Some((_, false)) => StateKind::Active,
                Some((_, true)) => StateKind::Inactive,
            };
            assert_eq!(
                obj.binding().snapshot().kind(),
                expected_state,
                "object {o} word"
            );
            assert_eq!(
                S::strong_count(obj),
                reference.strong(o),
                "object {o} strong"
            );
        }
        assert_eq!(
            sut.rt.stats.fresh.load(Relaxed),
            reference.fresh,
            "fresh wrappers"
        );
        assert_eq!(
            sut.rt.stats.revivals.load(Relaxed),
            reference.revivals,
            "revivals"
        );
    }

    fn teardown(sut: Kernel<S>, _reference: Reference) {
        let Kernel {
            rt, native, held, ..
        } = sut;
        drop((held, native));
        rt.assert_quiescent();
    }
}

/// The kernel's own objects.
type OwnKernel = Kernel<Own>;
/// A foreign object system (one count of its own, reclaim called by it).
type ForeignKernel = Kernel<Foreign>;

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
    #[test]
    fn kernel_matches_reference(sequential 1..40 => OwnKernel);

    #[test]
    fn kernel_matches_reference_foreign_objects(sequential 1..40 => ForeignKernel);
}
