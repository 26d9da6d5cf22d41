// Package redisstore implements the domain's persistence on Redis (go-redis
// v9, a redis.UniversalClient: one server or Redis Cluster).
//
// The key schema and every key builder are in keys.go; the Lua scripts in
// lua/, assembled in scripts.go.
//
// A redemption's moves (reserve, confirm, finish, and the moves of what Stripe
// reports, observe.go) are each one Lua script on the code's slot; the subscription
// claim, in another slot, is written under the subscription lock. Errors from
// Redis are returned as *promo.Error with promo.CodeUnavailable (HTTP 503);
// a missing object is promo.ErrNotFound.
package redisstore
