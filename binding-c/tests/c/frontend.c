/*
 * frontend.c: a small C object system and C wrapper runtime over tether.h, run on threads, with
 * a shadow heap that asserts S1-S6 (docs/c-abi.md, docs/verification.md):
 *
 *   S1  no use after free / double free      every access checks the block's shadow state; freed
 *                                            blocks stay in quarantine, poisoned (0xDD, and
 *                                            ASan-poisoned under ASan) until a quiescent drain
 *                                            checks the poison is intact and really frees them
 *   S2  nothing leaked                       each round's drain: no live object, no live wrapper
 *                                            (except the ones shutdown leaks on purpose, counted)
 *   S3  an Active wrapper's slot holds it    checked after every lookup (and tether_hit agrees)
 *   S4  one live wrapper per object          concurrent first lookups return one pointer
 *   S5  same address while the object lives  drop/refetch storm; its one exception, a lookup that
 *                                            replaces a dying wrapper (TETHER_FOUND_REPLACED), is
 *                                            counted and printed (TETHER_C_STRICT_S5=1: asserted
 *                                            zero, since nothing here parks a dealloc)
 *   S6  every block freed exactly once       shadow state exchange LIVE -> FREED
 *
 * Scenarios: misuse (error codes), rebind, first lookups racing, drop/refetch storm, dealloc vs
 * reclaim (both orders), shutdown with objects alive; the concurrent ones also in GIL mode
 * (TetherRuntime.serialized, a pthread mutex as the runtime-wide lock).
 *
 * Built and run by ci/c-abi.sh plainly, under ASan+UBSan and under ThreadSanitizer. Usage:
 *   frontend [scenario ...]      (default: all; names as printed)
 * Environment: TETHER_C_SCALE=percent of the default rounds (default 100).
 *
 * Deliberately broken variants (ci/c-abi.sh asserts each one FAILS):
 *   -DTETHER_TEST_BROKEN_FREE_ON_DEFERRED   the object system frees the block on DEFERRED too
 *   -DTETHER_TEST_BROKEN_FREE_AFTER_CACHED  the wrapper's free frees the memory on SETTLED_CACHED
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* tether.h names `struct TetherBinding` in TetherRuntime's callback parameters before it defines
 * it; in C such a tag has prototype scope (a different, incompatible type, and a -Werror error
 * with GCC). Declaring the tag first gives it file scope. See ci/c-abi.sh's header step. */
struct TetherBinding;
#include "tether.h"

_Static_assert(sizeof(TetherWord) == TETHER_WORD_SIZE, "TETHER_WORD_SIZE");
_Static_assert(_Alignof(TetherWord) == TETHER_WORD_ALIGN, "TETHER_WORD_ALIGN");
_Static_assert(sizeof(TetherSlot) == sizeof(void *), "a slot is one pointer");

/* ------------------------------------------------------------------------------------------ */
/* Failing                                                                                    */

static void fail_at(int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void fail_at(int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "frontend.c:%d: FAIL: ", line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    fflush(stdout);
    _Exit(1);
}
#define FAIL(...) fail_at(__LINE__, __VA_ARGS__)
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) FAIL(__VA_ARGS__);                                                            \
    } while (0)

static const char *status_name(TetherStatus s) {
    switch (s) {
    case TETHER_STATUS_OK: return "OK";
    case TETHER_STATUS_NULL_ARGUMENT: return "NULL_ARGUMENT";
    case TETHER_STATUS_MISALIGNED: return "MISALIGNED";
    case TETHER_STATUS_INCOMPLETE_RUNTIME: return "INCOMPLETE_RUNTIME";
    case TETHER_STATUS_FACTORY_FAILED: return "FACTORY_FAILED";
    case TETHER_STATUS_ALREADY_SETTLED: return "ALREADY_SETTLED";
    case TETHER_STATUS_INVALID_BATON: return "INVALID_BATON";
    case TETHER_STATUS_ABI_MISMATCH: return "ABI_MISMATCH";
    case TETHER_STATUS_INCOMPLETE_FACTORY: return "INCOMPLETE_FACTORY";
    }
    return "(unknown status)";
}

#define EXPECT_STATUS(call, want)                                                                  \
    do {                                                                                           \
        TetherStatus st_ = (call);                                                                 \
        if (st_ != (want))                                                                         \
            FAIL("%s returned %s, expected %s", #call, status_name(st_), status_name(want));      \
    } while (0)
#define CHECK_OK(call) EXPECT_STATUS(call, TETHER_STATUS_OK)

/* ------------------------------------------------------------------------------------------ */
/* Shadow heap                                                                                */

enum { KIND_OBJECT = 0, KIND_WRAPPER = 1, KINDS = 2 };
static const char *const kind_name[KINDS] = {"object", "wrapper"};

#define BLOCK_MAGIC 0x7e7b0b1cu
#define BLOCK_LIVE 0x11feu
#define BLOCK_FREED 0xdeadu
#define POISON_BYTE 0xdd

typedef struct Block {
    uint32_t magic;
    uint32_t kind;
    _Atomic uint32_t state;
    uint32_t size;
    struct Block *next; /* every block since the last drain */
    uint64_t pad;       /* the body is 16-byte aligned */
} Block;
_Static_assert(sizeof(Block) % 16 == 0, "block header keeps the body aligned");

static _Atomic(Block *) heap_blocks;
static atomic_long heap_allocs[KINDS], heap_frees[KINDS];
/* Wrapper blocks tether leaked on purpose at shutdown; the harness frees them in the drain. */
static atomic_long heap_leaked_on_purpose;

static Block *block_of(void *body) { return (Block *)((char *)body - sizeof(Block)); }

static void *shadow_alloc(int kind, size_t size) {
    Block *b = malloc(sizeof(Block) + size);
    CHECK(b != NULL, "out of memory");
    b->magic = BLOCK_MAGIC;
    b->kind = (uint32_t)kind;
    atomic_init(&b->state, BLOCK_LIVE);
    b->size = (uint32_t)size;
    memset(b + 1, 0, size);
    /* Relaxed: the list is only read at quiescent points (after joins and barriers), so it adds
     * no synchronisation that could hide a race from ThreadSanitizer. */
    Block *head = atomic_load_explicit(&heap_blocks, memory_order_relaxed);
    do {
        b->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&heap_blocks, &head, b, memory_order_relaxed,
                                                    memory_order_relaxed));
    atomic_fetch_add_explicit(&heap_allocs[kind], 1, memory_order_relaxed);
    return b + 1;
}

/* S1: every access of the harness to a block goes through here first. */
static void check_live(const void *body, int kind, const char *what) {
    CHECK(body != NULL, "%s: null %s", what, kind_name[kind]);
    Block *b = block_of((void *)body);
    CHECK(b->magic == BLOCK_MAGIC, "%s: %p is not a %s block (S1)", what, body, kind_name[kind]);
    CHECK(b->kind == (uint32_t)kind, "%s: %p is a %s, not a %s", what, body, kind_name[b->kind % 2],
          kind_name[kind]);
    uint32_t s = atomic_load_explicit(&b->state, memory_order_relaxed);
    CHECK(s == BLOCK_LIVE, "%s: use after free of %s %p (S1)", what, kind_name[kind], body);
}

/* S6: LIVE -> FREED exactly once; the body is poisoned and kept until the next drain. */
static void shadow_free(void *body, int kind, const char *what) {
    Block *b = block_of(body);
    CHECK(b->magic == BLOCK_MAGIC && b->kind == (uint32_t)kind, "%s: free of a non-%s %p", what,
          kind_name[kind], body);
    uint32_t was = atomic_exchange_explicit(&b->state, BLOCK_FREED, memory_order_relaxed);
    CHECK(was != BLOCK_FREED, "%s: double free of %s %p (S6)", what, kind_name[kind], body);
    CHECK(was == BLOCK_LIVE, "%s: free of a corrupt %s block %p", what, kind_name[kind], body);
    memset(body, POISON_BYTE, b->size);
    POISON(body, b->size);
    atomic_fetch_add_explicit(&heap_frees[kind], 1, memory_order_relaxed);
}

/* At a quiescent point: checks every block since the last drain (S2: only `leaked_wrappers`
 * wrapper blocks may be live, leaked on purpose by a shutdown; S1: the poison of freed ones is
 * intact) and really frees them all. */
static void heap_drain(const char *scenario, long leaked_wrappers) {
    Block *b = atomic_exchange_explicit(&heap_blocks, NULL, memory_order_relaxed);
    long live[KINDS] = {0, 0};
    while (b) {
        Block *next = b->next;
        uint32_t s = atomic_load_explicit(&b->state, memory_order_relaxed);
        if (s == BLOCK_FREED) {
            unsigned char *body = (unsigned char *)(b + 1);
            UNPOISON(body, b->size);
            for (uint32_t i = 0; i < b->size; i++)
                CHECK(body[i] == POISON_BYTE, "%s: %s %p written after its free (S1), byte %u",
                      scenario, kind_name[b->kind], (void *)body, i);
        } else {
            CHECK(s == BLOCK_LIVE, "%s: corrupt block", scenario);
            live[b->kind]++;
            atomic_fetch_add_explicit(&heap_frees[b->kind], 1, memory_order_relaxed);
        }
        b->magic = 0;
        free(b);
        b = next;
    }
    CHECK(live[KIND_OBJECT] == 0, "%s: %ld object block(s) leaked (S2)", scenario,
          live[KIND_OBJECT]);
    CHECK(live[KIND_WRAPPER] == leaked_wrappers,
          "%s: %ld wrapper block(s) live after the round, expected %ld leaked on purpose (S2)",
          scenario, live[KIND_WRAPPER], leaked_wrappers);
    atomic_fetch_add_explicit(&heap_leaked_on_purpose, leaked_wrappers, memory_order_relaxed);
}

