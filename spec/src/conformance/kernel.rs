//! The kernel side of the conformance check: `binding-core` with its model frontend (a
//! CPython-like runtime on a shadow heap), driven by operations the model resolved.
//!
//! The native objects belong to one of the model's object systems ([`System`]): the kernel's own
//! ([`Own`], an `ObjectArc` with strong and weak counts) or a foreign one ([`Foreign`], one count,
//! calling `reclaim` itself), so the same programs check the kernel's contract with object
//! systems, not only its own implementation of it. The runtime logs value drops and native frees
//! ([`ModelConfig::log_natives`]), so they are observed per object and in order, without holding
//! any reference (a native weak reference would delay reclaim). Wrapper blocks are quarantined by
//! the model frontend until the runtime itself goes, so their counts, handles and generations can
//! be read at any time.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;
use std::sync::{Mutex, OnceLock, mpsc};

use binding_core::model::{
    Config as ModelConfig, ModelFactory, ModelFrontend, ModelWrapper, NativeEvent, Parked, System,
    WrapperRef,
};
#[cfg(doc)]
use binding_core::model::{Foreign, Own};
use binding_core::{NativeObject, NativeRef, State};

use crate::config::ObjSpec;
use crate::state::{ActorId, ObjId};

/// The name of the thread that drops native references (the model's foreign thread).
pub const FOREIGN_THREAD: &str = "conformance-foreign";

/// The runtime: free-threaded (the sequential driver has nothing for a GIL to order).
pub type Rt<const FLAW: u8, S> = ModelFrontend<FLAW, false, S>;
/// A native object of system `S`.
type Native<const FLAW: u8, S> = <S as System>::Native<FLAW, false>;
/// A strong reference to one.
type Obj<const FLAW: u8, S> = NativeRef<Native<FLAW, S>>;

type Job = Box<dyn FnOnce() + Send>;
type Done = mpsc::SyncSender<std::thread::Result<()>>;

/// Runs `job` on the foreign thread (a thread that never runs a frontend operation) and waits
/// for it; a panic there is resumed here. One long-lived thread serves every run: spawning one
/// per drop would cost more than the rest of the operation.
fn on_foreign_thread(job: impl FnOnce() + Send + 'static) {
    static FOREIGN: OnceLock<Mutex<mpsc::Sender<(Job, Done)>>> = OnceLock::new();
    let jobs = FOREIGN.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<(Job, Done)>();
        std::thread::Builder::new()
            .name(FOREIGN_THREAD.into())
            .spawn(move || {
                for (job, done) in rx {
                    let _ = done.send(std::panic::catch_unwind(AssertUnwindSafe(job)));
                }
            })
            .expect("spawn the foreign thread");
        Mutex::new(tx)
    });
    let (done, result) = mpsc::sync_channel(1);
    jobs.lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((Box::new(job), done))
        .expect("the foreign thread lives as long as the process");
    match result.recv().expect("the foreign thread answers") {
        Ok(()) => {}
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// An operation for the kernel: a [`crate::sequential::Resolved`] whose wrappers are named by
/// the kernel's wrapper block ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelOp {
    /// A lookup by `thread`.
    Lookup {
        /// Python thread.
        thread: ActorId,
        /// Object.
        obj: ObjId,
        /// Fail the fresh allocation, if there is one.
        alloc_fails: bool,
    },
    /// Drop one reference to `block`.
    DropWrapper {
        /// Python thread.
        thread: ActorId,
        /// Wrapper block.
        block: u64,
    },
    /// Drop one reference to `block` as the trashcan does on a deep stack: a dealloc it would
    /// start is parked on the thread.
    DropParked {
        /// Python thread.
        thread: ActorId,
        /// Wrapper block.
        block: u64,
    },
    /// Run the thread's most recently parked dealloc.
    Unwind {
        /// Python thread.
        thread: ActorId,
    },
    /// Move `block`'s handle to a new wrapper of `obj`'s type.
    Move {
        /// Python thread.
        thread: ActorId,
        /// Wrapper block.
        block: u64,
        /// Its object.
        obj: ObjId,
    },
    /// Detach `block` and drop its handle.
    Detach {
        /// Python thread.
        thread: ActorId,
        /// Wrapper block.
        block: u64,
    },
    /// Clone a native reference.
    CloneNative {
        /// Object.
        obj: ObjId,
    },
    /// Keep a clone of `block`'s handle as a native reference.
    StashHandle {
        /// Python thread.
        thread: ActorId,
        /// Wrapper block.
        block: u64,
        /// Its object.
        obj: ObjId,
    },
    /// Drop a native reference on the foreign thread.
    DropNative {
        /// Object.
        obj: ObjId,
    },
    /// Start finalising.
    Shutdown,
}

