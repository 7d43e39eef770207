"""The smallest ASGI app: no lifespan support (it answers only http).

    hornbeam -k asgi --python /usr/bin/python3 --pythonpath examples asgi_hello:app
"""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, World!"})
