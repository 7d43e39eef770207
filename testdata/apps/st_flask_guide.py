"""The Flask example of the hornbeam guide, verbatim below the marker, run
by TestStateFlaskGuide. expensive_computation counts its calls in the shared
state so that the test can prove /api/data computed its result only once."""

import os

from hornbeam_erlang import state_incr as _count


def expensive_computation():
    _count("expensive_calls")
    return {"rows": [1, 2, 3], "computed_by": os.getpid()}


# --- the guide's example, verbatim -----------------------------------------
from flask import Flask, jsonify
from hornbeam_erlang import state_get, state_set, state_incr
app = Flask(__name__)
@app.route('/')
def index():
    views = state_incr('page_views')
    return f'Page views: {views}'
@app.route('/api/data')
def get_data():
    cached = state_get('api_cache')
    if cached is None:
        cached = expensive_computation()
        state_set('api_cache', cached, ttl=300)
    return jsonify(cached)
application = app
# --- end of the guide's example ----------------------------------------------


@app.after_request
def _tag_worker(response):
    # Lets the test see which worker process served each request.
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response