/// What a kernel operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelOutcome {
    /// A lookup returned this wrapper block.
    Returned(u64),
    /// A lookup's fresh allocation failed.
    Failed,
    /// A move: the new wrapper block.
    Moved(u64),
    /// Anything else.
    Done,
}

/// A binding word as the driver compares it: wrappers named by block id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordView {
    /// No canonical wrapper.
    Detached,
    /// Active(block).
    Active(u64),
    /// Inactive(block).
    Inactive(u64),
    /// InTransit(block).
    InTransit(u64),
}

/// One wrapper block as the driver compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrapperView {
    /// Frontend reference count (0 once dead).
    pub refcount: usize,
    /// The object its handle holds, if any (`Some(None)`: an object the run does not know).
    pub handle: Option<Option<ObjId>>,
    /// How many times the block was re-initialised (revived).
    pub generation: u64,
}

/// `binding-core` and its model frontend over object system `S`, one operation at a time.
pub struct Kernel<const FLAW: u8, S: System> {
    /// The runtime.
    pub rt: Rt<FLAW, S>,
    headers: Vec<NonNull<Native<FLAW, S>>>,
    freed: Vec<bool>,
    value_alive: Vec<bool>,
    cacheable: Vec<bool>,
    holder: Vec<Option<ObjId>>,
    /// Native references the foreign thread holds.
    roots: Vec<Vec<Obj<FLAW, S>>>,
    /// Wrapper references each Python thread holds.
    held: Vec<Vec<WrapperRef<FLAW, false, S>>>,
    /// Deallocs parked on each Python thread, most recent last.
    parked: Vec<Vec<Parked<FLAW, false, S>>>,
    blocks: BTreeMap<u64, NonNull<ModelWrapper<FLAW, false, S>>>,
}

impl<const FLAW: u8, S: System> Kernel<FLAW, S> {
    /// Builds `objects` (a value holds only objects with a higher index) for `threads` Python
    /// threads.
    pub fn new(objects: &[ObjSpec], threads: u8) -> Self {
        // Single-threaded: no dealloc is ever merely slow, so replace a parked one at once.
        let rt = Rt::<FLAW, S>::new(ModelConfig {
            takeover_patience: core::time::Duration::ZERO,
            log_natives: true,
            ..ModelConfig::default()
        });
        let n = objects.len();
        let mut made: Vec<Option<Obj<FLAW, S>>> = (0..n).map(|_| None).collect();
        let mut headers = vec![NonNull::dangling(); n];
        for i in (0..n).rev() {
            let child = objects[i].holds.map(|j| {
                assert!(usize::from(j) > i, "a value holds only later objects");
                made[usize::from(j)].clone().expect("built already")
            });
            let o = rt.native(i as u32, child);
            headers[i] = o.as_ptr();
            made[i] = Some(o);
        }
        let roots = objects
            .iter()
            .zip(made)
            .map(|(o, r)| {
                if o.rooted {
                    r.into_iter().collect()
                } else {
                    Vec::new()
                }
            })
            .collect();
        let mut holder = vec![None; n];
        for (i, o) in objects.iter().enumerate() {
            if let Some(j) = o.holds {
                holder[usize::from(j)] = Some(i as ObjId);
            }
        }
        Kernel {
            rt,
            headers,
            freed: vec![false; n],
            value_alive: vec![true; n],
            cacheable: objects.iter().map(|o| !o.finalizer).collect(),
            holder,
            roots,
            held: (0..threads).map(|_| Vec::new()).collect(),
            parked: (0..threads).map(|_| Vec::new()).collect(),
            blocks: BTreeMap::new(),
        }
    }

    fn record(&mut self, w: &WrapperRef<FLAW, false, S>) -> u64 {
        let id = w.wrapper().id();
        self.blocks.insert(id, w.as_ptr());
        id
    }

    fn take_held(
        &mut self,
        thread: ActorId,
        block: u64,
    ) -> Result<WrapperRef<FLAW, false, S>, String> {
        let held = &mut self.held[usize::from(thread)];
        let i = held
            .iter()
            .position(|w| w.wrapper().id() == block)
            .ok_or_else(|| format!("thread {thread} holds no reference to wrapper #{block}"))?;
        Ok(held.remove(i))
    }

