// Package redisstore implements the domain's persistence on Redis (go-redis
// v9, a redis.UniversalClient: one server or Redis Cluster).
//
// Key schema. Every key starts with "ba:". Keys that one Lua script touches
// together share a hash tag ({...}) so that the script runs on one Redis
// Cluster slot.
//
//	ba:{catalog}:codes               HASH   CODE -> promo code ID, for every non-archived code
//	                                        (the case-insensitive uniqueness index; CODE is upper-case)
//	ba:{catalog}:prov                HASH   CODE -> JSON {id, owner, lease_ms, terms} while a create is unfinished
//	ba:{catalog}:list:current        ZSET   score 0, member promo code ID: non-archived ready codes
//	ba:{catalog}:list:all            ZSET   every ready code
//	ba:{catalog}:list:<status>       ZSET   ready codes with that status (active, inactive, archived)
//	                                        Members are ULID-based IDs, so lexical order is creation order
//	                                        and lists page with ZRANGE BYLEX REV.
//	ba:{pc_ID}:code                  HASH   one promo code: doc (JSON of the whole record) and the fields
//	                                        scripts read or count atomically: status, state, unlimited,
//	                                        expires_ms, stock, reserved, uses
//	ba:{pc_ID}:lock                  STRING update lock token, with a lease (PX)
//	ba:{idem:H}                      HASH   one idempotency record, H = hex SHA-256 of (API key name, Idempotency-Key):
//	                                        state (running|done), fp (request fingerprint), token (attempt),
//	                                        status, ctype, body. Expires after the lease while running and
//	                                        after the configured TTL once done.
//
// Errors from Redis are returned as *promo.Error with promo.CodeUnavailable
// (HTTP 503); a missing object is promo.ErrNotFound.
package redisstore
