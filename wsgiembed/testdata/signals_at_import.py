"""Installs a Python signal handler at import, for the signal test."""
import signal

signal.signal(signal.SIGUSR2, lambda *a: None)


def application(environ, start_response):
    start_response("200 OK", [])
    return [b""]