    fn find_held(
        &self,
        thread: ActorId,
        block: u64,
    ) -> Result<&WrapperRef<FLAW, false, S>, String> {
        self.held[usize::from(thread)]
            .iter()
            .find(|w| w.wrapper().id() == block)
            .ok_or_else(|| format!("thread {thread} holds no reference to wrapper #{block}"))
    }

    /// A wrapper of `obj` that `thread` holds, whose handle is set: a clone of that handle.
    fn handle_via(&self, thread: ActorId, obj: ObjId) -> Option<Obj<FLAW, S>> {
        let header = self.headers[usize::from(obj)];
        self.held[usize::from(thread)]
            .iter()
            .filter(|w| w.wrapper().slot().header() == Some(header))
            .find_map(WrapperRef::handle)
    }

    /// A reference to `obj` that `thread` can reach: one of the foreign thread's, the handle of
    /// a wrapper of it the thread holds (a method returning `self`), or the reference the value
    /// of its holder keeps (an attribute read through a wrapper of the holder).
    fn reach(&self, thread: ActorId, obj: ObjId) -> Option<Obj<FLAW, S>> {
        if let Some(r) = self.roots[usize::from(obj)].first() {
            return Some(r.clone());
        }
        if let Some(h) = self.handle_via(thread, obj) {
            return Some(h);
        }
        let outer = self.holder[usize::from(obj)]?;
        let outer = self.handle_via(thread, outer)?;
        S::payload(&outer).child.clone()
    }

    /// Runs one operation. `Err` when the kernel cannot do what the model did (a divergence);
    /// a panic of the model frontend (a violation it detected) propagates.
    pub fn apply(&mut self, op: KernelOp) -> Result<KernelOutcome, String> {
        Ok(match op {
            KernelOp::Lookup {
                thread,
                obj,
                alloc_fails,
            } => {
                let handle = self
                    .reach(thread, obj)
                    .ok_or_else(|| format!("thread {thread} cannot reach object {obj}"))?;
                let factory =
                    ModelFactory::new(self.rt.clone()).cacheable(self.cacheable[usize::from(obj)]);
                let factory = if alloc_fails {
                    factory.failing()
                } else {
                    factory
                };
                match self.rt.lookup_with(handle, &factory) {
                    Ok(w) => {
                        let id = self.record(&w);
                        self.held[usize::from(thread)].push(w);
                        KernelOutcome::Returned(id)
                    }
                    Err(_) => KernelOutcome::Failed,
                }
            }
            KernelOp::DropWrapper { thread, block } => {
                drop(self.take_held(thread, block)?);
                KernelOutcome::Done
            }
            KernelOp::DropParked { thread, block } => {
                if let Some(p) = self.take_held(thread, block)?.drop_parked() {
                    self.parked[usize::from(thread)].push(p);
                }
                KernelOutcome::Done
            }
            KernelOp::Unwind { thread } => {
                let p = self.parked[usize::from(thread)]
                    .pop()
                    .ok_or_else(|| format!("thread {thread} has no parked dealloc"))?;
                drop(p);
                KernelOutcome::Done
            }
            KernelOp::Move { thread, block, obj } => {
                let from = self.find_held(thread, block)?;
                let to = self
                    .rt
                    .new_unbound_wrapper(self.cacheable[usize::from(obj)]);
                // SAFETY: both wrappers are live (the thread holds references), `to`'s slot is
                // empty, and nothing else touches `from`'s slot (one thread runs).
                let moved = unsafe {
                    binding_core::move_binding(
                        &self.rt,
                        from.as_ptr(),
                        from.wrapper().slot(),
                        to.as_ptr(),
                        to.wrapper().slot(),
                    )
                };
                if moved.is_none() {
                    return Err(format!("wrapper #{block} has no handle to move"));
                }
                let id = self.record(&to);
                self.held[usize::from(thread)].push(to);
                KernelOutcome::Moved(id)
            }
            KernelOp::Detach { thread, block } => {
                let w = self.find_held(thread, block)?;
                let slot = w.wrapper().slot();
                let header = slot
                    .header()
                    .ok_or_else(|| format!("wrapper #{block} has no handle to detach"))?;
                // SAFETY: the slot's reference keeps the block alive until `take` below.
                binding_core::detach(unsafe { header.as_ref() }, w.as_ptr());
                drop(slot.take());
                KernelOutcome::Done
            }
            KernelOp::CloneNative { obj } => {
                let roots = &mut self.roots[usize::from(obj)];
                let r = roots
                    .first()
                    .ok_or_else(|| format!("native code holds no reference to object {obj}"))?
                    .clone();
                roots.push(r);
                KernelOutcome::Done
            }
            KernelOp::StashHandle { thread, block, obj } => {
                let w = self.find_held(thread, block)?;
                let h = w
                    .handle()
                    .ok_or_else(|| format!("wrapper #{block} has no handle to stash"))?;
                if h.as_ptr() != self.headers[usize::from(obj)] {
                    return Err(format!("wrapper #{block}'s handle is not object {obj}"));
                }
                self.roots[usize::from(obj)].push(h);
                KernelOutcome::Done
            }
            KernelOp::DropNative { obj } => {
                let r = self.roots[usize::from(obj)]
                    .pop()
                    .ok_or_else(|| format!("native code holds no reference to object {obj}"))?;
                on_foreign_thread(move || drop(r));
                KernelOutcome::Done
            }
            KernelOp::Shutdown => {
                self.rt.shutdown();
                KernelOutcome::Done
            }
        })
    }

