package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Key schema. Every key starts with "ba:". Keys that one Lua script or
// transaction touches together share a hash tag ({...}) so that it runs on
// one Redis Cluster slot. No request path touches a fixed slot: a code text,
// a code, a subscription and a customer each have their own slot, and the
// sweeper's due marks are spread over dueShards slots. Only admin paths
// (create, update, list) touch {catalog}.
//
// Code texts (slot {ct:CODE}, one per text; CODE is upper-case)
//
//	ba:{ct:CODE}                     HASH   id -> the promo code ID holding the text, for a non-archived
//	                                        code (the case-insensitive uniqueness index: claimed
//	                                        atomically on this one key); prov -> JSON {id, owner, lease,
//	                                        terms} while a create is unfinished. For a campaign code,
//	                                        id -> "c<N>.<B>": campaign number N (ba:{cmpn:N}), generated
//	                                        in batch B (claimed with HSETNX; never freed, so a printed
//	                                        code never comes to mean another discount). Read only when
//	                                        the process does not know the text: the promo code hint
//	                                        (textcache.go), the campaign code index (cmpindex.go)
//
// Campaigns (slot {cmp_ID}; ~125 B of Redis per unredeemed code: its text key + 12 B in a chunk)
//
//	ba:{cmp_ID}:campaign             HASH   doc (JSON of the terms and admin fields), status, state
//	                                        (generating|ready), count, len (text length), batch (next
//	                                        batch to make: the progress cursor), generated, num
//	ba:{cmp_ID}:lease                STRING the replica generating the codes, with a lease (PX)
//	ba:{cmp_ID}:cand                 STRING "B|texts": the texts batch B is claiming (written before
//	                                        the claims, so a step cut short is finished by the next)
//	ba:{cmp_ID}:codes:<B>            STRING the texts of batch B, concatenated (each len long), in
//	                                        generation order; GETRANGE reads one
//	ba:{cmp_ID}:used                 HASH   code text -> the ID of the redemption that took it, once redeemed;
//	                                        "w|" + text -> the IDs (sorted, commas) of lines flagged
//	                                        code_already_used that hold a use and wait for the code
//	                                        (the first takes it when its holder gives it back)
//	ba:{cmpn:N}                      STRING the ID of campaign number N (resolves a text key's "c<N>.")
//	ba:{catalog}:campaigns:<status>  ZSET   score 0, member campaign ID, as the promo code lists
//	ba:{catalog}:campaigns:generating SET   campaigns whose codes are not all made (the workers' queue)
//	ba:{catalog}:campaigns:mirroring  SET   campaigns with queued Stripe promotion code work (the workers'
//	                                        list; a worker drops a campaign whose queues are empty). The
//	                                        queues themselves, ba:{cmp_ID}:mirror, :psync, and the records
//	                                        :ptext, :pcodes, :pstate, are built in campaigns.go
//	ba:{catalog}:campaign_seq        STRING the last campaign number given
//
// Catalog (admin paths only)
//
//	ba:{catalog}:list:<status>       ZSET   score 0, member promo code ID: the ready codes with that status
//	                                        (active, inactive, archived; each code is in exactly one).
//	                                        Members are ULID-based IDs, so lexical order is creation order:
//	                                        lists page with ZRANGE BYLEX REV, merged across statuses.
//	ba:{catalog}:stripe_sync         SET    codes whose Stripe promotion code must be switched on or off
//	ba:{catalog}:layout              STRING the layout version the data is known to be in: "2" once every
//	                                        ledger line's customer has its ba:{cus_ID}:codes member (written by
//	                                        migrate-keys after it wrote them, and by a replica starting on an
//	                                        empty store). Read at start-up and every layoutRecheck, never per
//	                                        request: until it says 2, validate reads the code's slot as before
//
// One code (slot {pc_ID})
//
//	ba:{pc_ID}:code                  HASH   doc (JSON of the admin-set fields and Stripe refs) and the
//	                                        fields scripts read or count atomically: status, state,
//	                                        unlimited, expires_ms, many ("1": a campaign with
//	                                        once_per_customer false; absent: the customer's one use is
//	                                        enforced), stock (units left), reserved (applies
//	                                        in flight), held (units held by redemptions; stock + held is
//	                                        the limit), uses, stripe_redeemed (Stripe's times_redeemed),
//	                                        amt:<currency> (discount on paid invoices, minor units);
//	                                        for a campaign, redeemed (its codes whose single use is held:
//	                                        ba:{cmp_ID}:used names a line that holds_use; kept by the
//	                                        ledger scripts' save, counted once by campaign_redeemed.lua
//	                                        for a campaign made before the counter)
//	ba:{pc_ID}:lock                  STRING update lock token, with a lease (PX)
//	ba:{pc_ID}:rd                    HASH   redemption ID -> JSON ledger line (short field names)
//	ba:{pc_ID}:ledger                ZSET   score 0, member redemption ID (ULID: lexical = creation order)
//	ba:{pc_ID}:cust                  HASH   customer -> redemption ID holding the customer's one use
//	                                        (never written for a code with many = "1": no such use)
//	ba:{pc_ID}:subs                  HASH   subscription -> the code's live redemption on it
//	ba:{pc_ID}:disc                  HASH   Stripe discount ID -> redemption ID (webhooks, rebuilds)
//	ba:{pc_ID}:inv:<invoice ID>      STRING "1": the paid invoice was counted (each counts once); expires
//	                                        InvoiceKeep (7 days, beyond Stripe's 3-day retries) after it
//	                                        was counted, so counted invoices do not pile up
//	ba:{pc_ID}:held                  ZSET   score 0, member redemption ID: the lines holding a unit of stock
//	ba:{pc_ID}:wait                  ZSET   score 0, member redemption ID: lines that need a unit and have
//	                                        none (flagged stock_exhausted); units go to lines in ID order
//	ba:{pc_ID}:cwait                 ZSET   score 0, member "customer|redemption ID": lines that need the
//	                                        customer's use another line holds (customer_already_redeemed)
//	ba:{pc_ID}:<key>:rebuilding      the rd, cust, subs, ledger, disc, held, wait and cwait keys of a ledger
//	                                        reconcile -fix rebuilds in batches (over rebuildBatch lines; rd starts
//	                                        as a COPY of the code's), renamed over the code's keys in its final
//	                                        transaction; read by nothing else
//	ba:{pc_ID}:audit                 ZSET   score 0, member audit event ID (ULID-based: lexical = time order)
//	ba:{pc_ID}:ev                    HASH   audit event ID -> JSON promo.AuditEvent (written with MULTI)
//
// One subscription (slot {sub_ID})
//
//	ba:{sub_ID}:lock                 STRING apply lock token, with a lease (PX)
//	ba:{sub_ID}:claim                STRING "promo code ID|redemption ID": the subscription's live
//	                                        adapter redemption (one promo code per subscription; written
//	                                        under the subscription's lock)
//
// One customer (slot {cus_ID})
//
//	ba:{cus_ID}:paid                 STRING "1" while the customer counts as having paid (new_users_only):
//	                                        expires PaidKeep after the customer's latest paid invoice
//	                                        above zero (Stripe's paid_at); a later invoice moves it on
//	ba:{cus_ID}:codes                SET    the codes (promo code and campaign IDs) on which the customer has,
//	                                        or may have, a ledger line: written (SADD) before any path makes a
//	                                        line naming the customer (reserve, the adoption of a discount made
//	                                        outside the adapter, reconcile -fix's rebuild; markers.go), never
//	                                        removed. Validate reads it in the customer's slot instead of the
//	                                        code's cust hash; a member without a line costs validate one more
//	                                        read, a line without its member must not exist (once migrated: see
//	                                        ba:{catalog}:layout)
//
// Sweeper (dueShards slots)
//
//	ba:{sweep:NN}:due                ZSET   "pc_ID/rd_ID" scored by lease end (ms), NN = dueShard(rd_ID)
//	                                        (00..15): reservations the sweeper settles if their request
//	                                        does not; written before the reservation, removed once it is
//	                                        confirmed or released. The sweeper reads every shard.
//
// Anywhere (each key its own slot)
//
//	ba:console:out:<session ID>      STRING "1" while a signed-out console session's cookie would still be
//	                                        valid (one key per session: no hot slot)
//	ba:evt:<event ID>                STRING "p:<token>" while a webhook event is processed (lease TTL),
//	                                        then "d" for 7 days (deduplication)
//	ba:{idem:H}:r                    STRING one idempotency record, H = hex SHA-256 of (API key name,
//	                                        Idempotency-Key): "r\n<fingerprint>\n<attempt token>" while
//	                                        its request runs (expires after the lease), then
//	                                        "d\n<fingerprint>\n<status>\n<encoding>\n<content type>\n<body>"
//	                                        (expires after the TTL; a body of 256 B or more DEFLATE-compressed)
//	ba:{idem:H}                      HASH   the same record in the previous layout (state, fp, token,
//	                                        status, ctype, body): read, never written, until it expires
//
// Before this layout (migrated by MigrateLegacyKeys, `billing-adapter migrate-keys`): ba:{catalog}:codes
// and ba:{catalog}:prov (HASHes by code text), ba:{claims} (HASH by subscription), ba:{customers}:paid
// (SET), ba:{sweep}:due (ZSET), ba:{pc_ID}:inv (SET of invoice IDs).

