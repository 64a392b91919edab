#!/usr/bin/env bash
# Installs the Debian packages that pvhub's interop tests drive as real peers:
#   libca-dev        the EPICS CA client library (C headers and libca) for the C test driver
#   python3-pyepics  pyepics, which wraps the same libca
# Nothing is installed when everything is present. Without root, it only reports
# what is missing: the interop tests then skip (or fail under CI=true).
set -euo pipefail

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
need=()
# Debian's libca-dev holds only the libca.so link (no cadef.h): the C driver declares the API itself.
installed libca-dev || need+=(libca-dev)
installed python3-pyepics || need+=(python3-pyepics)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test-deps: missing ${need[*]}; run as root (or: sudo apt-get install ${need[*]}) to enable the interop tests" >&2
  exit 0
fi
echo "test-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
}