    /// Value drops and native frees since the last call, in order.
    pub fn native_effects(&mut self) -> Vec<crate::sequential::Effect> {
        use crate::sequential::Effect;
        let mut out = Vec::new();
        for e in self.rt.take_native_events() {
            match e {
                NativeEvent::ValueDropped(id) => {
                    // Objects are made with their index as the payload's id (`new`).
                    let obj = ObjId::try_from(id).expect("an object of this run");
                    self.value_alive[usize::from(obj)] = false;
                    out.push(Effect::ValueDropped(obj));
                }
                NativeEvent::Freed(addr) => {
                    // Blocks are never reused (the model quarantines them): an address names
                    // one object.
                    let obj = self
                        .headers
                        .iter()
                        .position(|h| h.as_ptr().addr() == addr)
                        .expect("a block of this run");
                    self.freed[obj] = true;
                    out.push(Effect::NativeFreed(obj as ObjId));
                }
            }
        }
        out
    }

    /// Whether `obj`'s allocation was freed (as of the last [`native_effects`]).
    ///
    /// [`native_effects`]: Self::native_effects
    pub fn freed(&self, obj: ObjId) -> bool {
        self.freed[usize::from(obj)]
    }

    /// Whether `obj`'s value is alive (as of the last [`native_effects`]).
    ///
    /// [`native_effects`]: Self::native_effects
    pub fn value_alive(&self, obj: ObjId) -> bool {
        self.value_alive[usize::from(obj)]
    }

    fn header(&self, obj: ObjId) -> Option<&Native<FLAW, S>> {
        // SAFETY: the block is not freed (the runtime logs every free), so its header is live.
        (!self.freed(obj)).then(|| unsafe { self.headers[usize::from(obj)].as_ref() })
    }

    /// `obj`'s strong count, while its allocation lives.
    pub fn strong(&self, obj: ObjId) -> Option<usize> {
        self.header(obj).map(S::strong_count)
    }

    /// `obj`'s weak count (without the one the strong references share), while its allocation
    /// lives and if its system has weak references.
    pub fn weak(&self, obj: ObjId) -> Option<usize> {
        self.header(obj).and_then(S::weak_count)
    }

    /// `obj`'s binding word, while its allocation lives.
    pub fn word(&self, obj: ObjId) -> Option<WordView> {
        let id = |w: NonNull<ModelWrapper<FLAW, false, S>>| {
            // SAFETY: wrapper blocks are quarantined until the runtime goes.
            unsafe { w.as_ref() }.id()
        };
        self.header(obj).map(|h| match h.binding().snapshot() {
            State::Detached => WordView::Detached,
            State::Active(w) => WordView::Active(id(w)),
            State::Inactive(w) => WordView::Inactive(id(w)),
            State::InTransit(w) => WordView::InTransit(id(w)),
        })
    }

    /// Wrapper block `block`, if this run has seen it.
    pub fn wrapper(&self, block: u64) -> Option<WrapperView> {
        let w = self.blocks.get(&block)?;
        // SAFETY: wrapper blocks are quarantined until the runtime goes.
        let w = unsafe { w.as_ref() };
        let handle = w.slot().header().map(|h| {
            self.headers
                .iter()
                .position(|&x| x == h)
                .map(|i| i as ObjId)
        });
        Some(WrapperView {
            refcount: w.refcount(),
            handle,
            generation: w.generation(),
        })
    }

    /// References `thread` holds, by block.
    pub fn held(&self, thread: ActorId) -> Vec<u64> {
        let mut ids: Vec<u64> = self.held[usize::from(thread)]
            .iter()
            .map(|w| w.wrapper().id())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Native references the foreign thread holds to `obj`.
    pub fn roots(&self, obj: ObjId) -> usize {
        self.roots[usize::from(obj)].len()
    }
}
