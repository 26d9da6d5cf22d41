#!/usr/bin/env bash
# ensure-stripe-cli.sh: install the pinned Stripe CLI (npm package @stripe/cli, exact version and integrity in
# tools/stripe-cli/package-lock.json) into tools/stripe-cli/node_modules, and print the path of its binary.
#
#   scripts/ensure-stripe-cli.sh           install from the lockfile when the binary is missing or of another version
#   scripts/ensure-stripe-cli.sh --path    only print where the binary is (or would be)
#
# The Linux/macOS binary ships inside the platform package (@stripe/cli-linux-x64, ...), so nothing is downloaded at
# run time and no install script runs (--ignore-scripts). Nothing is installed globally. Needs node and npm.
# `npm install --no-save` rather than `npm ci`: the lockfile holds only the platform packages the registry served when
# it was written (npm leaves the others out), which `npm ci` calls out of sync; --no-save installs exactly the locked
# versions and integrity hashes and never rewrites the lockfile.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

only_path=false
case "${1:-}" in
  "") ;;
  --path) only_path=true ;;
  -h | --help) usage; exit 0 ;;
  *) echo "ensure-stripe-cli.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tools/stripe-cli"
want="$(sed -n 's/.*"@stripe\/cli": *"\([^"]*\)".*/\1/p' "$dir/package.json" | head -n1)"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) plat=linux-x64 ;;
  Linux-aarch64 | Linux-arm64) plat=linux-arm64 ;;
  Darwin-x86_64) plat=darwin-x64 ;;
  Darwin-arm64) plat=darwin-arm64 ;;
  *) echo "ensure-stripe-cli.sh: no @stripe/cli binary for $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac
bin="$dir/node_modules/@stripe/cli-$plat/bin/stripe"

if $only_path; then
  echo "$bin"
  exit 0
fi

have=""
if [ -x "$bin" ]; then
  have="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$dir/node_modules/@stripe/cli-$plat/package.json" | head -n1)"
fi
if [ "$have" != "$want" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-stripe-cli.sh: npm is needed to install @stripe/cli $want (apt-get install npm)" >&2
    exit 1
  fi
  echo "ensure-stripe-cli.sh: installing @stripe/cli $want into tools/stripe-cli (npm install --no-save, from the lockfile)" >&2
  (cd "$dir" && npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
fi
if [ ! -x "$bin" ]; then
  echo "ensure-stripe-cli.sh: $bin is missing after npm install" >&2
  exit 1
fi
echo "$bin"
