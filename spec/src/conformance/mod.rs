//! Conformance: one operation sequence, run through `binding-core` (with its model frontend) and
//! through the model's sequential semantics ([`crate::sequential`]); the first divergence fails.
//!
//! The model decides which operations are enabled and resolves their indices; the kernel then
//! runs the same operation. After every operation the driver compares (`docs/spec.md`,
//! "Conformance"):
//!
//! * the outcome: which way a lookup went (hit, revival, fresh, failed allocation) and *which*
//!   wrapper it returned; model wrapper ids are mapped to kernel wrapper blocks the first time a
//!   wrapper appears, and the map must stay a bijection (wrapper identity, S4/S5);
//! * the native effects, in order: value drops and allocation frees, per object;
//! * per object: freed or not, value alive or not, native references held, strong and weak
//!   counts, and the binding word (state and the wrapper it names);
//! * per wrapper: frontend reference count (0 once dead), which object its handle holds, how many
//!   times it was revived in place;
//! * totals: wrapper blocks allocated, freed, cached (or leaked at shutdown), deferred settles,
//!   native blocks freed, hits / revivals / fresh wrappers, the references each thread holds.
//!
//! A violation on either side (a model step's, an invariant, a panic of the model frontend's
//! checks) fails too. After the sequence everything still held is dropped, operation by
//! operation and compared the same way, and both sides must end with everything freed.

mod decode;
mod kernel;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::Relaxed;

pub use binding_core::model::{Foreign, Own, System};
pub use kernel::{FOREIGN_THREAD, Kernel, KernelOp, KernelOutcome, Rt, WordView, WrapperView};

use crate::config::{Bugs, ObjSpec};
use crate::sequential::{Applied, Effect, Found, Op, Outcome, Resolved, Sequential};
use crate::state::{Mem, ObjId, WrapId};
use crate::word::Kind;

/// Python threads of every run (plus the foreign thread).
pub const THREADS: u8 = 2;
/// At most this many objects per run.
pub const MAX_OBJECTS: usize = 3;
/// At most this many operations per program (before the teardown).
pub const MAX_OPS: usize = 64;

/// A conformance test case: the objects, then the operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The native objects (normalised by [`setup`] before the run).
    pub objects: Vec<ObjSpec>,
    /// The operations.
    pub ops: Vec<Op>,
}

/// Makes any list of objects a setup both sides can build: 1 to [`MAX_OBJECTS`] objects, all
/// with a header; a value holds only an object with a higher index that no other value holds;
/// an object that no value holds is rooted (held by the foreign thread).
pub fn setup(objects: &[ObjSpec]) -> Vec<ObjSpec> {
    let mut out: Vec<ObjSpec> = objects.iter().take(MAX_OBJECTS).copied().collect();
    if out.is_empty() {
        out.push(ObjSpec::PLAIN);
    }
    let n = out.len();
    let mut held = vec![false; n];
    for (i, o) in out.iter_mut().enumerate() {
        o.header = true;
        o.holds = o
            .holds
            .filter(|&j| usize::from(j) > i && usize::from(j) < n && !held[usize::from(j)]);
        if let Some(j) = o.holds {
            held[usize::from(j)] = true;
        }
    }
    for (o, held) in out.iter_mut().zip(held) {
        o.rooted |= !held;
    }
    out
}

/// The first difference between the kernel and the model (or a violation on either side).
#[derive(Clone, Debug)]
pub struct Divergence {
    /// The object system the kernel ran over (`Own` or `Foreign`).
    pub system: &'static str,
    /// The setup as run.
    pub objects: Vec<ObjSpec>,
    /// The operations that ran (skipped ones left out, teardown included), the last one
    /// diverging. Running them reproduces the divergence.
    pub ops: Vec<Op>,
    /// The diverging operation as the model resolved it (`None`: before any operation).
    pub resolved: Option<Resolved>,
    /// What differs.
    pub what: String,
}

