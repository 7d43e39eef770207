"""An app that floods its stdout: /noisy prints about 50 MB in one request
(50 MB of 100-byte lines, then a 1 MiB line without a break), everything
else answers "ok" at once. Used by hostile_test.go to check that a worker's
output flood does not stall the server or the other workers."""
import sys


def application(environ, start_response):
    if environ["PATH_INFO"] == "/noisy":
        block = ("x" * 99 + "\n") * 10000  # 1 MB
        for _ in range(50):
            sys.stdout.write(block)
        sys.stdout.write("y" * (1 << 20) + "\n")
        sys.stdout.flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"noisy done"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
