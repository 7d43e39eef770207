"""hornbeam: what a WSGI application can use from the server running it.

Shared state, the same in every worker and atomic across them:

    from hornbeam import state_get, state_set, state_incr
    views = state_incr("page_views")
    state_set("api_cache", {"rows": [1, 2]}, ttl=300)

Keys are str, bytes, int, or tuples of those. Values are None, bool, int,
float, str, bytes, list, tuple, dict and set, nested as you like; they come
back equal and of the same type. Outside a hornbeam worker (a unit test, a
script) the same functions work on an in-process store.

The module is also importable as hornbeam_erlang, for applications written
for the Erlang Hornbeam.
"""

from . import _state

__all__ = [
    "state_get", "state_set", "state_delete", "state_incr", "state_decr",
    "state_get_multi", "state_keys", "pool_stats",
    "get", "set", "delete", "incr", "decr",
]


def state_get(key):
    """Return the value stored under key, or None."""
    return _state.get(key)


def state_set(key, value, ttl=None):
    """Store value under key; ttl in seconds (int or float), None for no expiry."""
    _state.set(key, value, ttl)


def state_delete(key):
    """Remove key; return whether it existed."""
    return _state.delete(key)


def state_incr(key, delta=1):
    """Add delta to the integer under key (0 when absent), atomically; return the new value."""
    return _state.incr(key, delta)


def state_decr(key, delta=1):
    """Subtract delta from the integer under key, atomically; return the new value."""
    return _state.decr(key, delta)


def state_get_multi(keys):
    """Return {key: value} for every key given, None for the missing ones."""
    return _state.get_multi(keys)


def state_keys(prefix=None):
    """Return the live keys, or those str keys that start with prefix."""
    return _state.keys(prefix)


def pool_stats():
    """Return the server's pool statistics (the same data as its /stats endpoint)."""
    return _state.stats()


get = state_get
set = state_set
delete = state_delete
incr = state_incr
decr = state_decr
