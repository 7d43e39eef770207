"""Workload 3: a small Flask app. The load generator alternates between a
route rendering a Jinja template file (templates/page.html) and a route
returning JSON, both with a URL parameter."""

from flask import Flask, jsonify, render_template

app = Flask(__name__)

ITEMS = [
    {"id": i, "name": "item-%d" % i, "price": 1.25 * i, "tags": ["a", "b"]}
    for i in range(1, 21)
]


@app.get("/page/<name>")
def page(name):
    return render_template("page.html", name=name, items=ITEMS)


@app.get("/api/items/<int:limit>")
def items(limit):
    return jsonify(count=min(limit, len(ITEMS)), items=ITEMS[:limit])


application = app