/* ------------------------------------------------------------------------------------------ */
/* The runtime: its table, its factory, its counters                                          */

enum {
    C_FRESH, C_REVIVE, C_DISCARD, C_FACTORY_FAILED, C_UNTRACK, C_TRY_OK, C_TRY_FAIL, C_ENABLE,
    C_BACKOFF, C_ATTACH_OK, C_ATTACH_REFUSED, C_FREE_CACHED, C_FREE_OBJECT, C_RECLAIM_FREE,
    C_RECLAIM_DEFERRED, C_OUT_CACHED, C_OUT_DETACHED, C_OUT_NOT_CANONICAL, C_SETTLED_CACHED,
    C_SETTLED_FREE, C_FOUND_HIT, C_FOUND_REVIVED, C_FOUND_FRESH, C_FOUND_REPLACED, C_COUNTERS
};

struct Rt;
typedef struct Wrap Wrap;

typedef struct Rt {
    TetherRuntime table; /* ctx = this */
    TetherFactory factory;
    bool gil_mode;       /* table.serialized: every tether call but reclaim under `gil` */
    pthread_mutex_t gil;
    atomic_bool cache;           /* what wrappers pass to tether_dealloc */
    atomic_bool fail_make_fresh; /* the factory fails */
    atomic_bool shutdown;        /* is_alive() == !shutdown */
    atomic_bool shutdown_done;   /* shutdown() returned: no attached thread remains */
    atomic_long attached;
    atomic_uint epoch; /* stamped on fresh wrappers (the storm tells takeover spares apart) */
    /* Called between tether_dealloc and tether_settle (a wrapper's teardown writes). */
    void (*teardown_hook)(struct Rt *rt, Wrap *w);
    void *hook_arg;
    atomic_long n[C_COUNTERS];
} Rt;

static void count(Rt *rt, int c) { atomic_fetch_add_explicit(&rt->n[c], 1, memory_order_relaxed); }
static long counted(Rt *rt, int c) { return atomic_load_explicit(&rt->n[c], memory_order_relaxed); }

/* GIL mode: the runtime-wide lock, held around every tether call but tether_reclaim (re-entrant
 * per thread: callbacks run inside the calls that hold it), let go inside backoff and make_fresh. */
static _Thread_local int gil_depth;

static void gil_enter(Rt *rt) {
    if (rt->gil_mode && gil_depth++ == 0) pthread_mutex_lock(&rt->gil);
}

static void gil_exit(Rt *rt) {
    if (rt->gil_mode && --gil_depth == 0) pthread_mutex_unlock(&rt->gil);
}

/* Lets the GIL go entirely for a while (returns the depth to give back to gil_resume). */
static int gil_suspend(Rt *rt) {
    int depth = gil_depth;
    if (rt->gil_mode && depth > 0) {
        gil_depth = 0;
        pthread_mutex_unlock(&rt->gil);
    }
    return depth;
}

static void gil_resume(Rt *rt, int depth) {
    if (rt->gil_mode && depth > 0) {
        pthread_mutex_lock(&rt->gil);
        gil_depth = depth;
    }
}

static void gil_assert_held(Rt *rt, const char *what) {
    CHECK(!rt->gil_mode || gil_depth > 0, "GIL mode: %s called without the GIL", what);
}

/* ------------------------------------------------------------------------------------------ */
/* The object system: one atomic strong count, the binding in the header                      */

#define VALUE_LIVE 0x11fe11fe11fe11feull
#define VALUE_DROPPED 0xd0d0d0d0d0d0d0d0ull

typedef struct Obj {
    atomic_size_t strong;
    TetherBinding binding;
    atomic_int reclaimed; /* set before tether_reclaim: free_object checks it */
    uint64_t value;       /* "the value": dropped at strong -> 0, before the reclaim */
    Rt *rt;
} Obj;

static Obj *obj_of(TetherBinding *b) { return (Obj *)((char *)b - offsetof(Obj, binding)); }

static Obj *obj_new(Rt *rt) {
    Obj *o = shadow_alloc(KIND_OBJECT, sizeof(Obj));
    atomic_init(&o->strong, 1);
    atomic_init(&o->reclaimed, 0);
    o->value = VALUE_LIVE;
    o->rt = rt;
    CHECK_OK(tether_binding_init(&o->binding, &rt->table));
    return o;
}

static void obj_retain(Obj *o) {
    check_live(o, KIND_OBJECT, "retain");
    /* Relaxed: a new reference comes from an existing one. */
    size_t was = atomic_fetch_add_explicit(&o->strong, 1, memory_order_relaxed);
    CHECK(was > 0, "retain of object %p whose count is zero (S1)", (void *)o);
}

static size_t obj_strong(Obj *o) {
    check_live(o, KIND_OBJECT, "strong");
    return atomic_load_explicit(&o->strong, memory_order_relaxed);
}

