#!/usr/bin/env bash
# debian-packages.sh PKG...: installs those of the Debian packages that are
# missing (apt-get update first, then apt-get install -y), as root or with
# sudo. The test and benchmark scripts call it so a fresh machine needs no
# manual step.
set -euo pipefail
missing=()
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