// The fixed keys (admin paths only).
const (
	keyListPrefix = "ba:{catalog}:list:"
	keyStripeSync = "ba:{catalog}:stripe_sync"
)

// Each ready code is in exactly one status list; listing without a status
// merges the active and inactive lists, "all" the three.
var (
	activeList, inactiveList, archivedList = keyListPrefix + "active", keyListPrefix + "inactive", keyListPrefix + "archived"
	listKeys                               = []string{activeList, inactiveList, archivedList}
)

// Campaign keys (see the schema above).
const (
	keyCampaignListPrefix  = "ba:{catalog}:campaigns:"
	keyCampaignsGenerating = "ba:{catalog}:campaigns:generating"
	keyCampaignSeq         = "ba:{catalog}:campaign_seq"
)

var campaignListKeys = []string{keyCampaignListPrefix + "active", keyCampaignListPrefix + "inactive", keyCampaignListPrefix + "archived"}

func campaignKey(id string) string      { return "ba:{" + id + "}:campaign" }
func campaignLeaseKey(id string) string { return "ba:{" + id + "}:lease" }
func campaignCandKey(id string) string  { return "ba:{" + id + "}:cand" }
func campaignUsedKey(id string) string  { return "ba:{" + id + "}:used" }

// codeWaitersPrefix starts the fields of a campaign's used hash that list
// the lines waiting for a code (ledger_prelude.lua's codeWaiters).
const codeWaitersPrefix = "w|"