impl Divergence {
    /// The reproducer as a program.
    pub fn program(&self) -> Program {
        Program {
            objects: self.objects.clone(),
            ops: self.ops.clone(),
        }
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kernel (over {} objects) and spec diverge at operation {} ({:?}):\n  {}",
            self.system,
            self.ops.len().saturating_sub(1),
            self.resolved,
            self.what
        )?;
        writeln!(f, "objects: {:?}", self.objects)?;
        writeln!(f, "operations:")?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {i:3}. {op:?}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Divergence {}

/// What a run exercised (summed over runs, it shows the property test is not vacuous).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Operations applied (teardown included).
    pub applied: usize,
    /// Operations the model did not enable (skipped on both sides).
    pub skipped: usize,
    /// Runs cut short because the model's wrapper budget was used up.
    pub truncated: usize,
    /// Lookups that hit the live wrapper.
    pub hits: usize,
    /// Lookups that revived a cached wrapper in place.
    pub revivals: usize,
    /// Lookups that published a fresh wrapper.
    pub fresh: usize,
    /// Lookups that replaced a dying wrapper whose dealloc did not come (the takeover).
    pub replaced: usize,
    /// Deallocs parked by the trashcan (and run later, when their thread unwound).
    pub parked: usize,
    /// Lookups whose fresh allocation failed.
    pub failed: usize,
    /// Moves that rebound the word to the new wrapper.
    pub rebinds: usize,
    /// Detaches (each clears the word: a wrapper with a handle is canonical between operations).
    pub detaches: usize,
    /// Wrapper frees that found reclaim had deferred to them (second settler).
    pub deferred_settles: usize,
    /// Cached wrappers freed by reclaim.
    pub reclaimed_cached: usize,
    /// Cached wrappers leaked on purpose after shutdown.
    pub leaked: usize,
    /// Native allocations freed by a drop on the foreign thread.
    pub foreign_frees: usize,
    /// Native allocations freed while dropping another object's value.
    pub nested_frees: usize,
}

impl std::ops::AddAssign for Coverage {
    fn add_assign(&mut self, o: Coverage) {
        self.applied += o.applied;
        self.skipped += o.skipped;
        self.truncated += o.truncated;
        self.hits += o.hits;
        self.revivals += o.revivals;
        self.fresh += o.fresh;
        self.replaced += o.replaced;
        self.parked += o.parked;
        self.failed += o.failed;
        self.rebinds += o.rebinds;
        self.detaches += o.detaches;
        self.deferred_settles += o.deferred_settles;
        self.reclaimed_cached += o.reclaimed_cached;
        self.leaked += o.leaked;
        self.foreign_frees += o.foreign_frees;
        self.nested_frees += o.nested_frees;
    }
}

/// Makes a divergence's reproducer smaller: drops operations (and objects) one at a time for as
/// long as `run` still diverges, and returns the last divergence. Any divergence counts, so the
/// result may fail differently from the input (it is still a divergence).
pub fn minimize<T>(d: Divergence, run: impl Fn(&Program) -> Result<T, Divergence>) -> Divergence {
    let mut best = d;
    loop {
        let p = best.program();
        let fewer_objects = (p.objects.len() > 1).then(|| Program {
            objects: p.objects[..p.objects.len() - 1].to_vec(),
            ops: p.ops.clone(),
        });
        let fewer_ops = (0..p.ops.len()).rev().map(|i| {
            let mut ops = p.ops.clone();
            ops.remove(i);
            Program {
                objects: p.objects.clone(),
                ops,
            }
        });
        // The reproducer of a divergence lists the operations that ran, teardown included, so
        // it can come out longer than the program that was run: only a shorter one counts.
        let size = |d: &Divergence| (d.objects.len(), d.ops.len());
        let smaller = fewer_objects
            .into_iter()
            .chain(fewer_ops)
            .filter_map(|q| run(&q).err())
            .find(|d| size(d) < size(&best));
        match smaller {
            Some(d) => best = d,
            None => return best,
        }
    }
}

/// Runs `program` through the correct kernel and the model as written, once over each object
/// system ([`Own`], then [`Foreign`]); the coverage is summed.
pub fn check(program: &Program) -> Result<Coverage, Divergence> {
    run_both::<0>(program)
}

/// [`run`] with the model as written, over [`Own`] and then over [`Foreign`]; the coverage is
/// summed, the first divergence returned.
pub fn run_both<const FLAW: u8>(program: &Program) -> Result<Coverage, Divergence> {
    let mut c = run::<FLAW, Own>(program, Bugs::NONE)?;
    c += run::<FLAW, Foreign>(program, Bugs::NONE)?;
    Ok(c)
}