/* The object system's release and its reclaim edge (docs/c-abi.md section 2). */
static void obj_release(Obj *o) {
    check_live(o, KIND_OBJECT, "release");
    Rt *rt = o->rt;
    size_t was = atomic_fetch_sub_explicit(&o->strong, 1, memory_order_release);
    CHECK(was > 0, "release of object %p whose count is zero (S1)", (void *)o);
    if (was != 1) return;
    /* An acquire load rather than a fence: ThreadSanitizer does not model fences. */
    (void)atomic_load_explicit(&o->strong, memory_order_acquire);
    CHECK(o->value == VALUE_LIVE, "object %p value dropped twice (S1)", (void *)o);
    o->value = VALUE_DROPPED;
    atomic_store_explicit(&o->reclaimed, 1, memory_order_relaxed);
    TetherReclaimed r;
    CHECK_OK(tether_reclaim(&o->binding, &r));
    if (r == TETHER_RECLAIMED_FREE) {
        count(rt, C_RECLAIM_FREE);
        shadow_free(o, KIND_OBJECT, "reclaim FREE");
    } else {
        CHECK(r == TETHER_RECLAIMED_DEFERRED, "tether_reclaim: outcome %d", (int)r);
        count(rt, C_RECLAIM_DEFERRED);
        /* DEFERRED: do not touch `o` again; a settle calls free_object. */
#ifdef TETHER_TEST_BROKEN_FREE_ON_DEFERRED
        shadow_free(o, KIND_OBJECT, "reclaim DEFERRED (broken variant)");
#endif
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Wrappers                                                                                   */

enum { PHASE_LIVE = 1, PHASE_DYING = 2, PHASE_CACHED = 3 };

struct Wrap {
    atomic_size_t refcnt;
    atomic_bool armed;  /* try_incref refuses until enable_try_incref */
    atomic_int phase;   /* bookkeeping for the checks */
    uint32_t revivals;
    uint32_t born;      /* the runtime's epoch when make_fresh built it */
    Obj *obj;           /* the object the slot is meant to hold (checks only) */
    TetherSlot slot;
    TetherBaton baton;  /* filled by tether_dealloc, settled in the free */
    uint64_t payload[2];
};
_Static_assert(_Alignof(Wrap) >= TETHER_WRAPPER_ALIGN, "wrappers are 8-byte aligned");

static TetherWrapper *tw(Wrap *w) { return (TetherWrapper *)w; }
static Wrap *wr(TetherWrapper *w) { return (Wrap *)w; }

static void wrap_free(Wrap *w, const char *what) { shadow_free(w, KIND_WRAPPER, what); }

/* The wrapper's dealloc and free, once its count reached zero (docs/embedding.md section 4). */
static void wrap_dealloc_and_free(Rt *rt, Wrap *w) {
    atomic_store_explicit(&w->phase, PHASE_DYING, memory_order_relaxed);
    bool cache = atomic_load_explicit(&rt->cache, memory_order_relaxed);
    TetherDeallocOutcome out;
    /* (1) transition first */
    CHECK_OK(tether_dealloc(&rt->table, tw(w), &w->slot, cache, &w->baton, &out));
    TetherBinding *left;
    CHECK_OK(tether_slot_get(&w->slot, &left));
    CHECK(left == NULL, "tether_dealloc left a reference in the slot");
    switch (out) {
    case TETHER_DEALLOC_OUTCOME_CACHED: {
        count(rt, C_OUT_CACHED);
        CHECK(cache, "tether_dealloc cached a wrapper with cache=false");
        CHECK(w->baton.state == TETHER_BATON_PENDING && w->baton.wrapper == tw(w),
              "tether_dealloc: CACHED without a pending baton for this wrapper");
        /* (2) every write to w before the settle */
        atomic_store_explicit(&w->phase, PHASE_CACHED, memory_order_relaxed);
        atomic_store_explicit(&w->armed, false, memory_order_relaxed);
        w->payload[0] = 0;
        if (rt->teardown_hook) rt->teardown_hook(rt, w);
        TetherSettled s;
        CHECK_OK(tether_settle(&w->baton, &s));
        if (s == TETHER_SETTLED_CACHED) {
            count(rt, C_SETTLED_CACHED);
            /* (3) hands off: w belongs to the word now */
#ifdef TETHER_TEST_BROKEN_FREE_AFTER_CACHED
            wrap_free(w, "settle CACHED (broken variant)");
#endif
            return;
        }
        CHECK(s == TETHER_SETTLED_FREE_WRAPPER, "tether_settle: %d", (int)s);
        count(rt, C_SETTLED_FREE);
        wrap_free(w, "settle FREE_WRAPPER");
        return;
    }
    case TETHER_DEALLOC_OUTCOME_DETACHED:
        count(rt, C_OUT_DETACHED);
        CHECK(!cache, "tether_dealloc detached a wrapper with cache=true");
        wrap_free(w, "dealloc DETACHED");
        return;
    case TETHER_DEALLOC_OUTCOME_NOT_CANONICAL:
        count(rt, C_OUT_NOT_CANONICAL);
        wrap_free(w, "dealloc NOT_CANONICAL");
        return;
    }
    FAIL("tether_dealloc: outcome %d", (int)out);
}

static void wrap_release(Rt *rt, Wrap *w) {
    gil_enter(rt);
    check_live(w, KIND_WRAPPER, "wrapper release");
    CHECK(atomic_load_explicit(&w->phase, memory_order_relaxed) == PHASE_LIVE,
          "release of a wrapper %p that is not live (S1)", (void *)w);
    size_t was = atomic_fetch_sub_explicit(&w->refcnt, 1, memory_order_release);
    CHECK(was > 0, "release of wrapper %p whose count is zero (S1)", (void *)w);
    if (was == 1) {
        (void)atomic_load_explicit(&w->refcnt, memory_order_acquire);
        wrap_dealloc_and_free(rt, w);
    }
    gil_exit(rt);
}

/* S3 (and S4 against tether_hit) for a wrapper the caller holds a reference to. */
static void check_active(Obj *o, Wrap *w) {
    gil_enter(o->rt);
    check_live(w, KIND_WRAPPER, "lookup result");
    CHECK(atomic_load_explicit(&w->phase, memory_order_relaxed) == PHASE_LIVE,
          "lookup returned a wrapper %p that is not live (S1)", (void *)w);
    CHECK(atomic_load_explicit(&w->refcnt, memory_order_relaxed) >= 1,
          "lookup returned wrapper %p with count zero (S1)", (void *)w);
    CHECK(w->obj == o, "lookup returned a wrapper of another object");
    TetherBinding *held;
    CHECK_OK(tether_slot_get(&w->slot, &held));
    CHECK(held == &o->binding, "Active wrapper %p's slot holds %p, not its object %p (S3)",
          (void *)w, (void *)held, (void *)&o->binding);
    TetherState st;
    CHECK_OK(tether_binding_state(&o->binding, &st));
    CHECK(st == TETHER_STATE_ACTIVE, "word not Active (%d) while a wrapper is held (S3)", (int)st);
    /* The fast path may give up (the word locked by another lookup): null or the same wrapper. */
    TetherWrapper *again;
    CHECK_OK(tether_hit(&o->binding, &again));
    if (again) {
        CHECK(again == tw(w), "tether_hit returned %p while %p is canonical (S4)", (void *)again,
              (void *)w);
        wrap_release(o->rt, w);
    }
    gil_exit(o->rt);
}

/* The looked-up wrapper (+1) and how it was found. */
static Wrap *lookup(Rt *rt, Obj *o, TetherFound *found) {
    TetherWrapper *w = NULL;
    TetherFound f;
    gil_enter(rt);
    CHECK_OK(tether_lookup(&o->binding, &rt->factory, &w, &f));
    CHECK(w != NULL, "tether_lookup: OK with a null wrapper");
    CHECK((uintptr_t)w % TETHER_WRAPPER_ALIGN == 0, "tether_lookup: misaligned wrapper");
    CHECK(f >= TETHER_FOUND_HIT && f <= TETHER_FOUND_REPLACED, "tether_lookup: found %d", (int)f);
    count(rt, C_FOUND_HIT + (int)f);
    check_active(o, wr(w));
    gil_exit(rt);
    if (found) *found = f;
    return wr(w);
}

/* ------------------------------------------------------------------------------------------ */
/* Callbacks                                                                                  */

static bool cb_try_incref(void *ctx, TetherWrapper *tw_) {
    Rt *rt = ctx;
    Wrap *w = wr(tw_);
    check_live(w, KIND_WRAPPER, "try_incref");
    gil_assert_held(rt, "try_incref");
    CHECK(atomic_load_explicit(&w->phase, memory_order_relaxed) != PHASE_CACHED,
          "try_incref on a cached wrapper %p", (void *)w);
    CHECK(atomic_load_explicit(&w->armed, memory_order_relaxed),
          "try_incref on a wrapper %p the kernel did not arm (lesson 3)", (void *)w);
    /* Relaxed: ordered by the word's lock (as minimal.rs). */
    size_t n = atomic_load_explicit(&w->refcnt, memory_order_relaxed);
    while (n != 0) {
        if (atomic_compare_exchange_weak_explicit(&w->refcnt, &n, n + 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            count(rt, C_TRY_OK);
            return true;
        }
    }
    count(rt, C_TRY_FAIL);
    return false;
}

static void cb_enable_try_incref(void *ctx, TetherWrapper *tw_) {
    Rt *rt = ctx;
    Wrap *w = wr(tw_);
    check_live(w, KIND_WRAPPER, "enable_try_incref");
    gil_assert_held(rt, "enable_try_incref");
    count(rt, C_ENABLE);
    atomic_store_explicit(&w->armed, true, memory_order_relaxed);
}

static void cb_untrack(void *ctx, TetherWrapper *tw_) {
    Rt *rt = ctx;
    Wrap *w = wr(tw_);
    check_live(w, KIND_WRAPPER, "untrack");
    CHECK(atomic_load_explicit(&w->refcnt, memory_order_relaxed) == 0,
          "untrack of wrapper %p whose count is not zero", (void *)w);
    count(rt, C_UNTRACK);
}

static void cb_backoff(void *ctx, uint32_t spins) {
    Rt *rt = ctx;
    count(rt, C_BACKOFF);
    gil_assert_held(rt, "backoff");
    int gil = gil_suspend(rt); /* the thread waited on may need the GIL */
    if (spins < 16) {
        sched_yield();
        gil_resume(rt, gil);
        return;
    }
    /* Patient: on a loaded machine (or under TSan) a dealloc may be descheduled for a while, and
     * a lookup that gives up waiting replaces the wrapper (TETHER_FOUND_REPLACED, losing S5). */
    long us = spins > 100 ? 1000 : (long)spins * 10;
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
    gil_resume(rt, gil);
}

static double now(void);

/* When this thread's current run of misses on a dying wrapper started. */
static _Thread_local double first_miss_at;

/* The takeover of a dying wrapper whose dealloc does not come: after the kernel's few misses
 * and also 50 ms, so a dealloc merely descheduled keeps its wrapper's address (S5); nothing here
 * parks a dealloc, so any takeover is such a loss (counted, and fatal with
 * TETHER_C_STRICT_S5=1). As the CPython adapter's free-threaded patience. */
static bool cb_replace_dying(void *ctx, uint32_t misses) {
    (void)ctx;
    if (misses == 1) first_miss_at = now();
    return misses >= 4 && now() - first_miss_at >= 0.05;
}

static bool cb_is_alive(void *ctx) {
    Rt *rt = ctx;
    return !atomic_load_explicit(&rt->shutdown, memory_order_seq_cst);
}

/* How many successful attaches this thread has not detached yet. */
static _Thread_local int thread_attached;

/* Dekker with shutdown(): count ourselves attached, then look at the flag. */
static bool cb_attach(void *ctx) {
    Rt *rt = ctx;
    atomic_fetch_add_explicit(&rt->attached, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&rt->shutdown, memory_order_seq_cst)) {
        atomic_fetch_sub_explicit(&rt->attached, 1, memory_order_seq_cst);
        count(rt, C_ATTACH_REFUSED);
        return false;
    }
    count(rt, C_ATTACH_OK);
    thread_attached++;
    return true;
}

static void cb_detach(void *ctx) {
    Rt *rt = ctx;
    CHECK(thread_attached > 0,
          "detach on a thread that is not attached: attach returned false, yet tether called "
          "detach (the runtime's attached count is now wrong: a shutdown may stop waiting for a "
          "reclaim that is still attached)");
    thread_attached--;
    long was = atomic_fetch_sub_explicit(&rt->attached, 1, memory_order_seq_cst);
    CHECK(was > 0, "detach without attach");
}

static void cb_free_cached(void *ctx, TetherWrapper *tw_) {
    Rt *rt = ctx;
    Wrap *w = wr(tw_);
    check_live(w, KIND_WRAPPER, "free_cached");
    CHECK(thread_attached > 0, "free_cached on a thread that is not attached");
    CHECK(!atomic_load_explicit(&rt->shutdown_done, memory_order_relaxed),
          "free_cached after shutdown completed (lesson 5)");
    CHECK(atomic_load_explicit(&w->phase, memory_order_relaxed) == PHASE_CACHED,
          "free_cached of a wrapper %p that is not cached", (void *)w);
    CHECK(atomic_load_explicit(&w->refcnt, memory_order_relaxed) == 0,
          "free_cached of a wrapper %p with references", (void *)w);
    TetherBinding *held;
    CHECK_OK(tether_slot_get(&w->slot, &held));
    CHECK(held == NULL, "a cached wrapper's slot holds a reference");
    count(rt, C_FREE_CACHED);
    wrap_free(w, "free_cached");
}

static void cb_retain(void *ctx, TetherBinding *b) {
    (void)ctx;
    obj_retain(obj_of(b));
}

static void cb_release(void *ctx, TetherBinding *b) {
    (void)ctx;
    obj_release(obj_of(b));
}

static void cb_free_object(void *ctx, TetherBinding *b) {
    Rt *rt = ctx;
    Obj *o = obj_of(b);
    check_live(o, KIND_OBJECT, "free_object");
    CHECK(atomic_load_explicit(&o->strong, memory_order_relaxed) == 0,
          "free_object of object %p with references", (void *)o);
    CHECK(atomic_load_explicit(&o->reclaimed, memory_order_relaxed) == 1,
          "free_object of object %p that was never reclaimed", (void *)o);
    CHECK(o->value == VALUE_DROPPED, "free_object of object %p whose value is not dropped",
          (void *)o);
    count(rt, C_FREE_OBJECT);
    shadow_free(o, KIND_OBJECT, "free_object");
}

static TetherWrapper *cb_make_fresh(void *ctx, TetherBinding *handle) {
    Rt *rt = ctx;
    Obj *o = obj_of(handle);
    check_live(o, KIND_OBJECT, "make_fresh");
    CHECK(atomic_load_explicit(&o->strong, memory_order_relaxed) >= 2,
          "make_fresh: the handle is not a reference of its own");
    if (atomic_load_explicit(&rt->fail_make_fresh, memory_order_relaxed)) {
        count(rt, C_FACTORY_FAILED);
        return NULL; /* keeping nothing: tether releases the handle */
    }
    gil_assert_held(rt, "make_fresh");
    int gil = gil_suspend(rt); /* an allocation may let the GIL go (a collection) */
    Wrap *w = shadow_alloc(KIND_WRAPPER, sizeof(Wrap));
    sched_yield();
    gil_resume(rt, gil);
    atomic_init(&w->refcnt, 1);
    atomic_init(&w->armed, false);
    atomic_init(&w->phase, PHASE_LIVE);
    w->obj = o;
    w->born = atomic_load_explicit(&rt->epoch, memory_order_relaxed);
    w->payload[0] = 1;
    CHECK_OK(tether_slot_init(&w->slot, handle));
    count(rt, C_FRESH);
    return tw(w);
}

static void cb_revive(void *ctx, TetherWrapper *tw_, TetherBinding *handle) {
    Rt *rt = ctx;
    Wrap *w = wr(tw_);
    check_live(w, KIND_WRAPPER, "revive");
    gil_assert_held(rt, "revive");
    CHECK(atomic_load_explicit(&w->phase, memory_order_relaxed) == PHASE_CACHED,
          "revive of a wrapper %p that is not cached", (void *)w);
    CHECK(atomic_load_explicit(&w->refcnt, memory_order_relaxed) == 0,
          "revive of a wrapper %p with references", (void *)w);
    CHECK(w->obj == obj_of(handle), "revive of another object's wrapper");
    CHECK(w->baton.state != TETHER_BATON_PENDING, "revive of a wrapper whose baton is pending");
    atomic_store_explicit(&w->refcnt, 1, memory_order_relaxed);
    atomic_store_explicit(&w->armed, false, memory_order_relaxed); /* the kernel re-arms */
    atomic_store_explicit(&w->phase, PHASE_LIVE, memory_order_relaxed);
    w->revivals++;
    w->payload[0] = 1;
    TetherBinding *previous;
    CHECK_OK(tether_slot_put(&w->slot, handle, &previous));
    CHECK(previous == NULL, "a cached wrapper's slot held a reference");
    count(rt, C_REVIVE);
}

static void cb_discard(void *ctx, TetherWrapper *tw_) {
    Rt *rt = ctx;
    Wrap *w = wr(tw_);
    check_live(w, KIND_WRAPPER, "discard");
    CHECK(atomic_load_explicit(&w->refcnt, memory_order_relaxed) == 1,
          "discard of a fresh wrapper %p that is shared", (void *)w);
    count(rt, C_DISCARD);
    wrap_release(rt, w);
}

static void rt_init(Rt *rt, bool cache, bool gil) {
    memset(rt, 0, sizeof *rt);
    rt->gil_mode = gil;
    CHECK(pthread_mutex_init(&rt->gil, NULL) == 0, "pthread_mutex_init");
    rt->table = (TetherRuntime){
        .abi_version = TETHER_ABI_VERSION,
        .serialized = gil,
        .ctx = rt,
        .try_incref = cb_try_incref,
        .enable_try_incref = cb_enable_try_incref,
        .untrack = cb_untrack,
        .backoff = cb_backoff,
        .replace_dying = cb_replace_dying,
        .is_alive = cb_is_alive,
        .attach = cb_attach,
        .detach = cb_detach,
        .free_cached = cb_free_cached,
        .retain = cb_retain,
        .release = cb_release,
        .free_object = cb_free_object,
    };
    rt->factory = (TetherFactory){
        .abi_version = TETHER_ABI_VERSION,
        .ctx = rt,
        .make_fresh = cb_make_fresh,
        .revive = cb_revive,
        .discard = cb_discard,
    };
    atomic_init(&rt->cache, cache);
    atomic_init(&rt->fail_make_fresh, false);
    atomic_init(&rt->shutdown, false);
    atomic_init(&rt->shutdown_done, false);
    atomic_init(&rt->attached, 0);
    atomic_init(&rt->epoch, 0);
    for (int i = 0; i < C_COUNTERS; i++) atomic_init(&rt->n[i], 0);
}

static void rt_fini(Rt *rt) { CHECK(pthread_mutex_destroy(&rt->gil) == 0, "GIL still held"); }

/* Shutdown: attach fails from now on; wait (not attached ourselves) for attached reclaimers. */
static void rt_shutdown(Rt *rt) {
    atomic_store_explicit(&rt->shutdown, true, memory_order_seq_cst);
    while (atomic_load_explicit(&rt->attached, memory_order_seq_cst) != 0) sched_yield();
    atomic_store_explicit(&rt->shutdown_done, true, memory_order_seq_cst);
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

static int scale_percent = 100;

static int rounds(int n) {
    long r = (long)n * scale_percent / 100;
    return r < 1 ? 1 : (int)r;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void spin(uint64_t n) {
    for (volatile uint64_t i = 0; i < n; i++) {
    }
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
    CHECK(pthread_create(t, NULL, fn, arg) == 0, "pthread_create");
}

static void join_thread(pthread_t t) { CHECK(pthread_join(t, NULL) == 0, "pthread_join"); }

/* ------------------------------------------------------------------------------------------ */
/* Scenario: first lookups racing (S4)                                                        */

#define FIRST_THREADS 4

typedef struct {
    Rt *rt;
    Obj *o;
    pthread_barrier_t *bar;
    Wrap *got;
    TetherFound found;
} FirstArg;

static void *first_lookup_thread(void *p) {
    FirstArg *a = p;
    pthread_barrier_wait(a->bar);
    a->got = lookup(a->rt, a->o, &a->found);
    pthread_barrier_wait(a->bar); /* every thread holds its wrapper now */
    wrap_release(a->rt, a->got);
    obj_release(a->o); /* each thread had a reference of its own */
    return NULL;
}

static void scenario_first_lookups(const char *name, bool gil) {
    static Rt rt;
    rt_init(&rt, true, gil);
    int n = rounds(1500);
    double t0 = now();
    for (int r = 0; r < n; r++) {
        atomic_store(&rt.cache, r % 3 != 0); /* some rounds do not cache */
        Obj *o = obj_new(&rt);
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, FIRST_THREADS);
        FirstArg args[FIRST_THREADS];
        pthread_t th[FIRST_THREADS];
        for (int i = 0; i < FIRST_THREADS; i++) {
            obj_retain(o);
            args[i] = (FirstArg){.rt = &rt, .o = o, .bar = &bar};
            start_thread(&th[i], first_lookup_thread, &args[i]);
        }
        /* The last reference goes on a worker in odd rounds. */
        if (r % 2) obj_release(o);
        for (int i = 0; i < FIRST_THREADS; i++) join_thread(th[i]);
        pthread_barrier_destroy(&bar);
        int fresh = 0;
        for (int i = 0; i < FIRST_THREADS; i++) {
            CHECK(args[i].got == args[0].got,
                  "first lookups: thread %d got %p, thread 0 got %p (S4)", i, (void *)args[i].got,
                  (void *)args[0].got);
            CHECK(args[i].found == TETHER_FOUND_FRESH || args[i].found == TETHER_FOUND_HIT,
                  "first lookups: found %d", (int)args[i].found);
            fresh += args[i].found == TETHER_FOUND_FRESH;
        }
        CHECK(fresh == 1, "first lookups: %d threads published a fresh wrapper (S4)", fresh);
        if (r % 2 == 0) obj_release(o);
        heap_drain(name, 0);
    }
    rt_fini(&rt);
    printf("%s: %d rounds x %d threads, one wrapper per object (S4); fresh=%ld "
           "hit=%ld discarded=%ld free_cached=%ld [%.2fs]\n",
           name, n, FIRST_THREADS, counted(&rt, C_FOUND_FRESH), counted(&rt, C_FOUND_HIT),
           counted(&rt, C_DISCARD), counted(&rt, C_FREE_CACHED), now() - t0);
    CHECK(counted(&rt, C_FOUND_FRESH) == n, "first lookups: fresh count");
}

/* ------------------------------------------------------------------------------------------ */
/* Scenario: drop/refetch storm (S5)                                                          */

#define STORM_THREADS 4

typedef struct {
    Rt *rt;
    Obj *o;
    Wrap *first;
    int iters;
    uint64_t seed;
    pthread_barrier_t *bar;
} StormArg;

static void *storm_thread(void *p) {
    StormArg *a = p;
    pthread_barrier_wait(a->bar);
    for (int k = 0; k < a->iters; k++) {
        TetherFound f;
        Wrap *w;
        TetherWrapper *hit = NULL;
        if (k % 4 == 0) {
            gil_enter(a->rt);
            CHECK_OK(tether_hit(&a->o->binding, &hit));
            if (hit) check_active(a->o, wr(hit));
            gil_exit(a->rt);
        }
        if (hit) {
            w = wr(hit);
            f = TETHER_FOUND_HIT;
        } else {
            w = lookup(a->rt, a->o, &f);
        }
        if (w != a->first) {
            /* S5's one exception: a lookup replaced the dying wrapper (TETHER_FOUND_REPLACED),
             * here or on another thread, with a spare made during this storm; from then on the
             * spare is the object's wrapper. Counted; asserted zero with TETHER_C_STRICT_S5=1. */
            CHECK(w->born == atomic_load(&a->rt->epoch),
                  "refetch returned %p, the object's wrapper is %p (S5, found %d)", (void *)w,
                  (void *)a->first, (int)f);
            a->first = w;
        }
        uint64_t x = rng_next(&a->seed);
        if ((x & 7) == 0) {
            /* a second reference for a while */
            Wrap *w2 = lookup(a->rt, a->o, NULL);
            CHECK(w2 == w, "a second lookup returned %p while %p is held (S4)", (void *)w2,
                  (void *)w);
            spin(x >> 56);
            wrap_release(a->rt, w2);
        }
        if ((x & 0x30) == 0) spin((x >> 48) & 0x3ff);
        wrap_release(a->rt, w);
    }
    obj_release(a->o);
    return NULL;
}

static void scenario_storm(const char *name, bool gil) {
    static Rt rt;
    rt_init(&rt, true, gil);
    int n = rounds(40), iters = rounds(5000);
    double t0 = now();
    for (int r = 0; r < n; r++) {
        Obj *o = obj_new(&rt);
        TetherFound f;
        Wrap *first = lookup(&rt, o, &f);
        CHECK(f == TETHER_FOUND_FRESH, "storm: the first lookup found %d", (int)f);
        wrap_release(&rt, first); /* cached now */
        atomic_store(&rt.epoch, (unsigned)r + 1); /* fresh wrappers from now on are spares */
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, STORM_THREADS);
        StormArg args[STORM_THREADS];
        pthread_t th[STORM_THREADS];
        for (int i = 0; i < STORM_THREADS; i++) {
            obj_retain(o);
            args[i] = (StormArg){.rt = &rt, .o = o, .first = first, .iters = iters,
                                 .seed = (uint64_t)(r * 7919 + i + 1), .bar = &bar};
            start_thread(&th[i], storm_thread, &args[i]);
        }
        if (r % 2) {
            /* The object lives on in the storm's references; the last drop is a worker's. */
            obj_release(o);
            for (int i = 0; i < STORM_THREADS; i++) join_thread(th[i]);
        } else {
            for (int i = 0; i < STORM_THREADS; i++) join_thread(th[i]);
            Wrap *again = lookup(&rt, o, &f);
            CHECK(f == TETHER_FOUND_REVIVED && (again == first || again->born == (unsigned)r + 1),
                  "storm: after the storm the lookup found %d at %p, expected REVIVED at %p (S5)",
                  (int)f, (void *)again, (void *)first);
            wrap_release(&rt, again);
            obj_release(o);
        }
        pthread_barrier_destroy(&bar);
        heap_drain(name, 0);
    }
    rt_fini(&rt);
    printf("%s: %d rounds x %d threads x %d refetches, same address unless REPLACED (S5); "
           "hit=%ld revived=%ld fresh=%ld replaced=%ld try_incref ok=%ld failed=%ld "
           "backoffs=%ld [%.2fs]\n",
           name, n, STORM_THREADS, iters, counted(&rt, C_FOUND_HIT), counted(&rt, C_FOUND_REVIVED),
           counted(&rt, C_FOUND_FRESH), counted(&rt, C_FOUND_REPLACED), counted(&rt, C_TRY_OK),
           counted(&rt, C_TRY_FAIL), counted(&rt, C_BACKOFF), now() - t0);
    const char *strict = getenv("TETHER_C_STRICT_S5");
    if (strict && strcmp(strict, "1") == 0)
        CHECK(counted(&rt, C_FOUND_REPLACED) == 0,
              "storm: %ld lookups replaced a dying wrapper (S5 lost though no dealloc is parked)",
              counted(&rt, C_FOUND_REPLACED));
    else if (counted(&rt, C_FOUND_REPLACED) > 0)
        printf("%s: NOTE %ld refetches got TETHER_FOUND_REPLACED though no dealloc is parked: "
               "a dealloc was descheduled past replace_dying's patience (50 ms) on a loaded "
               "machine (TETHER_C_STRICT_S5=1 fails on it)\n",
               name, counted(&rt, C_FOUND_REPLACED));
    CHECK(counted(&rt, C_FOUND_FRESH) == n, "storm: a fresh wrapper while the object lived (S5)");
    CHECK(counted(&rt, C_FOUND_REVIVED) > 0, "storm: never revived");
}

/* ------------------------------------------------------------------------------------------ */
/* Scenario: the last native reference dropped while the wrapper dies                          */

enum { MODE_RACE, MODE_FORCE_DEFERRED, MODE_FORCE_FREE, MODE_WRAPPER_HOLDS_LAST, MODES };

typedef struct {
    Rt *rt;
    pthread_barrier_t bar;
    int rounds;
    /* per round, set by the main thread before the first barrier */
    int mode;
    Obj *o;
    Wrap *w;
    uint64_t seed_a, seed_b; /* the wrapper thread's (and its teardown hook's), the object's */
    atomic_int in_transit; /* the dealloc reached its teardown (between dealloc and settle) */
    atomic_int obj_dropped;
    atomic_int wrapper_done;
} RaceState;

static void race_hook(Rt *rt, Wrap *w) {
    RaceState *s = rt->hook_arg;
    (void)w;
    if (s->mode == MODE_FORCE_DEFERRED) {
        /* GIL mode: the lock may be let go between a dealloc and its free (not inside a call) */
        int gil = gil_suspend(rt);
        atomic_store(&s->in_transit, 1);
        while (!atomic_load(&s->obj_dropped)) sched_yield();
        gil_resume(rt, gil);
    } else if (s->mode == MODE_RACE) {
        spin(rng_next(&s->seed_a) & 0x7ff);
    }
}

static void *race_wrapper_thread(void *p) {
    RaceState *s = p;
    for (int r = 0; r < s->rounds; r++) {
        pthread_barrier_wait(&s->bar);
        if (s->mode == MODE_RACE) spin(rng_next(&s->seed_a) & 0x7ff);
        if (s->mode == MODE_WRAPPER_HOLDS_LAST)
            while (!atomic_load(&s->obj_dropped)) sched_yield();
        wrap_release(s->rt, s->w);
        atomic_store(&s->wrapper_done, 1);
        pthread_barrier_wait(&s->bar);
    }
    return NULL;
}

static void *race_object_thread(void *p) {
    RaceState *s = p;
    for (int r = 0; r < s->rounds; r++) {
        pthread_barrier_wait(&s->bar);
        switch (s->mode) {
        case MODE_RACE: spin(rng_next(&s->seed_b) & 0x7ff); break;
        case MODE_FORCE_DEFERRED:
            while (!atomic_load(&s->in_transit)) sched_yield();
            break;
        case MODE_FORCE_FREE:
            while (!atomic_load(&s->wrapper_done)) sched_yield();
            break;
        default: break;
        }
        obj_release(s->o);
        atomic_store(&s->obj_dropped, 1);
        pthread_barrier_wait(&s->bar);
    }
    return NULL;
}

static void scenario_dealloc_vs_reclaim(const char *name, bool gil) {
    static Rt rt;
    static RaceState s;
    rt_init(&rt, true, gil);
    memset(&s, 0, sizeof s);
    s.rt = &rt;
    s.rounds = rounds(20000);
    s.seed_a = 12345;
    s.seed_b = 54321;
    rt.teardown_hook = race_hook;
    rt.hook_arg = &s;
    pthread_barrier_init(&s.bar, NULL, 3);
    pthread_t a, b;
    start_thread(&a, race_wrapper_thread, &s);
    start_thread(&b, race_object_thread, &s);
    long per_mode[MODES][2] = {{0}}; /* [mode][deferred?] */
    double t0 = now();
    for (int r = 0; r < s.rounds; r++) {
        s.mode = r % 8 == 1 ? MODE_FORCE_DEFERRED
                 : r % 8 == 3 ? MODE_FORCE_FREE
                 : r % 8 == 5 ? MODE_WRAPPER_HOLDS_LAST
                              : MODE_RACE;
        s.o = obj_new(&rt);
        s.w = lookup(&rt, s.o, NULL); /* the wrapper's slot holds the second reference */
        atomic_store(&s.in_transit, 0);
        atomic_store(&s.obj_dropped, 0);
        atomic_store(&s.wrapper_done, 0);
        long deferred0 = counted(&rt, C_RECLAIM_DEFERRED);
        pthread_barrier_wait(&s.bar);
        pthread_barrier_wait(&s.bar);
        int deferred = counted(&rt, C_RECLAIM_DEFERRED) != deferred0;
        per_mode[s.mode][deferred]++;
        if (s.mode == MODE_FORCE_DEFERRED || s.mode == MODE_WRAPPER_HOLDS_LAST)
            CHECK(deferred, "mode %d: reclaim during the dealloc did not defer", s.mode);
        if (s.mode == MODE_FORCE_FREE)
            CHECK(!deferred, "reclaim after the settle deferred");
        heap_drain(name, 0);
    }
    join_thread(a);
    join_thread(b);
    pthread_barrier_destroy(&s.bar);
    rt_fini(&rt);
    long deferred = counted(&rt, C_RECLAIM_DEFERRED), freed = counted(&rt, C_RECLAIM_FREE);
    printf("%s: %d rounds; reclaim DEFERRED=%ld (free_object=%ld, settle "
           "FREE_WRAPPER=%ld) FREE=%ld (free_cached=%ld); racing rounds: DEFERRED=%ld FREE=%ld "
           "[%.2fs]\n",
           name, s.rounds, deferred, counted(&rt, C_FREE_OBJECT), counted(&rt, C_SETTLED_FREE), freed,
           counted(&rt, C_FREE_CACHED), per_mode[MODE_RACE][1], per_mode[MODE_RACE][0],
           now() - t0);
    CHECK(deferred > 0 && freed > 0, "dealloc-vs-reclaim: both orders must occur");
    CHECK(counted(&rt, C_FREE_OBJECT) == deferred, "every deferred reclaim is freed by a settle");
    CHECK(counted(&rt, C_SETTLED_FREE) == deferred, "every deferred reclaim frees its wrapper");
    CHECK(counted(&rt, C_FREE_CACHED) == freed, "every FREE reclaim frees the cached wrapper");
}

/* ------------------------------------------------------------------------------------------ */
/* Scenario: shutdown with objects alive                                                      */

#define SHUT_OBJECTS 24
#define SHUT_THREADS 2

/* Object i: i % 6 in 0..3 has a cached wrapper, 4 a wrapper held across the shutdown, 5 none. */
static bool shut_held(int i) { return i % 6 == 4; }
static bool shut_bare(int i) { return i % 6 == 5; }

typedef struct {
    Obj **objs;
    int from, to;
    uint64_t seed;
    pthread_barrier_t *bar;
    long cached_at_reclaim; /* objects whose word was Inactive at their last release */
} ShutArg;

/* The last release of `o`; 1 when a cached wrapper was there to free (or leak). */
static long last_release(Obj *o) {
    CHECK(obj_strong(o) == 1, "shutdown: not the last reference");
    TetherState st;
    gil_enter(o->rt);
    CHECK_OK(tether_binding_state(&o->binding, &st));
    gil_exit(o->rt); /* the reclaim needs no GIL */
    CHECK(st == TETHER_STATE_INACTIVE || st == TETHER_STATE_DETACHED,
          "shutdown: word %d at the last release", (int)st);
    obj_release(o);
    return st == TETHER_STATE_INACTIVE;
}

static void *shut_thread(void *p) {
    ShutArg *a = p;
    pthread_barrier_wait(a->bar);
    for (int i = a->from; i < a->to; i++) {
        if (shut_held(i)) continue;
        spin(rng_next(&a->seed) & 0xfff);
        a->cached_at_reclaim += last_release(a->objs[i]);
    }
    return NULL;
}

static void scenario_shutdown(const char *name, bool gil) {
    static Rt rt;
    double t0 = now();
    /* Deterministic first: a runtime without is_alive (always alive) whose attach refuses once
     * the shutdown began. The reclaim must leak the cached wrapper without free_cached, and must
     * not detach what it could not attach. */
    rt_init(&rt, true, gil);
    rt.table.is_alive = NULL;
    Obj *lone = obj_new(&rt);
    wrap_release(&rt, lookup(&rt, lone, NULL)); /* cached */
    rt_shutdown(&rt);
    CHECK(last_release(lone) == 1, "shutdown: the wrapper was not cached");
    CHECK(counted(&rt, C_ATTACH_REFUSED) == 1, "shutdown: reclaim did not try to attach");
    CHECK(counted(&rt, C_FREE_CACHED) == 0, "shutdown: free_cached without attach");
    CHECK(atomic_load(&rt.attached) == 0, "shutdown: attached count %ld after a refused attach",
          (long)atomic_load(&rt.attached));
    heap_drain(name, 1);
    rt_fini(&rt);
    long leaked_total = 1, freed_total = 0, refused_total = 1;
    int n = rounds(300);
    for (int r = 0; r < n; r++) {
        rt_init(&rt, true, gil);
        /* Half the rounds without is_alive: then the racing reclaims meet a refusing attach. */
        if (r % 2) rt.table.is_alive = NULL;
        Obj *objs[SHUT_OBJECTS];
        Wrap *held[SHUT_OBJECTS] = {0};
        for (int i = 0; i < SHUT_OBJECTS; i++) {
            objs[i] = obj_new(&rt);
            if (shut_bare(i)) continue;
            Wrap *w = lookup(&rt, objs[i], NULL);
            if (shut_held(i))
                held[i] = w;
            else
                wrap_release(&rt, w); /* cached */
        }
        /* Workers drop the first two thirds while the shutdown begins: each cached wrapper is
         * freed (the reclaim attached first) or leaked (it came too late). */
        int racing = SHUT_OBJECTS * 2 / 3;
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, SHUT_THREADS + 1);
        ShutArg args[SHUT_THREADS];
        pthread_t th[SHUT_THREADS];
        for (int t = 0; t < SHUT_THREADS; t++) {
            args[t] = (ShutArg){.objs = objs, .from = t * racing / SHUT_THREADS,
                                .to = (t + 1) * racing / SHUT_THREADS,
                                .seed = (uint64_t)(r * 31 + t + 1), .bar = &bar};
            start_thread(&th[t], shut_thread, &args[t]);
        }
        pthread_barrier_wait(&bar);
        spin((uint64_t)(r % 8) * 20000);
        rt_shutdown(&rt);
        for (int t = 0; t < SHUT_THREADS; t++) join_thread(th[t]);
        pthread_barrier_destroy(&bar);
        long cached = 0;
        for (int t = 0; t < SHUT_THREADS; t++) cached += args[t].cached_at_reclaim;
        long free_cached_at_shutdown = counted(&rt, C_FREE_CACHED);
        CHECK(free_cached_at_shutdown <= cached, "shutdown: more frees than cached wrappers");
        /* After the shutdown: held wrappers die cached (their object lives on in our reference),
         * then every remaining object dies and its cached wrapper is leaked on purpose. */
        long after = 0;
        for (int i = 0; i < SHUT_OBJECTS; i++) {
            if (held[i]) wrap_release(&rt, held[i]);
            if (held[i] || i >= racing) after += last_release(objs[i]);
        }
        CHECK(counted(&rt, C_FREE_CACHED) == free_cached_at_shutdown,
              "shutdown: a cached wrapper was freed after the shutdown (lesson 5)");
        CHECK(atomic_load(&rt.attached) == 0, "shutdown: a reclaim stayed attached");
        CHECK(after > 0, "shutdown: no cached wrapper outlived the shutdown");
        long leaked = cached + after - free_cached_at_shutdown;
        leaked_total += leaked;
        freed_total += free_cached_at_shutdown;
        refused_total += counted(&rt, C_ATTACH_REFUSED);
        heap_drain(name, leaked);
        rt_fini(&rt);
    }
    printf("%s: %d rounds x %d objects; cached wrappers freed before the shutdown=%ld, "
           "leaked on purpose=%ld (then freed by the harness), attach refused=%ld [%.2fs]\n",
           name, n, SHUT_OBJECTS, freed_total, leaked_total, refused_total, now() - t0);
    CHECK(freed_total > 0 && leaked_total > 0, "shutdown: both fates of a cached wrapper occur");
}

/* ------------------------------------------------------------------------------------------ */
/* Scenario: rebind (bind, detach, move), sequential                                           */

static Wrap *wrap_construct(Rt *rt, Obj *o) {
    Wrap *w = shadow_alloc(KIND_WRAPPER, sizeof(Wrap));
    atomic_init(&w->refcnt, 1);
    atomic_init(&w->armed, false);
    atomic_init(&w->phase, PHASE_LIVE);
    w->obj = o;
    (void)rt;
    return w;
}

static void scenario_rebind(const char *name, bool gil) {
    static Rt rt;
    rt_init(&rt, true, gil);
    double t0 = now();
    gil_enter(&rt); /* one thread: holds the GIL throughout (GIL mode) */
    Obj *o = obj_new(&rt);
    TetherRebound rb;
    TetherFound f;
    TetherBinding *held;
    /* construct: the runtime builds the wrapper (its slot holding a reference), then binds it */
    Wrap *a = wrap_construct(&rt, o);
    obj_retain(o);
    CHECK_OK(tether_slot_init(&a->slot, &o->binding));
    CHECK_OK(tether_bind(&o->binding, tw(a), &rb));
    CHECK(rb == TETHER_REBOUND_DONE, "bind on a Detached word");
    CHECK(atomic_load(&a->armed), "bind arms try_incref");
    Wrap *got = lookup(&rt, o, &f);
    CHECK(got == a && f == TETHER_FOUND_HIT, "lookup after bind");
    wrap_release(&rt, got);
    /* a second constructed wrapper finds the word taken and dies not canonical */
    Wrap *c = wrap_construct(&rt, o);
    obj_retain(o);
    CHECK_OK(tether_slot_init(&c->slot, &o->binding));
    CHECK_OK(tether_bind(&o->binding, tw(c), &rb));
    CHECK(rb == TETHER_REBOUND_UNCHANGED, "bind on an Active word");
    wrap_release(&rt, c);
    CHECK(counted(&rt, C_OUT_NOT_CANONICAL) == 1, "the unbound wrapper dies not canonical");
    /* move a -> b: b becomes canonical and holds the reference, a is left empty */
    Wrap *b = wrap_construct(&rt, o);
    CHECK_OK(tether_slot_init(&b->slot, NULL));
    CHECK_OK(tether_move(&rt.table, tw(a), &a->slot, tw(b), &b->slot, &rb));
    CHECK(rb == TETHER_REBOUND_DONE, "move from the canonical wrapper");
    CHECK_OK(tether_slot_get(&a->slot, &held));
    CHECK(held == NULL, "move leaves the source empty");
    got = lookup(&rt, o, &f);
    CHECK(got == b && f == TETHER_FOUND_HIT, "lookup after move");
    wrap_release(&rt, got);
    wrap_release(&rt, a);
    CHECK(counted(&rt, C_OUT_NOT_CANONICAL) == 2, "the moved-from wrapper dies not canonical");
    /* detach b: the next lookup makes a fresh wrapper */
    CHECK_OK(tether_detach(&o->binding, tw(b), &rb));
    CHECK(rb == TETHER_REBOUND_DONE, "detach of the canonical wrapper");
    CHECK_OK(tether_detach(&o->binding, tw(b), &rb));
    CHECK(rb == TETHER_REBOUND_UNCHANGED, "detach twice");
    got = lookup(&rt, o, &f);
    CHECK(got != b && f == TETHER_FOUND_FRESH, "lookup after detach");
    wrap_release(&rt, got); /* cached */
    wrap_release(&rt, b);   /* not canonical: drops its reference */
    CHECK(counted(&rt, C_OUT_NOT_CANONICAL) == 3, "the detached wrapper dies not canonical");
    obj_release(o); /* the last reference: reclaim frees the cached wrapper */
    CHECK(counted(&rt, C_FREE_CACHED) == 1, "reclaim frees the cached wrapper");
    gil_exit(&rt);
    heap_drain(name, 0);
    rt_fini(&rt);
    printf("%s: bind, bind refused, move, detach, reclaim [%.2fs]\n", name, now() - t0);
}

/* ------------------------------------------------------------------------------------------ */
/* Scenario: misuse returns error codes                                                       */

static void scenario_misuse(const char *name, bool gil) {
    static Rt rt;
    rt_init(&rt, true, gil);
    double t0 = now();
    int checks = 0;
#define MISUSE(call, want)                                                                         \
    do {                                                                                           \
        EXPECT_STATUS(call, want);                                                                 \
        checks++;                                                                                  \
    } while (0)

    CHECK(tether_abi_version() == TETHER_ABI_VERSION, "tether_abi_version() = %u, header says %d",
          tether_abi_version(), TETHER_ABI_VERSION);
    CHECK(sizeof(TetherWord) == TETHER_WORD_SIZE, "sizeof(TetherWord)");
    CHECK(sizeof(TetherBinding) == 2 * sizeof(void *), "sizeof(TetherBinding)");
    checks += 3;

    /* tether_binding_init */
    TetherBinding scratch;
    MISUSE(tether_binding_init(NULL, &rt.table), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_binding_init(&scratch, NULL), TETHER_STATUS_NULL_ARGUMENT);
    for (int i = 0; i < 5; i++) {
        TetherRuntime incomplete = rt.table;
        switch (i) {
        case 0: incomplete.try_incref = NULL; break;
        case 1: incomplete.free_cached = NULL; break;
        case 2: incomplete.retain = NULL; break;
        case 3: incomplete.release = NULL; break;
        default: incomplete.free_object = NULL; break;
        }
        memset(&scratch, 0xab, sizeof scratch);
        MISUSE(tether_binding_init(&scratch, &incomplete), TETHER_STATUS_INCOMPLETE_RUNTIME);
        const unsigned char *bytes = (const unsigned char *)&scratch;
        for (size_t k = 0; k < sizeof scratch; k++)
            CHECK(bytes[k] == 0xab, "INCOMPLETE_RUNTIME changed the binding");
    }
    TetherRuntime stale = rt.table;
    stale.abi_version = 0;
    MISUSE(tether_binding_init(&scratch, &stale), TETHER_STATUS_ABI_MISMATCH);
    TetherRuntime minimal = {.abi_version = TETHER_ABI_VERSION,
                             .try_incref = cb_try_incref, .free_cached = cb_free_cached,
                             .retain = cb_retain, .release = cb_release,
                             .free_object = cb_free_object};
    MISUSE(tether_binding_init(&scratch, &minimal), TETHER_STATUS_OK); /* optional ones null */

    Obj *o = obj_new(&rt);
    TetherWrapper *w = NULL;
    TetherFound f;
    TetherState st;

    /* lookup, hit, state */
    MISUSE(tether_lookup(NULL, &rt.factory, &w, &f), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_lookup(&o->binding, NULL, &w, &f), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_lookup(&o->binding, &rt.factory, NULL, &f), TETHER_STATUS_NULL_ARGUMENT);
    for (int i = 0; i < 3; i++) {
        TetherFactory broken = rt.factory;
        if (i == 0) broken.make_fresh = NULL;
        if (i == 1) broken.revive = NULL;
        if (i == 2) broken.discard = NULL;
        MISUSE(tether_lookup(&o->binding, &broken, &w, &f), TETHER_STATUS_INCOMPLETE_FACTORY);
    }
    {
        TetherFactory stale_factory = rt.factory;
        stale_factory.abi_version = TETHER_ABI_VERSION + 1;
        MISUSE(tether_lookup(&o->binding, &stale_factory, &w, &f), TETHER_STATUS_ABI_MISMATCH);
    }
    MISUSE(tether_hit(NULL, &w), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_hit(&o->binding, NULL), TETHER_STATUS_NULL_ARGUMENT);
    w = tw((Wrap *)(uintptr_t)0x1000);
    MISUSE(tether_hit(&o->binding, &w), TETHER_STATUS_OK);
    CHECK(w == NULL, "tether_hit on a Detached word returned %p", (void *)w);
    MISUSE(tether_binding_state(NULL, &st), TETHER_STATUS_NULL_ARGUMENT);
    CHECK(obj_strong(o) == 1, "a refused lookup changed the count");
    CHECK_OK(tether_binding_state(&o->binding, &st));
    CHECK(st == TETHER_STATE_DETACHED, "a refused lookup changed the word");

    /* a factory whose make_fresh fails: FACTORY_FAILED, the handle released, nothing changed */
    atomic_store(&rt.fail_make_fresh, true);
    TetherWrapper *sentinel = tw((Wrap *)(uintptr_t)0x2000);
    w = sentinel;
    MISUSE(tether_lookup(&o->binding, &rt.factory, &w, &f), TETHER_STATUS_FACTORY_FAILED);
    CHECK(w == sentinel, "FACTORY_FAILED wrote the out-parameter");
    CHECK(counted(&rt, C_FACTORY_FAILED) == 1, "make_fresh was called once");
    CHECK(obj_strong(o) == 1, "FACTORY_FAILED leaked the handle (count %zu)", obj_strong(o));
    CHECK_OK(tether_binding_state(&o->binding, &st));
    CHECK(st == TETHER_STATE_DETACHED, "FACTORY_FAILED changed the word");
    atomic_store(&rt.fail_make_fresh, false);

    /* a real wrapper, with out_found null */
    MISUSE(tether_lookup(&o->binding, &rt.factory, &w, NULL), TETHER_STATUS_OK);
    Wrap *live = wr(w);
    check_active(o, live);
    TetherWrapper *crooked = (TetherWrapper *)((char *)live + 4);
    TetherBaton baton;
    memset(&baton, 0, sizeof baton);
    TetherDeallocOutcome out;
    TetherRebound rb;

    /* dealloc: nulls and a misaligned wrapper, refused before anything happens */
    MISUSE(tether_dealloc(NULL, w, &live->slot, true, &baton, &out), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_dealloc(&rt.table, NULL, &live->slot, true, &baton, &out),
           TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_dealloc(&rt.table, w, NULL, true, &baton, &out), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_dealloc(&rt.table, w, &live->slot, true, NULL, &out),
           TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_dealloc(&rt.table, w, &live->slot, true, &baton, NULL),
           TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_dealloc(&rt.table, crooked, &live->slot, true, &baton, &out),
           TETHER_STATUS_MISALIGNED);
    MISUSE(tether_bind(&o->binding, crooked, &rb), TETHER_STATUS_MISALIGNED);
    MISUSE(tether_bind(NULL, w, &rb), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_bind(&o->binding, NULL, &rb), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_detach(&o->binding, crooked, &rb), TETHER_STATUS_MISALIGNED);
    MISUSE(tether_detach(NULL, w, &rb), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_move(&rt.table, w, &live->slot, crooked, &live->slot, &rb),
           TETHER_STATUS_MISALIGNED);
    MISUSE(tether_move(&rt.table, crooked, &live->slot, w, &live->slot, &rb),
           TETHER_STATUS_MISALIGNED);
    MISUSE(tether_move(NULL, w, &live->slot, w, &live->slot, &rb), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_move(&rt.table, w, NULL, w, &live->slot, &rb), TETHER_STATUS_NULL_ARGUMENT);
    check_active(o, live); /* untouched: still canonical, still holding the object */
    CHECK(atomic_load(&live->refcnt) == 1, "a refused call changed the wrapper's count");
    CHECK(counted(&rt, C_UNTRACK) == 0, "a refused dealloc untracked the wrapper");

    /* slots */
    TetherSlot slot;
    TetherBinding *prev;
    MISUSE(tether_slot_init(NULL, NULL), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_slot_init(&slot, NULL), TETHER_STATUS_OK);
    MISUSE(tether_slot_get(NULL, &prev), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_slot_get(&slot, NULL), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_slot_get(&slot, &prev), TETHER_STATUS_OK);
    CHECK(prev == NULL, "an empty slot holds %p", (void *)prev);
    obj_retain(o);
    MISUSE(tether_slot_put(&slot, &o->binding, NULL), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_slot_put(NULL, &o->binding, &prev), TETHER_STATUS_NULL_ARGUMENT);
    CHECK(obj_strong(o) == 3, "a refused slot_put took the reference");
    MISUSE(tether_slot_put(&slot, &o->binding, &prev), TETHER_STATUS_OK);
    CHECK(prev == NULL, "slot_put into an empty slot handed back %p", (void *)prev);
    MISUSE(tether_slot_put(&slot, NULL, &prev), TETHER_STATUS_OK);
    CHECK(prev == &o->binding, "slot_put(NULL) handed back %p", (void *)prev);
    obj_release(obj_of(prev));

    /* batons */
    TetherSettled settled = (TetherSettled)77;
    memset(&baton, 0, sizeof baton);
    MISUSE(tether_settle(NULL, &settled), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_settle(&baton, NULL), TETHER_STATUS_NULL_ARGUMENT);
    MISUSE(tether_settle(&baton, &settled), TETHER_STATUS_INVALID_BATON); /* never filled */
    baton.state = 0x12345678;
    MISUSE(tether_settle(&baton, &settled), TETHER_STATUS_INVALID_BATON); /* garbage */
    baton.state = TETHER_BATON_PENDING;
    MISUSE(tether_settle(&baton, &settled), TETHER_STATUS_INVALID_BATON); /* pending, no pointers */
    CHECK((int)settled == 77, "a refused settle wrote the out-parameter");

    /* settle twice, baton on the stack: the wrapper dies by hand */
    CHECK(atomic_fetch_sub(&live->refcnt, 1) == 1, "the wrapper is shared");
    atomic_store(&live->phase, PHASE_DYING);
    MISUSE(tether_dealloc(&rt.table, w, &live->slot, true, &baton, &out), TETHER_STATUS_OK);
    CHECK(out == TETHER_DEALLOC_OUTCOME_CACHED, "dealloc outcome %d", (int)out);
    CHECK(baton.state == TETHER_BATON_PENDING, "dealloc did not fill the baton");
    atomic_store(&live->phase, PHASE_CACHED);
    MISUSE(tether_settle(&baton, &settled), TETHER_STATUS_OK);
    CHECK(settled == TETHER_SETTLED_CACHED, "the object lives: settle caches");
    settled = (TetherSettled)77;
    MISUSE(tether_settle(&baton, &settled), TETHER_STATUS_ALREADY_SETTLED);
    CHECK((int)settled == 77, "ALREADY_SETTLED wrote the out-parameter");
    CHECK_OK(tether_binding_state(&o->binding, &st));
    CHECK(st == TETHER_STATE_INACTIVE, "the second settle changed the word (%d)", (int)st);

    /* settle twice, baton in the wrapper after FREE_WRAPPER (the memory is ours again) */
    TetherFound found;
    live = lookup(&rt, o, &found);
    CHECK(found == TETHER_FOUND_REVIVED && tw(live) == w, "revival at the same address (S5)");
    obj_release(o); /* the wrapper's slot holds the last reference now */
    CHECK(atomic_fetch_sub(&live->refcnt, 1) == 1, "the wrapper is shared");
    atomic_store(&live->phase, PHASE_DYING);
    MISUSE(tether_dealloc(&rt.table, w, &live->slot, true, &live->baton, &out), TETHER_STATUS_OK);
    CHECK(out == TETHER_DEALLOC_OUTCOME_CACHED, "dealloc outcome %d", (int)out);
    CHECK(counted(&rt, C_RECLAIM_DEFERRED) == 1, "the slot's drop reclaimed, deferred");
    MISUSE(tether_settle(&live->baton, &settled), TETHER_STATUS_OK);
    CHECK(settled == TETHER_SETTLED_FREE_WRAPPER, "the object is gone: settle frees");
    CHECK(counted(&rt, C_FREE_OBJECT) == 1, "the settle freed the object");
    MISUSE(tether_settle(&live->baton, &settled), TETHER_STATUS_ALREADY_SETTLED);
    CHECK(counted(&rt, C_FREE_OBJECT) == 1, "the second settle freed the object again");
    wrap_free(live, "misuse FREE_WRAPPER");

    /* reclaim's arguments */
    TetherReclaimed reclaimed;
    MISUSE(tether_reclaim(NULL, &reclaimed), TETHER_STATUS_NULL_ARGUMENT);
    Obj *o2 = obj_new(&rt);
    MISUSE(tether_reclaim(&o2->binding, NULL), TETHER_STATUS_NULL_ARGUMENT);
    obj_release(o2);

    heap_drain(name, 0);
    rt_fini(&rt);
    printf("%s: %d checks, every misuse an error code, nothing changed or leaked [%.2fs]\n",
           name, checks, now() - t0);
#undef MISUSE
}

/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    void (*run)(const char *name, bool gil);
    bool gil;
} Scenario;

