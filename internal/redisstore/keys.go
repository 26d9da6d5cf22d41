package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
)

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
//	ba:{pc_ID}:held                  ZSET   score 0, member redemption ID: the lines holding a unit of stock
//	ba:{pc_ID}:wait                  ZSET   score 0, member redemption ID: lines that need a unit and have
//	                                        none (flagged stock_exhausted); units go to lines in ID order
//	ba:{pc_ID}:cwait                 ZSET   score 0, member "customer|redemption ID": lines that need the
//	                                        customer's use another line holds (customer_already_redeemed)
//	ba:{pc_ID}:audit                 ZSET   score 0, member audit event ID (ULID-based: lexical = time order)
//	ba:{pc_ID}:ev                    HASH   audit event ID -> JSON promo.AuditEvent (written with MULTI)
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
//	ba:console:out:<session ID>      STRING "1" while a signed-out console session's cookie would still be
//	                                        valid (one key per session: no hot slot)
//	ba:evt:<event ID>                STRING "p:<token>" while a webhook event is processed (lease TTL),
//	                                        then "d" for 7 days (deduplication)
//	ba:{idem:H}                      HASH   one idempotency record, H = hex SHA-256 of (API key name,
//	                                        Idempotency-Key): state (running|done), fp (request
//	                                        fingerprint), token (attempt), status, ctype, body. Expires
//	                                        after the lease while running and after the TTL once done.

// The fixed keys.
const (
	keyCodes       = "ba:{catalog}:codes"
	keyProvisional = "ba:{catalog}:prov"
	keyListPrefix  = "ba:{catalog}:list:"
	keyStripeSync  = "ba:{catalog}:stripe_sync"
	keyDue         = "ba:{sweep}:due"
	keyPaid        = "ba:{customers}:paid"
	// keyClaims holds every subscription's claim as a field (a field costs
	// about half of a key of its own).
	keyClaims = "ba:{claims}"
)

// Each ready code is in exactly one status list; listing without a status
// merges the active and inactive lists, "all" the three.
var (
	activeList, inactiveList, archivedList = keyListPrefix + "active", keyListPrefix + "inactive", keyListPrefix + "archived"
	indexKeys                              = []string{keyCodes, keyProvisional, activeList, inactiveList, archivedList}
)

// One code's keys share its hash tag, so each ledger script runs on one
// Cluster slot.
func codeKey(id string) string       { return "ba:{" + id + "}:code" }
func rdKey(codeID string) string     { return "ba:{" + codeID + "}:rd" }
func ledgerKey(codeID string) string { return "ba:{" + codeID + "}:ledger" }
func custKey(codeID string) string   { return "ba:{" + codeID + "}:cust" }
func subsKey(codeID string) string   { return "ba:{" + codeID + "}:subs" }
func discKey(codeID string) string   { return "ba:{" + codeID + "}:disc" }
func invKey(codeID string) string    { return "ba:{" + codeID + "}:inv" }
func heldKey(codeID string) string   { return "ba:{" + codeID + "}:held" }
func waitKey(codeID string) string   { return "ba:{" + codeID + "}:wait" }
func cwaitKey(codeID string) string  { return "ba:{" + codeID + "}:cwait" }

// redemptionKeys are the KEYS of every ledger script, in the order the Lua
// headers name them: 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv,
// 8 held, 9 wait, 10 cwait.
func redemptionKeys(codeID string) []string {
	return []string{codeKey(codeID), rdKey(codeID), custKey(codeID), subsKey(codeID), ledgerKey(codeID),
		discKey(codeID), invKey(codeID), heldKey(codeID), waitKey(codeID), cwaitKey(codeID)}
}

// lockKey is the lease lock of a code or of a subscription (its own slot).
func lockKey(id string) string { return "ba:{" + id + "}:lock" }

// auditKey and auditEvKey are a code's audit trail: event IDs in order and
// the events.
func auditKey(codeID string) string   { return "ba:{" + codeID + "}:audit" }
func auditEvKey(codeID string) string { return "ba:{" + codeID + "}:ev" }

// signedOutKey marks a signed-out console session.
func signedOutKey(id string) string { return "ba:console:out:" + id }

// eventKey is a webhook event's dedup marker.
func eventKey(id string) string { return "ba:evt:" + id }

// idemKey is an idempotency record; key is (API key name, Idempotency-Key).
func idemKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return "ba:{idem:" + hex.EncodeToString(h[:]) + "}"
}
