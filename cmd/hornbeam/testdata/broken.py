# An app whose module has a syntax error: importing it must fail.

def application(environ, start_response)
    start_response("200 OK", [])
    return [b"never"]