/* Each concurrent scenario runs free-threaded and in GIL mode (TetherRuntime.serialized, a
 * pthread mutex as the runtime-wide lock). */
static const Scenario scenarios[] = {
    {"misuse", scenario_misuse, false},
    {"rebind", scenario_rebind, false},
    {"rebind/gil", scenario_rebind, true},
    {"first-lookups", scenario_first_lookups, false},
    {"first-lookups/gil", scenario_first_lookups, true},
    {"storm", scenario_storm, false},
    {"storm/gil", scenario_storm, true},
    {"dealloc-vs-reclaim", scenario_dealloc_vs_reclaim, false},
    {"dealloc-vs-reclaim/gil", scenario_dealloc_vs_reclaim, true},
    {"shutdown", scenario_shutdown, false},
    {"shutdown/gil", scenario_shutdown, true},
};
#define N_SCENARIOS (sizeof scenarios / sizeof scenarios[0])

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *scale = getenv("TETHER_C_SCALE");
    if (scale && *scale) scale_percent = atoi(scale);
    CHECK(scale_percent > 0, "TETHER_C_SCALE must be a positive percentage");
    CHECK(tether_abi_version() == TETHER_ABI_VERSION, "ABI version mismatch: library %u, header %d",
          tether_abi_version(), TETHER_ABI_VERSION);
