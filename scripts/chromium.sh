#!/usr/bin/env bash
# Installs headless Chromium (Debian's chromium package) for the dashboards'
# browser tests. Idempotent: does nothing when a chromium binary is present.
# Prints the binary's path.
set -euo pipefail
find_chromium() {
  for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}
if bin=$(find_chromium); then
  echo "$bin"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "chromium is missing and this user cannot apt-get install it" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
find_chromium