// codeWaitersField is the used hash's field listing text's waiting lines.
func codeWaitersField(text string) string { return codeWaitersPrefix + text }
func campaignChunkKey(id string, batch int) string {
	return "ba:{" + id + "}:codes:" + strconv.Itoa(batch)
}
func campaignNumKey(num int64) string { return "ba:{cmpn:" + strconv.FormatInt(num, 10) + "}" }

// campaignTextRef is the text key's id of a campaign code.
func campaignTextRef(num int64, batch int) string {
	return "c" + strconv.FormatInt(num, 10) + "." + strconv.Itoa(batch)
}

// parseCampaignTextRef reads a text key's id written by campaignTextRef.
func parseCampaignTextRef(ref string) (num int64, batch int, ok bool) {
	if len(ref) < 4 || ref[0] != 'c' {
		return 0, 0, false
	}
	n, b, found := strings.Cut(ref[1:], ".")
	if !found {
		return 0, 0, false
	}
	num, err1 := strconv.ParseInt(n, 10, 64)
	bi, err2 := strconv.Atoi(b)
	return num, bi, err1 == nil && err2 == nil
}

// codeTextKey is the uniqueness index entry of one code text (upper-case).
func codeTextKey(code string) string { return "ba:{ct:" + code + "}" }

// claimKey is a subscription's claim (the slot of its lock).
func claimKey(sub string) string { return "ba:{" + sub + "}:claim" }

