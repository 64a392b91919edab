#!/usr/bin/env bash
# Installs the Debian packages that pvhub's interop tests drive as real peers:
#   libca-dev        the EPICS CA client library (C headers and libca) for the C test driver
#   python3-pyepics  pyepics, which wraps the same libca
#   mosquitto        the MQTT broker the MQTT transport's tests run as an external broker
#   mosquitto-clients  mosquitto_sub and mosquitto_pub, the MQTT clients of those tests
#   chromium         the headless browser of the web page's end-to-end test
# Nothing is installed when everything is present. Without root, it only reports
# what is missing: the interop tests then skip (or fail under CI=true).
set -euo pipefail

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
need=()
# Debian's libca-dev holds only the libca.so link (no cadef.h): the C driver declares the API itself.
installed libca-dev || need+=(libca-dev)
installed python3-pyepics || need+=(python3-pyepics)
installed mosquitto || need+=(mosquitto)
installed mosquitto-clients || need+=(mosquitto-clients)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
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
# Installing must not start services: the mosquitto package would otherwise run
# a broker on port 1883, which pvhub's embedded broker uses by default. The
# tests start their own mosquitto on free ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
}
