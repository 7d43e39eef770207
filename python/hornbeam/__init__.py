"""hornbeam: what an application can use from the server running it.

Shared state, the same in every worker and atomic across them:

    from hornbeam import state_get, state_set, state_incr
    views = state_incr("page_views")
    state_set("api_cache", {"rows": [1, 2]}, ttl=300)

Keys are str, bytes, int, or tuples of those. Values are None, bool, int,
float, str, bytes, list, tuple, dict and set, nested as you like; they come
back equal and of the same type. Outside a hornbeam worker (a unit test, a
script) the same functions work on an in-process store.

Pub/sub across every worker: publish(topic, message) from any app (WSGI
or ASGI); in an ASGI worker, `async for m in subscribe(topic)` receives,
and `await ws_subscribe(topic)` has Go write each message of topic to the
current WebSocket, with no Python work per message:

    await websocket.accept()
    await hornbeam.ws_subscribe("chat:" + room)
    hornbeam.publish("chat:" + room, {"from": user, "text": text})

The async state calls (astate_get, ...) run the call in the loop's default
executor, so a slow server never blocks the event loop.

The module is also importable as hornbeam_erlang, for applications written
for the Erlang Hornbeam.
"""

from . import _state

__all__ = [
    "state_get", "state_set", "state_delete", "state_incr", "state_decr",
    "state_get_multi", "state_keys", "pool_stats",
    "get", "set", "delete", "incr", "decr",
    "publish", "subscribe", "unsubscribe", "ws_subscribe", "ws_unsubscribe",
    "astate_get", "astate_set", "astate_delete", "astate_incr", "astate_decr",
    "astate_get_multi", "astate_keys",
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


def publish(topic, message):
    """Send message to every subscriber of topic, in every worker: the
    subscribe() iterators and the WebSockets given to ws_subscribe(). A
    str goes as a text message, bytes as binary, anything else as JSON
    text. Returns the number of subscribers it went to."""
    return _state.publish(topic, message)


def subscribe(topic):
    """An async iterator of the messages published to topic (str or bytes
    as published, JSON as its text), in this ASGI worker; it ends at
    unsubscribe(topic). Use it with `async for`, or as `async with`."""
    return _asgi_runner("subscribe").subscribe(topic)


def unsubscribe(topic):
    """End this worker's subscribe(topic) iterators."""
    _asgi_runner("unsubscribe").unsubscribe(topic)


async def ws_subscribe(topic):
    """Have the server write every message published to topic to the
    current WebSocket (the one whose ASGI task calls this), until it
    closes or ws_unsubscribe(topic)."""
    _asgi_runner("ws_subscribe").ws_subscribe(topic, True)


async def ws_unsubscribe(topic):
    """Stop ws_subscribe(topic) for the current WebSocket."""
    _asgi_runner("ws_unsubscribe").ws_subscribe(topic, False)


def _asgi_runner(what):
    from . import _asgi

    if _asgi.RUNNER is None:
        raise RuntimeError("hornbeam.%s() works in an ASGI worker (-k asgi); publish() works everywhere" % what)
    return _asgi.RUNNER


async def _in_executor(fn, *args):
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def astate_get(key):
    """state_get, awaitable."""
    return await _in_executor(state_get, key)


async def astate_set(key, value, ttl=None):
    """state_set, awaitable."""
    return await _in_executor(state_set, key, value, ttl)


async def astate_delete(key):
    """state_delete, awaitable."""
    return await _in_executor(state_delete, key)


async def astate_incr(key, delta=1):
    """state_incr, awaitable."""
    return await _in_executor(state_incr, key, delta)


async def astate_decr(key, delta=1):
    """state_decr, awaitable."""
    return await _in_executor(state_decr, key, delta)


async def astate_get_multi(keys):
    """state_get_multi, awaitable."""
    return await _in_executor(state_get_multi, keys)


async def astate_keys(prefix=None):
    """state_keys, awaitable."""
    return await _in_executor(state_keys, prefix)


get = state_get
set = state_set
delete = state_delete
incr = state_incr
decr = state_decr
