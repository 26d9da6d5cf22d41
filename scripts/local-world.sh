#!/usr/bin/env bash
# local-world.sh: the local world of `make run`, kept under a git-ignored folder so that it survives restarts.
#
#   scripts/local-world.sh start   start the local Redis if it is not running: its own port (LOCAL_REDIS_PORT,
#                                  default 6391, loopback only), data in $LOCAL_STATE/redis with AOF on; prints
#                                  REDIS_URL=... and STRIPE_SIM_STATE=... for run.sh
#   scripts/local-world.sh reset   stop that Redis and delete $LOCAL_STATE (the Redis data and the simulator's
#                                  state file): the next `make run` starts from an empty world
#
# LOCAL_STATE defaults to .local in the repository (listed in .gitignore). The embedded Stripe simulator keeps its
# whole state in $LOCAL_STATE/stripe-sim.json (STRIPE_SIM_STATE). Nothing here touches a Redis on 6379.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${LOCAL_STATE:-$root/.local}"
port="${LOCAL_REDIS_PORT:-6391}"
redis_dir="$state/redis"

pings() { [ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; }

case "${1:-}" in
  start)
    "$root/scripts/ensure-redis.sh" --install-only >&2
    mkdir -p "$redis_dir"
    if pings; then
      dir="$(timeout 3 redis-cli -p "$port" config get dir 2>/dev/null | sed -n 2p)"
      if [ "$dir" != "$redis_dir" ]; then
        echo "local-world.sh: 127.0.0.1:$port answers but keeps its data in '$dir', not $redis_dir; set LOCAL_REDIS_PORT to a free port" >&2
        exit 1
      fi
    else
      redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$redis_dir" --appendonly yes --save "" \
        --logfile "$redis_dir/redis.log" --pidfile "$redis_dir/redis.pid" >&2
      for _ in $(seq 100); do
        pings && break
        sleep 0.1
      done
      pings || { echo "local-world.sh: redis-server on 127.0.0.1:$port did not start; see $redis_dir/redis.log" >&2; exit 1; }
      echo "local-world.sh: started the local Redis on 127.0.0.1:$port (AOF in $redis_dir)" >&2
    fi
    echo "REDIS_URL=redis://127.0.0.1:$port/0"
    echo "STRIPE_SIM_STATE=$state/stripe-sim.json"
    ;;
  reset)
    if pings; then
      timeout 5 redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
      for _ in $(seq 50); do
        pings || break
        sleep 0.1
      done
    fi
    rm -rf "$state"
    echo "local-world.sh: the local world is reset ($state removed, Redis on 127.0.0.1:$port stopped)"
    ;;
  -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
