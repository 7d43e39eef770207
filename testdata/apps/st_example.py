"""The app ExampleStart serves: it greets and counts its visitors in the
shared state, which the Go code reads too."""

import hornbeam


def application(environ, start_response):
    n = hornbeam.state_incr("visitors")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, visitor %d!" % n]
