-- Workload 4: every request is a POST with a 1 MB (1048576-byte) body.
wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
