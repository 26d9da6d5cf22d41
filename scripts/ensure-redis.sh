#!/usr/bin/env bash
# ensure-redis.sh: make sure a Redis is available for local runs.
#
#   scripts/ensure-redis.sh                  install redis-server and redis-cli if missing, then make sure something
#                                            answers PING on ${REDIS_HOST:-127.0.0.1}:${REDIS_PORT:-6379}, starting a
#                                            throwaway loopback redis-server (no persistence) if nothing does
#   scripts/ensure-redis.sh --install-only   only install redis-server and redis-cli (Debian/Ubuntu, apt-get) if missing
#                                            (the Redis Cluster tests need redis-cli to create their cluster)
#
# Uses sudo for apt-get only when not running as root. The started server is daemonized and keeps running after this
# script; stop it with: redis-cli -p PORT shutdown nosave
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

install_only=false
case "${1:-}" in
  "") ;;
  --install-only) install_only=true ;;
  -h | --help) usage; exit 0 ;;
  *) echo "ensure-redis.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

host="${REDIS_HOST:-127.0.0.1}"
port="${REDIS_PORT:-6379}"
tmp="${TMPDIR:-/tmp}"
tmp="${tmp%/}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "ensure-redis.sh: need root (or sudo) to run: $*" >&2
    exit 1
  fi
}

install_redis() {
  if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-redis.sh: redis-server or redis-cli is not installed and apt-get is not available; install Redis 7 (redis-server and redis-cli) with your package manager" >&2
    exit 1
  fi
  # redis-cli comes with redis-tools, which redis-server depends on; name it for a machine that has only the server.
  echo "ensure-redis.sh: installing redis-server and redis-tools (redis-cli) with apt-get"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools
  for bin in redis-server redis-cli; do
    command -v "$bin" >/dev/null 2>&1 || {
      echo "ensure-redis.sh: apt-get finished but $bin is still not on PATH" >&2
      exit 1
    }
  done
}

# pings HOST PORT: true when a Redis answers PING with PONG.
pings() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(timeout 3 redis-cli -h "$1" -p "$2" ping 2>/dev/null)" = "PONG" ]
  else
    timeout 3 bash -c '
      exec 3<>"/dev/tcp/$0/$1" || exit 1
      printf "PING\r\n" >&3
      IFS= read -r reply <&3 || exit 1
      [ "${reply%$'"'"'\r'"'"'}" = "+PONG" ]
    ' "$1" "$2" 2>/dev/null
  fi
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

install_redis
if $install_only; then
  exit 0
fi

if pings "$host" "$port"; then
  echo "ensure-redis.sh: redis already reachable at $host:$port"
  exit 0
fi

case "$host" in
  127.0.0.1 | localhost) ;;
  *)
    echo "ensure-redis.sh: no Redis answers at $host:$port, and only a loopback Redis can be started here; start it there or unset REDIS_HOST" >&2
    exit 1
    ;;
esac
if port_open 127.0.0.1 "$port"; then
  echo "ensure-redis.sh: 127.0.0.1:$port is in use by something that does not answer PING (a Redis with a password?); set REDIS_PORT to a free port, or REDIS_URL with the credentials" >&2
  exit 1
fi

logfile="$tmp/billing-adapter-redis.log"
pidfile="$tmp/billing-adapter-redis-$port.pid"
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
  --dir "$tmp" --logfile "$logfile" --pidfile "$pidfile"

for _ in $(seq 100); do
  if pings 127.0.0.1 "$port"; then
    echo "ensure-redis.sh: started redis-server on 127.0.0.1:$port (no persistence; log $logfile; stop with: redis-cli -p $port shutdown nosave)"
    exit 0
  fi
  sleep 0.1
done
echo "ensure-redis.sh: redis-server on 127.0.0.1:$port did not answer PING within 10s; last log lines:" >&2
tail -n 20 "$logfile" >&2 2>/dev/null || true
exit 1
