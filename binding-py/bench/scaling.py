"""Free-threaded scaling of tether's field read, next to a plain ``__slots__`` read (issue 9).

    python bench/scaling.py                 # 1 and 2 threads
    python bench/scaling.py --threads 4     # 1 and 4 threads
    python bench/scaling.py --smoke         # tiny counts, correctness checks only (CI)
    python bench/scaling.py --loops 20000 --repeats 5   # shorter runs

For 1 thread and for N threads, every thread runs the same fixed number of loop iterations of 20
reads each, all threads released together by a barrier; a run's time is from the first thread's
start to the last thread's end, and its throughput is total reads / that time. The best of
several runs is kept (the ratio of the medians is printed too). The scaling factor of a row is
reads/s with N threads / reads/s with 1 thread: N would be perfect, 1 means no gain.

Rows:

* shared: every thread reads ``o.x`` of one object ``o`` made by the main thread;
* own: every thread reads ``o.x`` of its own object, made on that thread;
* hit: a wrapper of ``o.x`` is kept alive, so every read returns it;
* drop + refetch: nothing keeps one, so each read's result dies at once and the next read revives
  the cached wrapper in place (shared: unless another thread's read still holds it);
* plain __slots__: ``p.x`` of a ``__slots__ = ("x",)`` instance holding an object, the same two
  shapes: the ceiling (a slot read never drops anything, so it has no drop + refetch row).

The rows run one after the other; within a row, 1-thread and N-thread runs alternate, so load
from elsewhere on the machine hits both alike. The ``cpu`` columns show the threads' CPU time
over N x wall time: well under 100% means threads waited (a lock, the GIL, or other load).

Targets (issue 9, printed as information, never asserted): the shared-object hit scales at least
as well as the shared plain slot read; an own-object read scales at least 1.8x with 2 threads.
They are for free-threaded CPython: with a GIL, threads take turns and the scaling is about 1x or
less.

Every run also checks facts that do not depend on timing (asserted, with --smoke too): while a
wrapper is kept, every read in every thread returned it (``is``) and the timed loops revived or
made no wrapper (``tether.testing.stats()``); an own object's drop + refetch revived its one
cached wrapper at every read, at the same address; a shared drop + refetch always returned a
wrapper of the same native object (``tether.handle``).
"""

import argparse
import os
import statistics
import sys
import sysconfig
import threading
import time

import tether
import tether.testing as T

REPEAT = 20  # reads per loop iteration


class Inner(tether.Object):
    value: int


class Outer(tether.Object):
    x: Inner


class Plain:
    __slots__ = ("x",)


def make_plain():
    p = Plain()
    p.x = object()
    return p


def make_loop():
    """A fresh function ``run(o, loops)`` doing ``loops`` iterations of 20 reads of ``o.x``."""
    body = "; ".join(["o.x"] * REPEAT)
    ns = {}
    exec(f"def run(o, loops):\n    for _ in range(loops):\n        {body}\n", ns)
    return ns["run"]


# name, kind ("tether" or "plain"), shape ("shared" or "own"), keep a wrapper (hit)?
CASES = [
    ("shared  plain __slots__", "plain", "shared", True),
    ("shared  tether hit", "tether", "shared", True),
    ("shared  tether drop + refetch", "tether", "shared", False),
    ("own     plain __slots__", "plain", "own", True),
    ("own     tether hit", "tether", "own", True),
    ("own     tether drop + refetch", "tether", "own", False),
]

CHECK_READS = 200  # reads per thread in the (untimed) identity checks


def make_object(kind, seed):
    if kind == "plain":
        return make_plain()
    return Outer(Inner(seed))


