"""What tether does, in one screen: identity, revival in place, threads, and the counters."""

import gc
import sys
import threading

import tether
import tether.testing as T


class Inner(tether.Object):
    value: int


class Outer(tether.Object):
    x: Inner
    y: tether.Object | None = None


def main():
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"CPython {sys.version.split()[0]} ({'GIL' if gil else 'free-threaded, GIL disabled'})")

    i = Inner(1)
    o = Outer(i)
    print(f"identity:   o.x is o.x -> {o.x is o.x};  stored and read back: o.x is i -> {o.x is i}")
    same = tether.function(lambda v: v)
    print(f"            through a native function: f(i) is i -> {same(i) is i}")

    key = T.hold(o.x)  # a native reference keeps the object alive
    first = id(o.x)
    del i
    gc.collect()
    print(f"revival:    wrapper dropped, word is {T.binding_state(key)!r}")
    x = o.x
    print(f"            fetched again at the same address: {id(x) == first}"
          f" (word {T.binding_state(key)!r} while it lives)")
    del x
    print(f"            2,000 drop/refetch cycles, addresses seen: {len({id(o.x) for _ in range(2000)})}")

    seen = set()
    lock = threading.Lock()

    def reader():
        mine = set()
        for _ in range(20_000):
            a, b = o.x, o.x
            assert a is b
            mine.add(id(a))
        with lock:
            seen.update(mine)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"threads:    8 threads x 20,000 fetches, a is b every time; addresses seen: {len(seen)}")

    T.release(key)
    del o, same
    gc.collect()
    print("stats():   ", T.stats())


if __name__ == "__main__":
    main()
