//! The exported functions driven as a C object system would drive them (`support`), checking
//! identity (S4, S5), the block hand-offs (S2, S6, counted by a shadow count of live blocks) and
//! that misuse returns error codes. Also run under miri (`ci/miri.sh`), which checks the casts
//! between the C types and the kernel's.

mod support;

use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use support::*;
use tether::*;

/// The shadow counts are process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn live() -> (isize, isize) {
    (
        OBJECTS.load(Ordering::Relaxed),
        WRAPPERS.load(Ordering::Relaxed),
    )
}

fn state(b: *mut TetherBinding) -> TetherState {
    let mut s = TetherState::Detached;
    // SAFETY: `b` is live (the test holds a reference).
    assert_eq!(unsafe { tether_binding_state(b, &mut s) }, TetherStatus::Ok);
    s
}

fn lookup_found(b: *mut TetherBinding, f: &TetherFactory) -> (*mut Wrap, TetherFound) {
    let (mut w, mut found) = (ptr::null_mut(), TetherFound::Hit);
    // SAFETY: `b` is live and ours; the factory is complete.
    let status = unsafe { tether_lookup(b, f, &mut w, &mut found) };
    assert_eq!(status, TetherStatus::Ok);
    (w.cast(), found)
}

/// Fresh, hit, death (cached), revival at the same address, and reclaim of the cached wrapper:
/// every block freed exactly once. In both kernel modes.
fn identity_and_revival(rt: &'static Shared) {
    let _g = serial();
    let before = live();
    let f = factory(true);
    let b = new_object(rt);
    assert_eq!(state(b), TetherState::Detached);
    let (w, found) = lookup_found(b, &f);
    assert_eq!(found, TetherFound::Fresh);
    assert_eq!(state(b), TetherState::Active);
    let (again, found) = lookup_found(b, &f);
    assert_eq!(
        (again, found),
        (w, TetherFound::Hit),
        "S4: one live wrapper"
    );
    let mut hit = ptr::null_mut();
    // SAFETY: `b` is live and ours.
    unsafe { tether_hit(b, &mut hit) };
    assert_eq!(hit.cast::<Wrap>(), w);
    // SAFETY: three references are ours.
    unsafe {
        wrapper_release::<true>(hit.cast());
        wrapper_release::<true>(again);
        wrapper_release::<true>(w);
    }
    assert_eq!(
        state(b),
        TetherState::Inactive,
        "the dead wrapper is cached"
    );
    let mut none = ptr::null_mut();
    // SAFETY: as above.
    unsafe { tether_hit(b, &mut none) };
    assert!(none.is_null(), "no hit on a cached wrapper");
    let (revived, found) = lookup_found(b, &f);
    assert_eq!(
        (revived, found),
        (w, TetherFound::Revived),
        "S5: same address"
    );
    // SAFETY: ours.
    unsafe { wrapper_release::<true>(revived) };
    // SAFETY: our last reference: reclaim frees the cached wrapper, then the object.
    unsafe { release(ptr::null_mut(), b) };
    assert_eq!(live(), before, "S2/S6: every block freed exactly once");
}

#[test]
fn identity_and_revival_general_mode() {
    identity_and_revival(&RUNTIME);
}

#[test]
fn identity_and_revival_gil_mode() {
    identity_and_revival(&RUNTIME_GIL);
}

