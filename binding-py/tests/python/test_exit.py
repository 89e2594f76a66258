"""Interpreter exit while native objects (and cached wrappers) are still held."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import faulthandler, gc, threading, sys
    faulthandler.dump_traceback_later(60, exit=True)  # a hang fails the test with every stack
    sys.path.insert(0, {path!r})
    import tether, tether.testing as T
    from classes import Inner, Outer

    class Payload:
        def __del__(self):
            pass

    objs = [Outer(Inner(Payload())) for _ in range(200)]
    keys = [T.hold(o.x) for o in objs]         # held natively, never released
    for o in objs:
        o.x                                    # cached wrappers
    more = [T.hold(Inner(Payload())) for _ in range(200)]
    for k in more[:100]:
        T.release_on_foreign_thread(k, wait=False)   # foreign drops racing the exit
    hot = objs[:10]
    def daemon(hot=hot):
        # No global lookups in the loop: on a free-threaded 3.14, specialising LOAD_GLOBAL takes
        # the builtins dict's lock, and a daemon thread that CPython hangs at exit (its
        # re-attach during finalisation never returns) while inside that specialisation keeps
        # the lock, so the main thread's module teardown waits for it forever (a CPython hang,
        # seen here once in about 40 runs under load; native stacks of both threads showed it).
        while True:
            for o in hot:
                o.x
    threading.Thread(target=daemon, daemon=True).start()
    del objs
    gc.collect()
    {tail}
    """
)


@pytest.mark.thread_unsafe(reason="runs subprocesses")
@pytest.mark.parametrize("tail", ["pass", "sys.exit(0)", "raise SystemExit"])
def test_interpreter_exit_with_held_objects(tail):
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    code = SCRIPT.format(path=here, tail=tail)
    for _ in range(3):
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert "Fatal" not in p.stderr, p.stderr


@pytest.mark.thread_unsafe(reason="runs subprocesses")
def test_running_the_atexit_callbacks_early_does_not_stop_reclaims():
    # Issue 8 item 13: the shutdown flag used to be set by an `atexit` callback, so
    # `atexit._run_exitfuncs()` (or a library clearing atexit) made every later reclaim leak its
    # cached wrapper. The hook now runs in threading's shutdown, at the real exit only.
    code = textwrap.dedent(
        """
        import atexit, gc
        import tether, tether.testing as T

        class Inner(tether.Object):
            value: int = 0

        class Outer(tether.Object):
            x: object = None

        atexit._run_exitfuncs()
        before = T.stats()["wrappers_cached"]
        o = Outer(Inner())
        key = T.hold(o.x)
        o.x  # a cached wrapper
        del o
        gc.collect()
        assert T.stats()["wrappers_cached"] == before + 1, T.stats()
        T.release_on_foreign_thread(key)  # the reclaim attaches and frees the cached wrapper
        assert T.stats()["wrappers_cached"] == before, T.stats()
        print("ok")
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", (p.stdout, p.stderr[-2000:])


DAEMONS_IN_CALLBACKS = textwrap.dedent(
    """
    import sys, threading, time
    import tether

    def callback():
        while True:
            time.sleep(0.001)  # lets the GIL go, and takes it back, again and again

    def items():
        while True:
            time.sleep(0.001)
            yield 1

    run = {"function": lambda: tether.function(callback)(), "array": lambda: tether.Array(items())}
    for _ in range(4):
        threading.Thread(target=run[sys.argv[1]], daemon=True).start()

    class Slow:
        def __del__(self):
            time.sleep(0.3)  # the daemons wake up while the interpreter finalises

    slow = Slow()
    time.sleep(0.1)
    print("done", flush=True)
    """
)


@pytest.mark.parametrize("entry", ["function", "array"])
def test_daemon_threads_inside_a_callback_at_exit(entry):
    # Issue 8 item 1: on 3.11-3.13 CPython ends a daemon thread that takes the GIL back during
    # finalisation with pthread_exit; its forced unwind aborted the process (status -6) when it
    # met tether's Rust frames. The calls into Python now go through a C shield that parks the
    # thread instead (as 3.14 does itself).
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", DAEMONS_IN_CALLBACKS, entry],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
        assert out.stdout.strip() == "done"
