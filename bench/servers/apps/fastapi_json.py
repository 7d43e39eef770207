"""ASGI benchmark app (bench/servers/asgi.py): FastAPI (Debian's
python3-fastapi) with one async route returning a small JSON object, the
way a FastAPI tutorial writes it. GET /json ->
{"message":"Hello, World!","id":42,"tags":["a","b"],"ok":true}
"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/json")
async def json_route():
    return {"message": "Hello, World!", "id": 42, "tags": ["a", "b"], "ok": True}


application = app
