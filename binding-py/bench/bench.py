"""pyperf benchmarks of tether's hot paths, each next to a plain ``__slots__`` read.

    python bench/bench.py [pyperf options, e.g. --fast]

Each statement is repeated 20 times per loop iteration, so the loop's own cost weighs little;
the plain read is measured in the same run, and the summary prints every result as a ratio to
it. Targets (issue 4): a hit at most 2x the plain read, a drop + refetch at most 3x.
"""

import sys
import time

import pyperf

SETUP = """
import tether, tether.testing as T

class Inner(tether.Object):
    value: int

class Outer(tether.Object):
    x: Inner

class Plain:
    __slots__ = ("x",)

p = Plain()
p.x = object()
o = Outer(Inner(1))
keep = o.x            # held: every o.x is a hit
d = Outer(Inner(2))   # not held: every d.x revives the cached wrapper, which dies right after
key = T.hold(d.x)
f = Outer(Inner(3))   # with caching off: every f.x builds a fresh wrapper, which is freed
x = Inner(4)
identity = T.identity
"""

REPEAT = 20

# name, statement, caching
BENCHES = [
    ("plain __slots__ read", "p.x", True),
    ("o.x hit", "o.x", True),
    ("o.x drop + refetch (revive)", "d.x", True),
    ("o.x fresh wrapper", "f.x", False),
    ("identity(x)", "identity(x)", True),
]

TARGETS = {"o.x hit": 2.0, "o.x drop + refetch (revive)": 3.0}


def time_func(stmt, caching):
    ns = {}
    exec(SETUP, ns)
    body = "; ".join([stmt] * REPEAT)
    src = (
        "def timed(loops, clock=clock, set_caching=T.set_caching, caching=caching):\n"
        "    previous = set_caching(caching)\n"
        "    t0 = clock()\n"
        "    for _ in range(loops):\n"
        f"        {body}\n"
        "    t1 = clock()\n"
        "    set_caching(previous)\n"
        "    return t1 - t0\n"
    )
    ns["clock"] = time.perf_counter
    ns["caching"] = caching
    exec(src, ns)
    return ns["timed"]


def main():
    runner = pyperf.Runner()
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    runner.metadata["tether_gil"] = str(gil)
    results = {}
    for name, stmt, caching in BENCHES:
        bench = runner.bench_time_func(name, time_func(stmt, caching), inner_loops=REPEAT)
        if bench is not None and not runner.args.worker:
            results[name] = bench.mean()
    if len(results) != len(BENCHES):
        return  # a worker process, or an interrupted run
    base = results["plain __slots__ read"]
    print()
    print(
        f"tether on CPython {sys.version.split()[0]} ({'GIL' if gil else 'free-threaded'}): "
        "each result as a ratio to a plain __slots__ read"
    )
    missed = False
    for name, _, _ in BENCHES:
        ratio = results[name] / base
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            ok = ratio <= target
            missed |= not ok
            verdict = f"   target <= {target:g}x: {'ok' if ok else 'MISSED'}"
        print(f"  {name:30s} {results[name] * 1e9:7.1f} ns  {ratio:5.2f}x{verdict}")


if __name__ == "__main__":
    main()
