#!/usr/bin/env bash
# run.sh: run billing-adapter locally for development (what `make run` does).
#
# Installs and starts a loopback Redis if none is reachable (scripts/ensure-redis.sh), builds bin/billing-adapter and
# runs `billing-adapter serve` with development defaults for unset variables. Without STRIPE_SECRET_KEY the service
# talks to its embedded Stripe simulator, so nothing leaves the machine. Extra arguments are passed to `serve`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -n "${REDIS_URL:-}" ] || [ -n "${REDIS_ADDRS:-}" ]; then
  echo "run.sh: REDIS_URL/REDIS_ADDRS is set; using that Redis and not starting a local one"
else
  # The local world (scripts/local-world.sh): its own Redis (127.0.0.1:6391, AOF under .local/redis) and the
  # embedded simulator's state file (.local/stripe-sim.json), so a restart continues where it stopped.
  world="$(scripts/local-world.sh start)"
  export REDIS_URL="$(echo "$world" | sed -n 's/^REDIS_URL=//p')"
  if [ -z "${STRIPE_SECRET_KEY:-}" ] && [ -z "${STRIPE_SIM_STATE:-}" ]; then
    export STRIPE_SIM_STATE="$(echo "$world" | sed -n 's/^STRIPE_SIM_STATE=//p')"
  fi
  echo "run.sh: local world: Redis $REDIS_URL, simulator state ${STRIPE_SIM_STATE:-(none: real Stripe)}; 'make reset' wipes both"
fi

"${GO:-go}" build -trimpath -o bin/billing-adapter ./cmd/billing-adapter

dev_keys=false
if [ -z "${BILLING_API_KEYS:-}" ]; then
  dev_keys=true
  export BILLING_API_KEYS="admin:admin:dev_admin_secret_change_me,checkout:checkout:dev_checkout_secret_change_me"
fi
dev_whsec=false
if [ -z "${STRIPE_WEBHOOK_SECRETS:-}" ]; then
  dev_whsec=true
  export STRIPE_WEBHOOK_SECRETS="whsec_dev_local_secret"
fi
export LOG_FORMAT="${LOG_FORMAT:-text}"

msg="run.sh:"
if $dev_keys; then
  msg+=" DEV API keys: 'Authorization: Bearer dev_admin_secret_change_me' (admin), 'Bearer dev_checkout_secret_change_me' (checkout);"
else
  msg+=" API keys from BILLING_API_KEYS;"
fi
if $dev_whsec; then
  msg+=" webhook secret whsec_dev_local_secret;"
fi
if [ -z "${STRIPE_SECRET_KEY:-}" ]; then
  msg+=" STRIPE_SECRET_KEY is unset, so the service uses its embedded Stripe simulator (no calls to Stripe)."
else
  msg+=" STRIPE_SECRET_KEY is set, so the service calls ${STRIPE_API_BASE:-Stripe}."
fi
echo "$msg"

exec bin/billing-adapter serve "$@"
