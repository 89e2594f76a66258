"""Test helpers backed by the native side (see docs/python.md).

* ``hold(obj) -> int``: a native registry keeps a strong reference to ``obj``'s native object;
  returns a key.
* ``release(key)``: drops it. ``release_on_foreign_thread(key, wait=True)`` drops it on a new
  thread that never touched Python.
* ``identity(obj)``: a native function returning its argument.
* ``binding_state(key) -> str``: the binding word's state for a held object: ``"detached"``,
  ``"active"``, ``"inactive"`` or ``"in_transit"``.
* ``native_refcount(obj) -> int``: strong native references to ``obj``'s native object.
* ``set_caching(on) -> bool``: whether dying wrappers are cached for revival (default ``True``);
  returns the previous setting.
* ``stats() -> dict``: ``native_alive``, ``wrappers_alive``, ``wrappers_cached``, ``revivals``,
  ``fresh_wrappers``, ``discarded``, ``uncached_deaths``, ``replaced``, ``held``.
"""

from ._core import testing as _testing

hold = _testing.hold
release = _testing.release
release_on_foreign_thread = _testing.release_on_foreign_thread
identity = _testing.identity
binding_state = _testing.binding_state
native_refcount = _testing.native_refcount
stats = _testing.stats
set_caching = _testing.set_caching

__all__ = [
    "binding_state",
    "hold",
    "identity",
    "native_refcount",
    "release",
    "release_on_foreign_thread",
    "set_caching",
    "stats",
]
