// Package redisstore implements the domain's persistence on Redis (go-redis
// v9, a redis.UniversalClient: one server or Redis Cluster).
//
// Key schema. Every key starts with "ba:". Keys that one Lua script or
// transaction touches together share a hash tag ({...}) so that it runs on
// one Redis Cluster slot: the catalog's indexes share {catalog}, everything
// of one code shares {pc_ID}, everything of one subscription {sub_ID}.
//
// Catalog
//
//	ba:{catalog}:codes               HASH   CODE -> promo code ID, for every non-archived code
//	                                        (the case-insensitive uniqueness index; CODE is upper-case)
//	ba:{catalog}:prov                HASH   CODE -> JSON {id, owner, lease, terms} while a create is unfinished
//	ba:{catalog}:list:<status>       ZSET   score 0, member promo code ID: the ready codes with that status
//	                                        (active, inactive, archived; each code is in exactly one).
//	                                        Members are ULID-based IDs, so lexical order is creation order:
//	                                        lists page with ZRANGE BYLEX REV, merged across statuses.
//	                                        (list:current and list:all of earlier versions are not read.)
//	ba:{catalog}:stripe_sync         SET    codes whose Stripe promotion code must be switched on or off
//
// One code (slot {pc_ID})
//
//	ba:{pc_ID}:code                  HASH   doc (JSON of the admin-set fields and Stripe refs) and the
//	                                        fields scripts read or count atomically: status, state,
//	                                        unlimited, expires_ms, stock (units left), reserved (applies
//	                                        in flight), held (units held by redemptions; stock + held is
//	                                        the limit), uses, stripe_redeemed (Stripe's times_redeemed),
//	                                        amt:<currency> (discount on paid invoices, minor units)
//	ba:{pc_ID}:lock                  STRING update lock token, with a lease (PX)
//	ba:{pc_ID}:rd                    HASH   redemption ID -> JSON ledger line (short field names)
//	ba:{pc_ID}:ledger                ZSET   score 0, member redemption ID (ULID: lexical = creation order)
//	ba:{pc_ID}:cust                  HASH   customer -> redemption ID holding the customer's one use
//	ba:{pc_ID}:subs                  HASH   subscription -> the code's live redemption on it
//	ba:{pc_ID}:disc                  HASH   Stripe discount ID -> redemption ID (webhooks, rebuilds)
//	ba:{pc_ID}:inv                   SET    invoice IDs already counted (each paid invoice counts once)
//
// One subscription (slot {sub_ID})
//
//	ba:{sub_ID}:lock                 STRING apply lock token, with a lease (PX)
//
// Across codes
//
//	ba:{sweep}:due                   ZSET   "pc_ID/rd_ID" scored by lease end (ms): reservations the
//	                                        sweeper settles if their request does not; written before
//	                                        the reservation, removed once it is confirmed or released
//	ba:{customers}:paid              SET    customers with a paid invoice above zero (new_users_only)
//	ba:{claims}                      HASH   subscription ID -> "promo code ID|redemption ID": the
//	                                        subscription's live adapter redemption (one promo code per
//	                                        subscription; written under the subscription's lock)
//	ba:evt:<event ID>                STRING "p:<token>" while a webhook event is processed (lease TTL),
//	                                        then "d" for 7 days (deduplication)
//	ba:{idem:H}                      HASH   one idempotency record, H = hex SHA-256 of (API key name,
//	                                        Idempotency-Key): state (running|done), fp (request
//	                                        fingerprint), token (attempt), status, ctype, body. Expires
//	                                        after the lease while running and after the TTL once done.
//
// A redemption's moves (reserve, confirm, finish, and the webhook moves in
// reconcile.go) are each one Lua script on the code's slot; the subscription
// claim, in another slot, is written under the subscription lock. Errors from
// Redis are returned as *promo.Error with promo.CodeUnavailable (HTTP 503);
// a missing object is promo.ErrNotFound.
package redisstore
