#!/usr/bin/env bash
# ensure-chromium.sh: install Debian's chromium (the browser the console's browser test drives with chromedp) when it
# is missing. apt-get only; no browser is downloaded from anywhere else. Uses sudo for apt-get only when not root.
#
#   scripts/ensure-chromium.sh    install chromium if no chromium/chromium-browser is on PATH
set -euo pipefail

for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then
    exit 0
  fi
done

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "ensure-chromium.sh: need root (or sudo) to run: $*" >&2
    exit 1
  fi
}

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium.sh: chromium is not installed and apt-get is not available; install Chromium with your package manager" >&2
  exit 1
fi
echo "ensure-chromium.sh: installing chromium with apt-get"
as_root apt-get update
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core
command -v chromium >/dev/null 2>&1 || {
  echo "ensure-chromium.sh: apt-get finished but chromium is still not on PATH" >&2
  exit 1
}