def measure(case, nthreads, loops):
    """Runs one case once with `nthreads` threads (fresh objects, checks included).

    Returns (reads/s, CPU share, revivals, reads, replaced, fresh wrappers, discarded, least
    thread's share). The CPU share is the threads' CPU time over nthreads x the run's wall time:
    well under 1 means threads waited (blocked on a lock, on the GIL, or descheduled by other
    load on the machine); the least thread's share is the smallest of each thread's CPU time over
    the wall time.
    """
    name, kind, shape, keep = case
    run = make_loop()
    shared = make_object(kind, 1) if shape == "shared" else None
    shared_keep = shared.x if (shared is not None and kind == "tether" and keep) else None
    shared_handle = tether.handle(shared.x) if (shared is not None and kind == "tether") else None
    barrier = threading.Barrier(nthreads)
    start, end, cpu = [0.0] * nthreads, [0.0] * nthreads, [0.0] * nthreads
    seen = [None] * nthreads  # per thread: what the checks saw
    errors = []
    stats = {}

    def worker(i):
        try:
            if shape == "shared":
                o, kept = shared, shared_keep
            else:
                o = make_object(kind, 100 + i)  # made (and so owned) by this thread
                kept = o.x if (kind == "tether" and keep) else None
            handle = tether.handle(o.x) if kind == "tether" else None
            clock, cpu_clock = time.perf_counter, time.thread_time
            if barrier.wait() == 0:
                stats["before"] = T.stats()
            barrier.wait()
            t0 = clock()
            c0 = cpu_clock()
            run(o, loops)
            c1 = cpu_clock()
            t1 = clock()
            start[i], end[i], cpu[i] = t0, t1, c1 - c0
            # Identity checks, all threads at once again, outside the timed loop.
            barrier.wait()
            if kind == "plain":
                got = [o.x for _ in range(CHECK_READS)]
                seen[i] = (o.x, all(g is got[0] for g in got))
            elif keep:
                got = [o.x for _ in range(CHECK_READS)]
                seen[i] = (kept, all(g is kept for g in got))
            else:
                # Nothing is kept: each result dies before the next read (id() and handle()
                # only look at it while the call runs).
                ids = {id(o.x) for _ in range(CHECK_READS)}
                handles = {tether.handle(o.x) for _ in range(CHECK_READS)}
                seen[i] = (ids, handles == {handle})
            if barrier.wait() == 0:
                stats["after"] = T.stats()
        except BaseException as e:  # reported by the main thread
            errors.append((i, e))
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        i, e = errors[0]
        raise RuntimeError(f"{name}, {nthreads} thread(s): thread {i} failed") from e

    # Facts that do not depend on timing.
    reads = nthreads * (loops * REPEAT + (1 if keep else 2) * CHECK_READS)
    delta = {k: stats["after"][k] - stats["before"][k] for k in stats["before"]}
    where = f"{name}, {nthreads} thread(s)"
    if kind == "plain":
        for i, (_, same) in enumerate(seen):
            assert same, f"{where}: thread {i}: p.x changed"
    elif keep:
        for i, (_, same) in enumerate(seen):
            assert same, f"{where}: thread {i}: a read did not return the kept wrapper"
        kepts = [k for k, _ in seen]
        if shape == "shared":
            assert all(k is shared_keep for k in kepts), f"{where}: threads saw different wrappers"
        else:
            assert len({id(k) for k in kepts}) == nthreads, f"{where}: own objects shared a wrapper"
        # Every read, timed or checked, in every thread, was a hit.
        assert delta["revivals"] == 0, f"{where}: {delta['revivals']} revivals while kept"
        assert delta["fresh_wrappers"] == 0, f"{where}: {delta['fresh_wrappers']} fresh wrappers"
    else:
        for i, (_, same_native) in enumerate(seen):
            assert same_native, f"{where}: thread {i}: a read returned another native object"
        if shape == "own" or nthreads == 1:
            # One reader per object: every read revived the one cached wrapper, in place.
            for i, (ids, _) in enumerate(seen):
                assert len(ids) == 1, f"{where}: thread {i}: {len(ids)} addresses for one object"
            assert delta["revivals"] == reads, (
                f"{where}: {delta['revivals']} revivals for {reads} reads"
            )
            assert delta["fresh_wrappers"] == 0, f"{where}: {delta['fresh_wrappers']} fresh"
    if shape == "shared" and kind == "tether":
        assert tether.handle(shared.x) == shared_handle
        if keep:
            assert shared.x is shared_keep

    wall = max(end) - min(start)
    share = sum(cpu) / (nthreads * wall)
    return (nthreads * loops * REPEAT / wall, share, delta["revivals"], reads, delta["replaced"],
            delta["fresh_wrappers"], delta["discarded"], min(cpu) / wall)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="N (default 2)")
    ap.add_argument("--loops", type=int, default=None,
                    help="iterations of 20 reads per thread per run (default 50000)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="runs per row and thread count (default 9)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny counts: the checks only, numbers meaningless (for CI)")
    args = ap.parse_args()
    if args.threads < 2:
        ap.error("--threads must be at least 2")
    loops = args.loops or (200 if args.smoke else 50_000)
    repeats = args.repeats or (2 if args.smoke else 9)
    n = args.threads

    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    build = "free-threaded build" if sysconfig.get_config_var("Py_GIL_DISABLED") else "GIL build"
    print(f"tether read scaling on CPython {sys.version.split()[0]} ({build}), "
          f"GIL {'enabled' if gil else 'disabled'}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"1 and {n} threads, {loops} loops x {REPEAT} reads per thread, {repeats} runs each "
          f"(1 and {n} threads alternating){'; smoke: numbers meaningless' if args.smoke else ''}")
    if gil:
        print("note: the GIL is enabled, so threads take turns: scaling is expected to be about "
              "1x or less (the targets are for free-threaded builds)")
    t_start = time.perf_counter()

    results = {}
    for case in CASES:
        runs = {1: [], n: []}
        for r in range(repeats):
            for k in ((1, n) if r % 2 == 0 else (n, 1)):
                runs[k].append(measure(case, k, loops))
        results[case[0]] = runs

    def best(rs):
        return max(rs, key=lambda x: x[0])

    def concurrent(rs):
        """The runs in which every thread was on a CPU for at least 95% of the wall time.

        On a loaded machine the N threads of a run often share fewer than N cores, taking turns:
        such a run measures the machine's load, not contention (a plain slot read seems to scale
        1.4x then, and 0.95x when both threads really run at once). Without the GIL a thread
        that waits on a lock spins or sleeps briefly, so a contended run mostly stays above the
        mark; the filter is what the targets are judged on. All runs when none qualifies."""
        kept = [x for x in rs if x[7] >= 0.95]
        return kept or rs

    print()
    print(f"{'row':31s} {'1 thread':>9s} {f'{n} threads':>10s} {'scaling':>8s} {'median':>7s} "
          f"{'cpu 1':>6s} {f'cpu {n}':>6s}")
    print(f"{'':31s} {'Mreads/s':>9s} {'Mreads/s':>10s} {'(best)':>8s}")
    scaling = {}
    kept_counts = []
    for name, _, _, _ in CASES:
        one, many = concurrent(results[name][1]), concurrent(results[name][n])
        kept_counts.append(len([x for x in results[name][n] if x[7] >= 0.95]))
        (b1, c1, *_), (bn, cn, *_) = best(one), best(many)
        med = statistics.median(x[0] for x in many) / statistics.median(x[0] for x in one)
        scaling[name] = bn / b1
        print(f"{name:31s} {b1 / 1e6:9.2f} {bn / 1e6:10.2f} {bn / b1:7.2f}x {med:6.2f}x "
              f"{c1:6.0%} {cn:6.0%}")
    print(f"(best: of the runs; median: median {n}-thread / median 1-thread throughput; cpu: the "
          f"threads' CPU time / ({n} x wall) in the best run)")
    print(f"(only runs in which every thread ran >= 95% of the wall time count: "
          f"{min(kept_counts)}-{max(kept_counts)} of {repeats} {n}-thread runs per row; a row "
          f"with none uses all its runs, and then measures the machine's load)")

    print()
    many = results["shared  tether drop + refetch"][n]
    revived, reads, replaced, fresh, discarded = (sum(x[k] for x in many) for k in range(2, 7))
    print(f"shared drop + refetch, {n} threads: {revived / reads:.1%} of the reads revived the "
          f"cached wrapper (the others found another thread's result still alive); "
          f"{replaced} replaced (a dying wrapper taken over), {fresh} fresh wrappers, "
          f"{discarded} discarded")
    plain = scaling["shared  plain __slots__"]
    hit = scaling["shared  tether hit"]
    print(f"shared object, {n} threads: tether hit {hit:.2f}x, drop + refetch "
          f"{scaling['shared  tether drop + refetch']:.2f}x, plain __slots__ {plain:.2f}x")
    print(f"  target (information only): tether hit scaling >= plain slot scaling: "
          f"{hit:.3f} vs {plain:.3f}: {'met' if hit >= plain else 'not met'}")
    print(f"own objects, {n} threads: tether hit {scaling['own     tether hit']:.2f}x, "
          f"drop + refetch {scaling['own     tether drop + refetch']:.2f}x, "
          f"plain __slots__ {scaling['own     plain __slots__']:.2f}x")
    if n == 2:
        for row in ("own     tether hit", "own     tether drop + refetch"):
            v = scaling[row]
            print(f"  target (information only): {row.split(None, 1)[1]} scaling >= 1.8x with 2 "
                  f"threads: {v:.3f}: {'met' if v >= 1.8 else 'not met'}")
    else:
        print("  target (information only): own-object scaling >= 1.8x is stated for 2 threads")
    if gil:
        print("  (the GIL is enabled: the targets are not expected to be met here)")
    print(f"\nall checks passed ({time.perf_counter() - t_start:.1f} s)")


if __name__ == "__main__":
    main()