/// The short name of an object system, for reports.
fn system_name<S: System>() -> &'static str {
    let full = std::any::type_name::<S>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Runs `program` through the kernel with the model frontend `ModelFrontend<FLAW, false, S>`
/// (a deliberately broken variant when `binding-core`'s `teeth` feature is on and `FLAW` names
/// one) over object system `S`, and through the model with `bugs` switched on; the first
/// divergence is returned.
pub fn run<const FLAW: u8, S: System>(
    program: &Program,
    bugs: Bugs,
) -> Result<Coverage, Divergence> {
    let objects = setup(&program.objects);
    let system = system_name::<S>();
    let mut d = Driver::<FLAW, S> {
        spec: Sequential::new(objects.clone(), THREADS, bugs).map_err(|e| Divergence {
            system,
            objects: objects.clone(),
            ops: Vec::new(),
            resolved: None,
            what: e.to_string(),
        })?,
        kernel: None,
        ids: Vec::new(),
        blocks: BTreeMap::new(),
        ran: Vec::new(),
        deferred: 0,
        coverage: Coverage::default(),
    };
    let result = d.run_all(&objects, &program.ops);
    match result {
        Ok(()) => Ok(d.coverage),
        Err((resolved, what)) => {
            // The kernel's state is suspect (a model-frontend check may have panicked half-way
            // through an operation): leak it rather than run its destructors.
            std::mem::forget(d.kernel.take());
            Err(Divergence {
                system,
                objects,
                ops: d.ran,
                resolved,
                what,
            })
        }
    }
}

type Fail = (Option<Resolved>, String);

struct Driver<const FLAW: u8, S: System> {
    spec: Sequential,
    kernel: Option<Kernel<FLAW, S>>,
    /// Model wrapper → kernel wrapper block.
    ids: Vec<Option<u64>>,
    /// Kernel wrapper block → model wrapper.
    blocks: BTreeMap<u64, WrapId>,
    ran: Vec<Op>,
    /// Deferred settles the model made so far.
    deferred: usize,
    coverage: Coverage,
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic)".into())
}

impl<const FLAW: u8, S: System> Driver<FLAW, S> {
    fn kernel(&mut self) -> &mut Kernel<FLAW, S> {
        self.kernel.as_mut().expect("built")
    }

    fn run_all(&mut self, objects: &[ObjSpec], ops: &[Op]) -> Result<(), Fail> {
        let kernel = catch_unwind(|| Kernel::<FLAW, S>::new(objects, THREADS)).map_err(|p| {
            (
                None,
                format!("kernel panicked building: {}", panic_message(&*p)),
            )
        })?;
        self.kernel = Some(kernel);
        self.compare().map_err(|e| (None, e))?;
        for &op in ops.iter().take(MAX_OPS) {
            if self.spec.full() {
                self.coverage.truncated += 1;
                break;
            }
            self.step(op)?;
        }
        while let Some(op) = self.spec.teardown_op() {
            if !self.step(op)? {
                return Err((None, format!("spec: teardown operation {op:?} not enabled")));
            }
        }
        if !self.spec.all_freed() {
            return Err((None, "spec: something survived the teardown".into()));
        }
        let rt = self.kernel().rt.clone();
        catch_unwind(AssertUnwindSafe(|| rt.assert_quiescent())).map_err(|p| {
            (
                None,
                format!(
                    "kernel not quiescent after the teardown: {}",
                    panic_message(&*p)
                ),
            )
        })?;
        Ok(())
    }

