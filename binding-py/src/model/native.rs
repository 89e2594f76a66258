//! The model's native side: native objects, wrapper references, and the operations the tests
//! drive (construct, lookup, move).

use core::alloc::Layout;
use core::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;

use binding_core::{Found, NativeAllocator, ObjectArc, ObjectRef};

use super::object::ObjHead;
use super::{ModelInterp, ModelRt, ModelType, TypeRef};
use crate::adapter::{PyRef, WrapperObj};
use crate::runtime::Runtime;

/// A native object of the model.
pub type ModelObject = ObjectArc<Payload, ModelInterp, ModelAlloc>;

/// Counts native blocks (S2: none may be left at the end of a test).
pub struct ModelAlloc(ModelRt);

// SAFETY: forwards to the global allocator, which upholds the contract.
unsafe impl NativeAllocator for ModelAlloc {
    fn allocate(&self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.natives_live.fetch_add(1, Relaxed);
        // SAFETY: native blocks always contain a header: the layout is not zero-sized.
        NonNull::new(unsafe { std::alloc::alloc(layout) })
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        self.0.natives_live.fetch_sub(1, Relaxed);
        // SAFETY: the caller passes a block from `allocate` with its layout, once.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
    }
}

/// A reference to the wrapper type, held by the native object (as the real `Native::class`):
/// dropped attached, or leaked once the interpreter is finalising.
struct ClassRef {
    rt: ModelRt,
    ty: NonNull<ModelType>,
}

// SAFETY: the type is quarantined; its count is atomic.
unsafe impl Send for ClassRef {}
// SAFETY: as above.
unsafe impl Sync for ClassRef {}

impl Drop for ClassRef {
    fn drop(&mut self) {
        let rt = &self.rt;
        if rt.is_attached() {
            // SAFETY: we own one reference to the type.
            unsafe { rt.decref_type(self.ty) };
        } else if let Some(attached) = binding_core::Frontend::attach(&rt.interp()) {
            // SAFETY: as above, now attached.
            unsafe { rt.decref_type(self.ty) };
            drop(attached);
        }
    }
}

/// The native payload: its wrapper type, a label, an optional native reference to another
/// object and an optional Python reference (dropped on whatever thread drops the payload).
pub struct Payload {
    /// A label for assertions.
    pub id: u32,
    class: ClassRef,
    /// A native reference to another object.
    pub child: Option<ObjectRef<ModelInterp>>,
    /// A Python reference owned by the native object.
    pub py: Option<PyRef<ModelRt>>,
}

impl Payload {
    /// The wrapper type of this object.
    pub(crate) fn class(&self) -> NonNull<ModelType> {
        self.class.ty
    }
}

/// An owned reference to a model object (`Py<...>`); dropping it decrefs (attached).
pub struct WrapperRef {
    rt: ModelRt,
    ptr: NonNull<ObjHead>,
}

// SAFETY: objects are quarantined and every access is checked; the drop decrefs attached.
unsafe impl Send for WrapperRef {}
// SAFETY: as above.
unsafe impl Sync for WrapperRef {}

impl WrapperRef {
    /// Takes over a reference the caller owns.
    ///
    /// # Safety
    ///
    /// The caller owns one reference to `ptr` and gives it up.
    pub unsafe fn adopt(rt: ModelRt, ptr: NonNull<ObjHead>) -> Self {
        Self { rt, ptr }
    }

    /// The object's address (`id()`).
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr().addr()
    }

    /// The object.
    pub fn as_ptr(&self) -> NonNull<ObjHead> {
        self.ptr
    }

    /// The object's header.
    pub fn head(&self) -> &ObjHead {
        // SAFETY: quarantined, and we own a reference.
        unsafe { self.ptr.as_ref() }
    }

    fn wrapper(&self) -> &WrapperObj<ModelRt> {
        // SAFETY: every model object is laid out as a WrapperObj; we own a reference.
        unsafe { WrapperObj::of(self.ptr) }
    }

    /// A new strong native reference to the wrapped object, if the wrapper still holds one.
    /// (Tests serialise reads with moves of the same wrapper, as the GIL or a critical section
    /// does for the extension module.)
    pub fn handle(&self) -> Option<ObjectRef<ModelInterp>> {
        // SAFETY: see above.
        unsafe { self.wrapper().slot.clone_handle() }
    }

    /// `x._move()`: a fresh wrapper of the same type takes over the native reference.
    pub fn take_over(&self) -> Option<WrapperRef> {
        let interp = self.rt.interp();
        // SAFETY: attached (callers are Python threads); the type is live (we hold an instance).
        let to = unsafe {
            let ty = self.rt.type_of(self.ptr);
            interp.alloc_wrapper(ty).ok()?
        };
        // SAFETY: both live and owned; moves of `self` are serialised by the caller.
        let moved = unsafe { interp.move_into(self.ptr, to) };
        // SAFETY: we own the fresh wrapper's reference.
        let to = unsafe { WrapperRef::adopt(self.rt.clone(), to) };
        moved.then_some(to)
    }
}

