"""A small Bottle application: a JSON route and routes with URL parameters.

Run it with:

    hornbeam --python /usr/bin/python3 --pythonpath examples bottle_app:application

Routes:

    GET /api/status        {"status": "ok", ...} (Bottle turns a dict into JSON)
    GET /hello/<name>      greets <name>
    GET /add/<a>/<b>       a and b must be integers: {"a": .., "b": .., "sum": ..}
"""

import bottle

app = bottle.Bottle()


@app.get("/api/status")
def status():
    return {"status": "ok", "framework": "bottle", "version": bottle.__version__}


@app.get("/hello/<name>")
def hello(name):
    bottle.response.content_type = "text/plain; charset=utf-8"
    return "Hello, %s!" % name


@app.get("/add/<a:int>/<b:int>")
def add(a, b):
    return {"a": a, "b": b, "sum": a + b}


# The WSGI callable hornbeam serves.
application = app