#if defined(TETHER_TEST_BROKEN_FREE_ON_DEFERRED)
    printf("BROKEN VARIANT: the object system frees the block on TETHER_RECLAIMED_DEFERRED\n");
#endif
#if defined(TETHER_TEST_BROKEN_FREE_AFTER_CACHED)
    printf("BROKEN VARIANT: the wrapper's free frees it on TETHER_SETTLED_CACHED\n");
#endif
    for (int i = 1; i < argc; i++) {
        bool known = false;
        for (size_t k = 0; k < N_SCENARIOS; k++) known |= strcmp(argv[i], scenarios[k].name) == 0;
        CHECK(known, "unknown scenario '%s'", argv[i]);
    }
    double t0 = now();
    for (size_t k = 0; k < N_SCENARIOS; k++) {
        bool selected = argc == 1;
        for (int i = 1; i < argc; i++) selected |= strcmp(argv[i], scenarios[k].name) == 0;
        if (selected) scenarios[k].run(scenarios[k].name, scenarios[k].gil);
    }
    for (int k = 0; k < KINDS; k++)
        CHECK(heap_allocs[k] == heap_frees[k], "%s blocks: %ld allocated, %ld freed (S2/S6)",
              kind_name[k], (long)heap_allocs[k], (long)heap_frees[k]);
    printf("heap: %ld objects and %ld wrappers allocated, each freed exactly once (S1, S2, S6); "
           "%ld wrappers leaked on purpose by shutdowns and reclaimed by the harness [%.2fs]\n",
           (long)heap_allocs[KIND_OBJECT], (long)heap_allocs[KIND_WRAPPER],
           (long)heap_leaked_on_purpose, now() - t0);
    printf("frontend: OK\n");
    return 0;
}
