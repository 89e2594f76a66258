"""pyperf: reading a child node, exprtree (tether) next to the usual ways of exposing one.

    python bench/bench.py [pyperf options, e.g. --fast]

Each statement is repeated 20 times per loop iteration; the summary prints every result as a
ratio to a bare C getset returning a stored object (``f.__name__`` of a Python function),
measured in the same run.
"""

import sys
import time

import pyperf

SETUP = """
import exprtree
from exprtree._native import contrast

class Plain:
    __slots__ = ("x",)

p = Plain()
p.x = object()
def f(): pass
t = exprtree.parse("x * (y + 2)")
keep = t.right            # held: every t.right is a hit (a property: closure over &Tied<Expr>)
d = exprtree.parse("x * (y + 2)")   # not held: every d.right revives the dead wrapper in place
h = contrast.holder()     # a #[pyclass] getter returning a stored Py<T>
n = contrast.tree(1)      # a #[pyclass] getter building a fresh wrapper per read
from exprtree._native import _testing
m = _testing.Holder()     # a Member property (ClassDef::member_of): tether's field fast path
m.node = exprtree.Num(1)
keep_m = m.node           # held: every m.node is a hit
dm = _testing.Holder()
dm.node = exprtree.Num(2) # not held: every dm.node revives in place
"""

REPEAT = 20

BENCHES = [
    ("plain __slots__ read", "p.x"),
    ("bare C getset (f.__name__)", "f.__name__"),
    ("PyO3 getter, stored Py<T>", "h.child"),
    ("PyO3 getter, fresh wrapper", "n.first"),
    ("exprtree t.right hit", "t.right"),
    ("exprtree t.right drop + refetch", "d.right"),
    ("member (m.node) hit", "m.node"),
    ("member (m.node) drop + refetch", "dm.node"),
]
BASE = "bare C getset (f.__name__)"


def time_func(stmt):
    ns = {}
    exec(SETUP, ns)
    body = "; ".join([stmt] * REPEAT)
    src = (
        "def timed(loops, clock=clock):\n"
        "    t0 = clock()\n"
        "    for _ in range(loops):\n"
        f"        {body}\n"
        "    return clock() - t0\n"
    )
    ns["clock"] = time.perf_counter
    exec(src, ns)
    return ns["timed"]


def main():
    runner = pyperf.Runner()
    results = {}
    for name, stmt in BENCHES:
        bench = runner.bench_time_func(name, time_func(stmt), inner_loops=REPEAT)
        if bench is not None and not runner.args.worker:
            results[name] = bench.mean()
    if len(results) != len(BENCHES):
        return
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print()
    print(
        f"exprtree on CPython {sys.version.split()[0]} ({'GIL' if gil else 'free-threaded'}): "
        f"each result as a ratio to the {BASE}"
    )
    for name, _ in BENCHES:
        print(f"  {name:34s} {results[name] * 1e9:7.1f} ns  {results[name] / results[BASE]:5.2f}x")


if __name__ == "__main__":
    main()
