#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what it needs first
# (Debian packages: the frameworks the tests serve and Debian's python3).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(python3 python3-flask python3-django python3-bottle redis-server python3-redis)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO=sudo
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

export PATH="/usr/local/go/bin:$PATH"
go version
go vet ./...
go test -count=1 -timeout 25m ./...
