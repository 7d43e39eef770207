"""The smallest ASGI app: no lifespan support (it answers only http).

    hornbeam -k asgi --python /usr/bin/python3 --pythonpath examples asgi_hello:app
"""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, World!"})


class App2:
    """The same as an ASGI 2 "double callable": the class is called with the
    scope, its instance awaited with (receive, send).

        hornbeam -k asgi --python /usr/bin/python3 --pythonpath examples asgi_hello:App2
    """

    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"Hello from ASGI 2"})