    /// One operation on both sides, then the comparison; `false` if the model skipped it.
    fn step(&mut self, op: Op) -> Result<bool, Fail> {
        let Some(resolved) = self.spec.resolve(op) else {
            self.coverage.skipped += 1;
            return Ok(false);
        };
        self.ran.push(self.spec.canonical(op));
        self.coverage.applied += 1;
        let fail = |what: String| (Some(resolved), what);
        let kop = self.kernel_op(resolved).map_err(fail)?;
        let stats_before = Stats::of(&self.kernel().rt);
        let applied = self
            .spec
            .apply_resolved(resolved)
            .map_err(|e| fail(e.to_string()))?;
        let kernel = self.kernel();
        let outcome = catch_unwind(AssertUnwindSafe(|| kernel.apply(kop)))
            .map_err(|p| fail(format!("kernel panicked: {}", panic_message(&*p))))?
            .map_err(|e| fail(format!("kernel cannot follow: {e}")))?;
        let stats = Stats::of(&self.kernel().rt);
        self.deferred += applied
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::DeferredSettle(_)))
            .count();
        self.compare_outcome(&applied, outcome, stats.minus(&stats_before))
            .map_err(fail)?;
        self.compare_effects(&applied).map_err(fail)?;
        self.compare().map_err(fail)?;
        self.cover(&applied);
        Ok(true)
    }

    fn block(&self, w: WrapId) -> Result<u64, String> {
        self.ids
            .get(usize::from(w))
            .copied()
            .flatten()
            .ok_or_else(|| format!("spec wrapper w{w} has no kernel counterpart"))
    }

    fn kernel_op(&self, r: Resolved) -> Result<KernelOp, String> {
        Ok(match r {
            Resolved::Lookup {
                thread,
                obj,
                alloc_fails,
            } => KernelOp::Lookup {
                thread,
                obj,
                alloc_fails,
            },
            Resolved::DropWrapper { thread, w } => KernelOp::DropWrapper {
                thread,
                block: self.block(w)?,
            },
            Resolved::DropParked { thread, w } => KernelOp::DropParked {
                thread,
                block: self.block(w)?,
            },
            Resolved::Unwind { thread } => KernelOp::Unwind { thread },
            Resolved::Move { thread, w, obj } => KernelOp::Move {
                thread,
                block: self.block(w)?,
                obj,
            },
            Resolved::Detach { thread, w } => KernelOp::Detach {
                thread,
                block: self.block(w)?,
            },
            Resolved::CloneNative { obj } => KernelOp::CloneNative { obj },
            Resolved::StashHandle { thread, w, obj } => KernelOp::StashHandle {
                thread,
                block: self.block(w)?,
                obj,
            },
            Resolved::DropNative { obj } => KernelOp::DropNative { obj },
            Resolved::Shutdown => KernelOp::Shutdown,
        })
    }

    /// Wrapper identity: `w` is `block`, now and forever.
    fn identify(&mut self, w: WrapId, block: u64) -> Result<(), String> {
        let i = usize::from(w);
        if self.ids.len() <= i {
            self.ids.resize(i + 1, None);
        }
        match (self.ids[i], self.blocks.get(&block)) {
            (Some(b), _) if b == block => Ok(()),
            (Some(b), _) => Err(format!(
                "wrapper identity: spec returned w{w} (kernel block #{b}), kernel returned block \
                 #{block}"
            )),
            (None, Some(&other)) => Err(format!(
                "wrapper identity: spec returned a new wrapper w{w}, kernel returned block \
                 #{block}, which is spec's w{other}"
            )),
            (None, None) => {
                self.ids[i] = Some(block);
                self.blocks.insert(block, w);
                Ok(())
            }
        }
    }

    fn compare_outcome(
        &mut self,
        applied: &Applied,
        outcome: KernelOutcome,
        d: Stats,
    ) -> Result<(), String> {
        let replaced = usize::from(matches!(
            applied.outcome,
            Outcome::Lookup(Found::Replaced(_))
        ));
        let kind = |hits, revivals, fresh| {
            if (d.hits, d.revivals, d.fresh, d.discarded, d.replaced)
                == (hits, revivals, fresh, 0, replaced)
            {
                Ok(())
            } else {
                Err(format!(
                    "lookup outcome: spec {:?}, kernel hits +{} revivals +{} fresh +{} \
                     discarded +{} replaced +{}",
                    applied.outcome, d.hits, d.revivals, d.fresh, d.discarded, d.replaced
                ))
            }
        };
        match (applied.outcome, outcome) {
            (Outcome::Lookup(Found::Hit(w)), KernelOutcome::Returned(b)) => {
                kind(1, 0, 0)?;
                self.identify(w, b)
            }
            (Outcome::Lookup(Found::Revived(w)), KernelOutcome::Returned(b)) => {
                kind(0, 1, 0)?;
                self.identify(w, b)
            }
            // The replacing wrapper is a fresh one (the spare), published by the takeover.
            (Outcome::Lookup(Found::Fresh(w) | Found::Replaced(w)), KernelOutcome::Returned(b)) => {
                kind(0, 0, 1)?;
                self.identify(w, b)
            }
            (Outcome::Lookup(Found::Failed), KernelOutcome::Failed) => kind(0, 0, 0),
            (Outcome::Moved(w), KernelOutcome::Moved(b)) => {
                kind(0, 0, 0)?;
                self.identify(w, b)
            }
            (Outcome::Done, KernelOutcome::Done) => kind(0, 0, 0),
            (s, k) => Err(format!("outcome: spec {s:?}, kernel {k:?}")),
        }
    }

    fn compare_effects(&mut self, applied: &Applied) -> Result<(), String> {
        let spec: Vec<Effect> = applied
            .effects
            .iter()
            .copied()
            .filter(|e| matches!(e, Effect::ValueDropped(_) | Effect::NativeFreed(_)))
            .collect();
        let kernel = self.kernel().native_effects();
        if spec != kernel {
            return Err(format!(
                "native effects: spec {spec:?}, kernel {kernel:?} (all spec effects: {:?})",
                applied.effects
            ));
        }
        Ok(())
    }

    fn word_view(&self, kind: Kind) -> Result<WordView, String> {
        Ok(match kind {
            Kind::Detached => WordView::Detached,
            Kind::Active(w) => WordView::Active(self.block(w)?),
            Kind::Inactive(w) => WordView::Inactive(self.block(w)?),
            Kind::InTransit(w) => WordView::InTransit(self.block(w)?),
            Kind::Malformed => return Err("spec word malformed".into()),
        })
    }

    /// The whole state, both sides, between two operations.
    fn compare(&self) -> Result<(), String> {
        let s = self.spec.state();
        let k = self.kernel.as_ref().expect("built");
        for (i, o) in s.objects.iter().enumerate() {
            let obj = i as ObjId;
            let differ = |what: &str, spec: &dyn fmt::Debug, kernel: &dyn fmt::Debug| {
                Err(format!(
                    "object {obj} {what}: spec {spec:?}, kernel {kernel:?}"
                ))
            };
            if o.freed != k.freed(obj) {
                return differ("freed", &o.freed, &k.freed(obj));
            }
            if o.value_alive != k.value_alive(obj) {
                return differ("value alive", &o.value_alive, &k.value_alive(obj));
            }
            if usize::from(self.spec.roots(obj)) != k.roots(obj) {
                return differ("native references", &self.spec.roots(obj), &k.roots(obj));
            }
            if o.freed {
                continue;
            }
            let strong = Some(usize::from(o.strong));
            if strong != k.strong(obj) {
                return differ("strong count", &strong, &k.strong(obj));
            }
            // The strong references share one weak reference; the model has no other. A system
            // without weak references (`Foreign`) has nothing to compare.
            let weak = usize::from(o.weak - u8::from(o.strong > 0));
            if let Some(kernel) = k.weak(obj)
                && kernel != weak
            {
                return differ("weak count", &weak, &kernel);
            }
            let word = Some(self.word_view(o.word.kind())?);
            if word != k.word(obj) {
                return differ(
                    "binding word",
                    &format_args!("{:?} = {word:?}", o.word),
                    &k.word(obj),
                );
            }
        }
        let mut cached = 0;
        let mut freed = 0;
        for (i, w) in s.wrappers.iter().enumerate() {
            let wid = i as WrapId;
            let block = self.block(wid)?;
            let view = k
                .wrapper(block)
                .ok_or_else(|| format!("kernel never showed block #{block} (spec w{wid})"))?;
            match w.mem {
                Mem::Live => {}
                Mem::Cached | Mem::Leaked => cached += 1,
                Mem::Freed => freed += 1,
            }
            let spec = WrapperView {
                refcount: if w.mem == Mem::Live {
                    usize::from(w.rc.total())
                } else {
                    0
                },
                handle: w.handle.then_some(Some(w.obj)),
                generation: u64::from(self.spec.revivals(wid)),
            };
            if spec != view {
                return Err(format!(
                    "wrapper w{wid} = #{block} ({:?}): spec {spec:?}, kernel {view:?}",
                    w.mem
                ));
            }
        }
        let stats = &k.rt.stats;
        let totals = [
            (
                "wrapper blocks",
                s.wrappers.len(),
                stats.wrapper_blocks.load(Relaxed),
            ),
            ("wrappers freed", freed, stats.wrappers_freed.load(Relaxed)),
            ("wrappers cached or leaked", cached, k.rt.cached_wrappers()),
            (
                "deferred settles",
                self.deferred,
                stats.deferred_settles.load(Relaxed),
            ),
            (
                "native blocks freed",
                s.objects.iter().filter(|o| o.freed).count(),
                stats.natives_freed.load(Relaxed),
            ),
        ];
        for (what, spec, kernel) in totals {
            if spec != kernel {
                return Err(format!("{what}: spec {spec}, kernel {kernel}"));
            }
        }
        for t in 0..THREADS {
            let spec: Vec<u64> = s.actors[usize::from(t)]
                .held
                .iter()
                .map(|&w| self.block(w))
                .collect::<Result<_, _>>()?;
            let mut spec = spec;
            spec.sort_unstable();
            let kernel = k.held(t);
            if spec != kernel {
                return Err(format!(
                    "thread {t} holds: spec {spec:?}, kernel {kernel:?} (blocks)"
                ));
            }
        }
        Ok(())
    }

    fn cover(&mut self, applied: &Applied) {
        let c = &mut self.coverage;
        match applied.outcome {
            Outcome::Lookup(Found::Hit(_)) => c.hits += 1,
            Outcome::Lookup(Found::Revived(_)) => c.revivals += 1,
            Outcome::Lookup(Found::Fresh(_)) => c.fresh += 1,
            Outcome::Lookup(Found::Replaced(_)) => c.replaced += 1,
            Outcome::Lookup(Found::Failed) => c.failed += 1,
            Outcome::Moved(to) => {
                let obj = self.spec.state().wrappers[usize::from(to)].obj;
                let word = self.spec.state().objects[usize::from(obj)].word;
                c.rebinds += usize::from(word.kind() == Kind::Active(to));
            }
            Outcome::Done => {}
        }
        if let Resolved::Detach { .. } = applied.op {
            c.detaches += 1;
        }
        if let Resolved::DropParked { thread, w } = applied.op {
            let parked = &self.spec.state().actors[usize::from(thread)].parked;
            c.parked += usize::from(parked.last() == Some(&w));
        }
        let cfg = self.spec.config();
        for (i, e) in applied.effects.iter().enumerate() {
            match *e {
                Effect::DeferredSettle(_) => c.deferred_settles += 1,
                Effect::ReclaimedCached(_) => c.reclaimed_cached += 1,
                Effect::WrapperLeaked(_) => c.leaked += 1,
                Effect::NativeFreed(obj) => {
                    let holder = cfg.holder_of(obj);
                    if holder
                        .is_some_and(|h| applied.effects[..i].contains(&Effect::ValueDropped(h)))
                    {
                        c.nested_frees += 1;
                    }
                    if applied.op == (Resolved::DropNative { obj }) {
                        c.foreign_frees += 1;
                    }
                }
                _ => {}
            }
        }
    }
}

/// The model frontend's counters that outcomes are compared by.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    hits: usize,
    revivals: usize,
    fresh: usize,
    discarded: usize,
    replaced: usize,
}

impl Stats {
    fn of<const FLAW: u8, S: System>(rt: &Rt<FLAW, S>) -> Stats {
        Stats {
            hits: rt.stats.hits.load(Relaxed),
            revivals: rt.stats.revivals.load(Relaxed),
            fresh: rt.stats.fresh.load(Relaxed),
            discarded: rt.stats.discarded.load(Relaxed),
            replaced: rt.stats.replaced.load(Relaxed),
        }
    }

    fn minus(self, o: &Stats) -> Stats {
        Stats {
            hits: self.hits.wrapping_sub(o.hits),
            revivals: self.revivals.wrapping_sub(o.revivals),
            fresh: self.fresh.wrapping_sub(o.fresh),
            discarded: self.discarded.wrapping_sub(o.discarded),
            replaced: self.replaced.wrapping_sub(o.replaced),
        }
    }
}