impl Clone for WrapperRef {
    fn clone(&self) -> Self {
        // SAFETY: we own a reference.
        unsafe { self.rt.incref(self.ptr) };
        Self {
            rt: self.rt.clone(),
            ptr: self.ptr,
        }
    }
}

impl Drop for WrapperRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference and give it up.
        unsafe { self.rt.decref(self.ptr) }
    }
}

impl core::fmt::Debug for WrapperRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WrapperRef")
            .field("id", &self.head().id())
            .field("addr", &format_args!("{:#x}", self.addr()))
            .finish()
    }
}

impl ModelRt {
    /// A native object whose wrappers have type `class`.
    pub fn object(
        &self,
        id: u32,
        class: TypeRef,
        child: Option<ObjectRef<ModelInterp>>,
        py: Option<PyRef<ModelRt>>,
    ) -> ObjectRef<ModelInterp> {
        // SAFETY: the caller holds a reference to `class`; incref is plain bookkeeping.
        unsafe { self.incref_type(class.0) };
        let payload = Payload {
            id,
            class: ClassRef {
                rt: self.clone(),
                ty: class.0,
            },
            child,
            py,
        };
        ObjectArc::new_in(payload, self.interp(), ModelAlloc(self.clone())).erase()
    }

    /// A Python reference to a new plain object of type `ty` (for payloads).
    pub fn py_object(&self, ty: TypeRef) -> PyRef<ModelRt> {
        let o = self.new_plain(ty);
        // SAFETY: we own the new object's reference.
        unsafe { PyRef::from_owned(self.clone(), o) }
    }

    /// The payload behind a handle.
    pub fn payload<'a>(&self, h: &'a ObjectRef<ModelInterp>) -> &'a Payload {
        h.downcast_ref::<Payload, ModelAlloc>()
            .expect("model objects hold a Payload")
    }

    /// The lookup the extension module runs when native code hands an object to Python: the
    /// canonical wrapper, one reference for the caller. Checks S3 on the result.
    pub fn lookup(&self, h: &ObjectRef<ModelInterp>) -> WrapperRef {
        self.lookup_found(h).0
    }

    /// [`lookup`](Self::lookup), also saying how the wrapper was found.
    pub fn lookup_found(&self, h: &ObjectRef<ModelInterp>) -> (WrapperRef, Found) {
        let class = self.payload(h).class();
        // SAFETY: callers are attached Python threads; `class` is kept alive by the object.
        let (o, found) =
            unsafe { self.interp().wrap(h, class) }.expect("model allocations succeed");
        // SAFETY: we own the returned reference.
        let w = unsafe { WrapperRef::adopt(self.clone(), o) };
        w.head()
            .assert_life("a lookup result", &[super::object::LIVE]);
        // SAFETY: a live wrapper.
        let held = unsafe { WrapperObj::<ModelRt>::of(o) }.slot.header();
        assert!(
            held.is_none() || held == Some(h.as_ptr()),
            "S3 violated: a lookup returned a wrapper whose handle is another object"
        );
        (w, found)
    }

    /// Construction (`Inner(...)`): a fresh native object bound to a fresh wrapper.
    pub fn construct(&self, id: u32, class: TypeRef, py: Option<PyRef<ModelRt>>) -> WrapperRef {
        let h = self.object(id, class, None, py);
        // SAFETY: attached; `class` is a live wrapper type; `h` was never bound.
        let o = unsafe { self.interp().construct(class.0, h) }.expect("model allocations succeed");
        // SAFETY: we own the new wrapper's reference.
        unsafe { WrapperRef::adopt(self.clone(), o) }
    }
}