// paidKey marks a customer with a paid invoice.
func paidKey(customer string) string { return "ba:{" + customer + "}:paid" }

// customerCodesKey is the customer's markers: the codes on which the
// customer has or may have a ledger line (markers.go).
func customerCodesKey(customer string) string { return "ba:{" + customer + "}:codes" }

// keyLayout holds the layout version the data is in (markers.go).
const keyLayout = "ba:{catalog}:layout"

// dueShards is how many sorted sets hold the sweeper's due marks. It is
// part of the key schema: changing it strands the marks of the old shards.
const dueShards = 16

// dueShard picks a redemption's shard (FNV-1a of its ID).
func dueShard(rdID string) int {
	h := uint32(2166136261)
	for i := 0; i < len(rdID); i++ {
		h ^= uint32(rdID[i])
		h *= 16777619
	}
	return int(h % dueShards)
}

// dueKey is one shard of the sweeper's marks.
func dueKey(shard int) string { return fmt.Sprintf("ba:{sweep:%02d}:due", shard) }

// One code's keys share its hash tag, so each ledger script runs on one
// Cluster slot.
func codeKey(id string) string       { return "ba:{" + id + "}:code" }
func rdKey(codeID string) string     { return "ba:{" + codeID + "}:rd" }
func ledgerKey(codeID string) string { return "ba:{" + codeID + "}:ledger" }
func custKey(codeID string) string   { return "ba:{" + codeID + "}:cust" }
func subsKey(codeID string) string   { return "ba:{" + codeID + "}:subs" }
func discKey(codeID string) string   { return "ba:{" + codeID + "}:disc" }
func heldKey(codeID string) string   { return "ba:{" + codeID + "}:held" }
func waitKey(codeID string) string   { return "ba:{" + codeID + "}:wait" }
func cwaitKey(codeID string) string  { return "ba:{" + codeID + "}:cwait" }

// invKey is the mark of one counted invoice of a code.
func invKey(codeID, invoiceID string) string { return "ba:{" + codeID + "}:inv:" + invoiceID }

// redemptionKeys are the KEYS of every ledger script, in the order the Lua
// headers name them: 1 code, 2 rd, 3 cust, 4 subs, 5 ledger, 6 disc, 7 inv
// (the counted mark of the invoice the script is about; "" names none, for
// the scripts that count no invoice), 8 held, 9 wait, 10 cwait, 11 used (a
// campaign's codes: code text -> the redemption that took it; a campaign is
// a code of the ledger, its ID the code ID; "w|" + text fields: the lines
// waiting for that code).
func redemptionKeys(codeID string) []string { return redemptionKeysFor(codeID, "") }

// redemptionKeysFor is redemptionKeys for a script about one invoice.
func redemptionKeysFor(codeID, invoiceID string) []string {
	return []string{codeKey(codeID), rdKey(codeID), custKey(codeID), subsKey(codeID), ledgerKey(codeID),
		discKey(codeID), invKey(codeID, invoiceID), heldKey(codeID), waitKey(codeID), cwaitKey(codeID), campaignUsedKey(codeID)}
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
func idemKey(key string) string { return legacyIdemKey(key) + ":r" }

// legacyIdemKey is the record in the previous layout (a hash), in the same
// slot: read until it expires.
func legacyIdemKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return "ba:{idem:" + hex.EncodeToString(h[:]) + "}"
}