/// The last object reference goes while its wrapper is dying (between dealloc and settle):
/// reclaim defers, and the settle frees the object through `free_object` and tells the wrapper
/// to free itself.
#[test]
fn reclaim_during_dealloc_defers_to_the_settle() {
    let _g = serial();
    let before = live();
    let b = new_object(&RUNTIME);
    let (w, _) = lookup_found(b, &factory(true));
    // The wrapper's count reaches zero; its dealloc runs, its free does not yet.
    // SAFETY: ours; the last reference.
    let wr = unsafe { &*w };
    assert_eq!(wr.refcnt.fetch_sub(1, Ordering::AcqRel), 1);
    let mut out = TetherDeallocOutcome::NotCanonical;
    // SAFETY: the count reached zero; the only dealloc.
    let status = unsafe {
        tether_dealloc(
            wr.rt,
            w.cast(),
            &raw mut (*w).slot,
            true,
            &raw mut (*w).baton,
            &mut out,
        )
    };
    assert_eq!(
        (status, out),
        (TetherStatus::Ok, TetherDeallocOutcome::Cached)
    );
    assert_eq!(state(b), TetherState::InTransit);
    // The object's last reference, on "another thread": reclaim must defer.
    // SAFETY: ours.
    unsafe { release(ptr::null_mut(), b) };
    assert_eq!(OBJECTS.load(Ordering::Relaxed), before.0 + 1, "deferred");
    let mut settled = TetherSettled::Cached;
    // SAFETY: the pending baton.
    let status = unsafe { tether_settle(&raw mut (*w).baton, &mut settled) };
    assert_eq!(
        (status, settled),
        (TetherStatus::Ok, TetherSettled::FreeWrapper)
    );
    // A second settle is reported, not undefined.
    // SAFETY: the (settled) baton is still ours.
    let again = unsafe { tether_settle(&raw mut (*w).baton, &mut settled) };
    assert_eq!(again, TetherStatus::AlreadySettled);
    // SAFETY: the settle said to free it.
    drop(unsafe { Box::from_raw(w) });
    WRAPPERS.fetch_sub(1, Ordering::Relaxed);
    assert_eq!(live(), before, "S2/S6");
}

unsafe extern "C" fn failing_make_fresh(
    _: *mut std::ffi::c_void,
    _: *mut TetherBinding,
) -> *mut TetherWrapper {
    ptr::null_mut()
}

#[test]
fn misuse_returns_error_codes() {
    let _g = serial();
    let before = live();
    assert_eq!(tether_abi_version(), TETHER_ABI_VERSION);
    let b = new_object(&RUNTIME);
    let f = factory(true);
    let mut w = ptr::null_mut();
    // SAFETY: each call is given a null or an otherwise valid argument.
    unsafe {
        assert_eq!(
            tether_lookup(ptr::null_mut(), &f, &mut w, ptr::null_mut()),
            TetherStatus::NullArgument
        );
        assert_eq!(
            tether_lookup(b, ptr::null(), &mut w, ptr::null_mut()),
            TetherStatus::NullArgument
        );
        assert_eq!(
            tether_lookup(b, &f, ptr::null_mut(), ptr::null_mut()),
            TetherStatus::NullArgument
        );
        let incomplete = TetherFactory { discard: None, ..f };
        assert_eq!(
            tether_lookup(b, &incomplete, &mut w, ptr::null_mut()),
            TetherStatus::IncompleteFactory
        );
        let stale = TetherFactory {
            abi_version: TETHER_ABI_VERSION + 1,
            ..f
        };
        assert_eq!(
            tether_lookup(b, &stale, &mut w, ptr::null_mut()),
            TetherStatus::AbiMismatch
        );
        let failing = TetherFactory {
            make_fresh: Some(failing_make_fresh),
            ..f
        };
        assert_eq!(
            tether_lookup(b, &failing, &mut w, ptr::null_mut()),
            TetherStatus::FactoryFailed
        );
        assert_eq!(
            (*obj_of(b)).refcnt.load(Ordering::Relaxed),
            1,
            "a failed factory leaks no reference"
        );
        let misaligned = ptr::without_provenance_mut::<TetherWrapper>(0x1003);
        let mut r = TetherRebound::Done;
        assert_eq!(
            tether_detach(b, misaligned, &mut r),
            TetherStatus::Misaligned
        );
        let mut baton = TetherBaton {
            object: ptr::null_mut(),
            wrapper: ptr::null_mut(),
            state: 0,
        };
        let mut settled = TetherSettled::Cached;
        assert_eq!(
            tether_settle(&mut baton, &mut settled),
            TetherStatus::InvalidBaton
        );
        let mut binding: TetherBinding = std::mem::zeroed();
        let broken = Shared::incomplete();
        assert_eq!(
            tether_binding_init(&mut binding, &broken.0),
            TetherStatus::IncompleteRuntime
        );
        let stale = Shared(TetherRuntime {
            abi_version: 0,
            ..RUNTIME.0
        });
        assert_eq!(
            tether_binding_init(&mut binding, &stale.0),
            TetherStatus::AbiMismatch
        );
        release(ptr::null_mut(), b);
    }
    assert_eq!(live(), before);
}

