"""CPython 3.14's trashcan parks deallocs on a deep C stack (issue 8, items 10 and 11).

On 3.14 `_Py_Dealloc` puts a GC object whose count reached zero on the thread's delete-later list
when the C stack is nearly exhausted; its dealloc runs when the stack unwinds. A tether wrapper
parked like that is dead but still canonical, so a lookup of its native object must not wait for
a dealloc that only its own thread can run: it replaces the wrapper (`stats()["replaced"]`).
Each run is a subprocess with a timeout, because the failure mode is a hang. A thread with a
small stack reaches the limit with a short chain (3.14 reads each thread's real stack bounds).
"""

import subprocess
import sys
import sysconfig
import textwrap

import pytest

CHAIN = textwrap.dedent(
    """
    import sys, threading, faulthandler
    faulthandler.dump_traceback_later(240, exit=True)
    import tether, tether.testing as T

    class Leaf(tether.Object):
        n: int = 0

    class Holder(tether.Object):
        leaf: object = None

    N = 20_000
    holders = [Holder(leaf=Leaf(n=i)) for i in range(N)]
    seen = []
    stop = threading.Event()

    reading = [None]

    class Reader:
        # Dies next to the parked wrapper of its holder's leaf and reads that field again.
        __slots__ = ("holder",)
        def __init__(self, holder):
            self.holder = holder
        def __del__(self):
            reading[0] = self.holder
            seen.append(self.holder.leaf)

    def chain():
        nest = None
        for h in holders:
            leaf = h.leaf
            nest = [Reader(h), leaf, nest]
            del leaf
        del nest  # deallocates recursively: deep in, Leaf wrappers are parked

    def reassign():
        # Item 11: replaces the field being read while its reader may be backing off (the GIL
        # let go); the value keeps its number, so the reader's result stays checkable.
        while not stop.is_set():
            h = reading[0]
            if h is not None:
                h.leaf = Leaf(n=h.leaf.n)

    MODE
    threading.stack_size(1 << 19)
    before = T.stats()["replaced"]
    worker = threading.Thread(target=chain)
    worker.start()
    worker.join()
    stop.set()
    for t in helpers:
        t.join()
    assert len(seen) == N, len(seen)
    assert all(type(x) is Leaf for x in seen)
    by_n = {}
    for x in seen:
        by_n.setdefault(x.n, x)
    assert sorted(by_n) == list(range(N))
    for h in holders:
        assert h.leaf is h.leaf
    replaced = T.stats()["replaced"] - before
    print("ok", replaced)
    """
)


def run(mode: str) -> int:
    code = CHAIN.replace("MODE", mode)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.returncode, out.stdout[-2000:], out.stderr[-4000:])
    word, replaced = out.stdout.split()
    assert word == "ok"
    return int(replaced)


def test_a_lookup_does_not_wait_for_a_parked_dealloc():
    # Item 10: hung forever on 3.14 and 3.14t (the lookup waited for its own thread's dealloc).
    replaced = run("helpers = []")
    if sys.version_info >= (3, 14):
        # The scenario really parks wrappers on 3.14 (else it would prove nothing there).
        if replaced == 0 and sysconfig.get_config_var("Py_GIL_DISABLED"):
            # Seen on 3.14t from run to run with one and the same binary: the readers then find
            # their leaves alive (hits), never parked (scheduling decides; why the free-threaded
            # trashcan so often parks nothing here is not understood yet). The run still proves
            # the rest (no hang, every read correct).
            pytest.xfail("3.14t: no reader met a parked wrapper in this run")
        assert replaced > 0
    else:
        assert replaced == 0  # no trashcan in _Py_Dealloc before 3.14


def test_a_field_read_stays_valid_while_the_field_is_reassigned_during_its_lookup():
    # Item 11: the read backs off on a parked wrapper, letting the GIL go; another thread
    # replaces the field meanwhile. The read must own what it looks up (segfaulted on 3.14).
    run("helpers = [threading.Thread(target=reassign) for _ in range(2)]\nfor t in helpers: t.start()")
