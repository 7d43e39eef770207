#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what it needs first
# (Debian packages: the frameworks the tests serve and Debian's python3).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/debian-packages.sh python3 python3-flask python3-django python3-bottle redis-server python3-redis libpython3.11 \
	python3-fastapi python3-starlette python3-quart python3-httpx python3-websockets python3-django-channels python3-multipart \
	gcc libc6-dev

export PATH="/usr/local/go/bin:$PATH"
go version
go vet ./...
go test -count=1 -timeout 25m ./...
# The embedded workers once more as python3 hosting the worker library
# (cmd/hornbeam-worker, built with cgo): the server's suite and ASGI's.
HORNBEAM_TEST_WORKER_MODE=hosted go test -count=1 -timeout 25m . ./asgi
