"""A small Flask application: pages, a JSON API and a Jinja template.

Run it with:

    hornbeam --python /usr/bin/python3 --pythonpath examples flask_app:application

Routes:

    GET  /                 plain text greeting
    GET  /hello/<name>     greets <name> (HTML-escaped)
    GET  /api/items        the item list, as JSON
    POST /api/items        {"name": ..., "price": ...} -> 201 and the new item
    GET  /page/<name>      an HTML page rendered from a Jinja template

Anything else is Flask's 404. ITEMS lives in each worker's memory, so every
worker process has its own copy: a real application keeps its data in a
database (or in hornbeam.state_* for small shared values).
"""

from flask import Flask, jsonify, render_template_string, request
from markupsafe import escape

app = Flask(__name__)

ITEMS = [
    {"id": 1, "name": "hammer", "price": 12.5},
    {"id": 2, "name": "saw", "price": 20.0},
]

PAGE = """<!doctype html>
<html>
  <head><title>Hello {{ name }}</title></head>
  <body>
    <h1>Hello, {{ name }}!</h1>
    <ul>
    {% for item in items %}
      <li>{{ item.name }}: {{ "%.2f"|format(item.price) }}</li>
    {% endfor %}
    </ul>
  </body>
</html>
"""


@app.get("/")
def index():
    return "Hello from Flask!", 200, {"Content-Type": "text/plain; charset=utf-8"}


@app.get("/hello/<name>")
def hello(name):
    return "Hello, %s!" % escape(name)


@app.get("/api/items")
def list_items():
    return jsonify(ITEMS)


@app.post("/api/items")
def create_item():
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return jsonify(error='want a JSON object with a "name" string'), 400
    item = {
        "id": max(i["id"] for i in ITEMS) + 1,
        "name": data["name"],
        "price": float(data.get("price", 0)),
    }
    ITEMS.append(item)
    return jsonify(item), 201, {"Location": "/api/items/%d" % item["id"]}


@app.get("/page/<name>")
def page(name):
    # Templates from strings are autoescaped, like .html template files.
    return render_template_string(PAGE, name=name, items=ITEMS)


# The WSGI callable hornbeam serves.
application = app