/// An object reference handed to another thread.
struct SendPtr(*mut TetherBinding);
// SAFETY: the object system's references may move between threads (its counts are atomic).
unsafe impl Send for SendPtr {}

impl SendPtr {
    fn get(self) -> *mut TetherBinding {
        self.0
    }
}

/// Threads refetching one object while each holds a reference: every refetch has the first
/// wrapper's address (S5) unless a lookup replaced a descheduled dealloc's wrapper (counted),
/// and everything is freed at the end.
#[test]
fn threads_refetch_one_object() {
    let _g = serial();
    let before = live();
    REPLACED.store(0, Ordering::Relaxed);
    let (threads, rounds) = if cfg!(miri) { (3, 10) } else { (4, 2_000) };
    let b = new_object(&RUNTIME);
    let (first, _) = lookup_found(b, &factory(true));
    let addr = first.addr();
    // SAFETY: ours.
    unsafe { wrapper_release::<true>(first) };
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            // SAFETY: our reference keeps the object alive; each thread gets its own.
            unsafe { retain(ptr::null_mut(), b) };
            let mine = SendPtr(b);
            std::thread::spawn(move || {
                let b = mine.get();
                let f = factory(true);
                for _ in 0..rounds {
                    let (w, _) = lookup_found(b, &f);
                    // S5, with its one exception: a dealloc descheduled past the runtime's
                    // patience loses its wrapper to a takeover (`replaced` counts them).
                    assert!(
                        w.addr() == addr || REPLACED.load(Ordering::Relaxed) > 0,
                        "S5 violated: a refetch moved without a takeover"
                    );
                    // SAFETY: ours.
                    unsafe { wrapper_release::<true>(w) };
                }
                // SAFETY: this thread's reference.
                unsafe { release(ptr::null_mut(), b) };
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // SAFETY: our last reference.
    unsafe { release(ptr::null_mut(), b) };
    assert_eq!(live(), before, "S2/S6");
}

/// The environment variable that makes this test binary the child of
/// `a_broken_invariant_aborts_without_unwinding`.
const ABORT_CHILD: &str = "TETHER_ABI_ABORT_CHILD";

/// A broken contract the kernel detects (reclaim while a wrapper is alive and Active: the object
/// system reclaimed before its last reference went) aborts the process with the kernel's message
/// and the entry point's name; the panic never unwinds into the caller. Runs the misuse in a
/// child process (this test binary, re-run with `ABORT_CHILD` set).
#[test]
#[cfg_attr(miri, ignore = "miri cannot spawn processes")]
fn a_broken_invariant_aborts_without_unwinding() {
    if std::env::var_os(ABORT_CHILD).is_some() {
        let f = factory(true);
        let b = new_object(&RUNTIME);
        let _w = lookup::<true>(b, &f);
        let mut r = TetherReclaimed::Free;
        // SAFETY: deliberately broken (the object still has references); the kernel detects it.
        unsafe { tether_reclaim(b, &mut r) };
        // Not reached: the abort ends the process. Unwinding here would fail the parent.
        println!("tether_reclaim returned {r:?}");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_broken_invariant_aborts_without_unwinding",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ABORT_CHILD, "1")
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(6),
        "the child must die of SIGABRT: {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    assert!(
        stderr.contains("S3 violated") && stderr.contains("tether: tether_reclaim: panicked"),
        "the abort says what broke and where: {stderr}"
    );
    assert!(!stdout.contains("returned"), "the call returned: {stdout}");
}
