package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// Campaign scripts: lua/campaign_*.lua.
var (
	campaignLeaseScript      = plainScript("campaign_lease")
	campaignCandidatesScript = plainScript("campaign_candidates")
	campaignCommitScript     = plainScript("campaign_commit")
)

// campaignDoc is the stored JSON of a campaign (hash field "doc"): the
// terms, name and admin fields; status, state and progress are hash fields.
type campaignDoc struct {
	V        int               `json:"v"`
	Name     string            `json:"n"`
	Prefix   string            `json:"px,omitempty"`
	CodeLen  int               `json:"cl"`
	Type     promo.PromoType   `json:"t"`
	Amount   int64             `json:"a"`
	Currency string            `json:"cur,omitempty"`
	Duration promo.Duration    `json:"d"`
	Months   int               `json:"m,omitempty"`
	Expires  int64             `json:"x,omitempty"`
	NewUsers bool              `json:"nu,omitempty"`
	Members  bool              `json:"em,omitempty"`
	Many     bool              `json:"mpc,omitempty"` // once_per_customer false (absent: true, as before the option)
	Plans    []string          `json:"pl,omitempty"`
	Products []string          `json:"pp,omitempty"`
	Metadata map[string]string `json:"md,omitempty"`
	Coupon   string            `json:"sc"`
	Reason   string            `json:"why,omitempty"` // StatusReason (stripe_coupon_deleted)
	Created  int64             `json:"ct"`
	Updated  int64             `json:"ut"`
}

func campaignDocOf(c *promo.Campaign) campaignDoc {
	t := &c.Terms
	return campaignDoc{V: 1, Name: c.Name, Prefix: c.Prefix, CodeLen: c.CodeLength,
		Type: t.PromoType, Amount: t.AmountOff, Currency: t.Currency, Duration: t.Duration, Months: t.DurationMonths,
		Expires: msPtr(t.ExpiresAt), NewUsers: t.NewUsersOnly, Members: t.ExistingMembershipsOnly, Many: t.ManyPerCustomer, Plans: t.PlanIDs,
		Products: t.PlanProducts, Metadata: t.Metadata, Coupon: t.Stripe.CouponID, Reason: t.StatusReason,
		Created: ms(c.CreatedAt), Updated: ms(c.UpdatedAt)}
}

func decodeCampaign(id string, h map[string]string) (*promo.Campaign, error) {
	raw, ok := h["doc"]
	if !ok {
		return nil, promo.ErrNotFound
	}
	var d campaignDoc
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return nil, fmt.Errorf("campaign %s: bad stored document: %w", id, err)
	}
	created, updated := time.UnixMilli(d.Created).UTC(), time.UnixMilli(d.Updated).UTC()
	c := &promo.Campaign{
		ID: id, Name: d.Name, Prefix: d.Prefix, CodeLength: d.CodeLen,
		Count: int(atoi(h["count"])), State: promo.CampaignState(h["state"]), Generated: int(atoi(h["generated"])),
		Mirrored: int(atoi(h["mirrored"])), CreatedAt: created, UpdatedAt: updated,
		Terms: promo.PromoCode{
			ID: id, PromoType: d.Type, AmountOff: d.Amount, Currency: d.Currency, Duration: d.Duration,
			DurationMonths: d.Months, ExpiresAt: timePtr(d.Expires), NewUsersOnly: d.NewUsers,
			ExistingMembershipsOnly: d.Members, ManyPerCustomer: d.Many, PlanIDs: d.Plans, PlanProducts: d.Products, UnlimitedStock: true,
			Status: promo.Status(h["status"]), StatusReason: d.Reason, Metadata: d.Metadata, CreatedAt: created, UpdatedAt: updated,
			Stripe: promo.StripeRefs{CouponID: d.Coupon, State: promo.SyncReady},
		},
	}
	return c, nil
}

// campaignNum is the campaign's number (the text keys' reference to it).
func (s *Store) campaignNum(ctx context.Context, id string) (int64, error) {
	n, err := s.rdb.HGet(ctx, campaignKey(id), "num").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, promo.ErrNotFound
	}
	return n, unavailable(err)
}

// CreateCampaign implements promo.CampaignStore. The record is written
// before the campaign is queued and listed, and each later write is
// idempotent; a crash in between leaves an unlisted record (the create's
// retry makes a new campaign).
func (s *Store) CreateCampaign(ctx context.Context, c *promo.Campaign) error {
	defer s.dropSnapshot(c.ID) // the code record (markers.go: validate's snapshots)
	num, err := s.rdb.Incr(ctx, keyCampaignSeq).Result()
	if err != nil {
		return unavailable(err)
	}
	doc, err := json.Marshal(campaignDocOf(c))
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, campaignNumKey(num), c.ID, 0).Err(); err != nil {
		return unavailable(err)
	}
	if err := s.rdb.HSet(ctx, campaignKey(c.ID), "doc", doc, "status", string(c.Terms.Status), "state", string(c.State),
		"count", c.Count, "len", c.CodeTextLength(), "batch", 0, "generated", 0, "num", num).Err(); err != nil {
		return unavailable(err)
	}
	// The campaign is a code of the ledger (its ID the code ID): the
	// redemption scripts read its status, expiry and coupon there.
	if err := s.writeCampaignCode(ctx, c); err != nil {
		return err
	}
	// No code is redeemed yet; the ledger scripts keep the count from here.
	if err := s.rdb.HSetNX(ctx, codeKey(c.ID), "redeemed", 0).Err(); err != nil {
		return unavailable(err)
	}
	if err := s.rdb.SAdd(ctx, keyCampaignsGenerating, c.ID).Err(); err != nil {
		return unavailable(err)
	}
	return unavailable(indexScript.Run(ctx, s.rdb, campaignListKeys, c.ID, string(c.Terms.Status)).Err())
}

// writeCampaignCode writes the campaign's code record (codeKey of its ID):
// the terms every code of the campaign is redeemed under, unlimited stock
// (each code is single-use by itself: ba:{cmp_ID}:used), ready, no
// promotion code of its own.
func (s *Store) writeCampaignCode(ctx context.Context, c *promo.Campaign) error {
	t := c.Terms
	t.ID, t.Code, t.UnlimitedStock = c.ID, "", true
	t.Stripe.State, t.Stripe.PromotionCodeID = promo.SyncReady, ""
	return s.writeCode(ctx, &t, false)
}

// GetCampaign implements promo.CampaignStore.
func (s *Store) GetCampaign(ctx context.Context, id string) (*promo.Campaign, error) {
	if !strings.HasPrefix(id, "cmp_") {
		return nil, promo.ErrNotFound
	}
	h, err := s.rdb.HGetAll(ctx, campaignKey(id)).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	c, err := decodeCampaign(id, h)
	if err != nil {
		return nil, err
	}
	return c, s.withRedeemed(ctx, c)
}

// campaignRedeemedScript: lua/campaign_redeemed.lua.
var campaignRedeemedScript = ledgerScript("campaign_redeemed")

// withRedeemed reads the campaign's count of redeemed codes: one field of
// its code record, kept by the ledger scripts (counted once, on the first
// read, for a campaign made before the counter).
func (s *Store) withRedeemed(ctx context.Context, c *promo.Campaign) error {
	defer s.dropSnapshot(c.ID) // the script may write the counter into the code record
	n, err := campaignRedeemedScript.Run(ctx, s.rdb, redemptionKeys(c.ID)).Int()
	if err != nil {
		return unavailable(err)
	}
	c.Redeemed = n
	return nil
}

// ListCampaigns implements promo.CampaignStore.
func (s *Store) ListCampaigns(ctx context.Context, f promo.ListFilter) (promo.Page[*promo.Campaign], error) {
	var page promo.Page[*promo.Campaign]
	var lists []string
	switch f.Status {
	case "":
		lists = campaignListKeys[:2]
	case promo.StatusAll:
		lists = campaignListKeys
	default:
		lists = []string{keyCampaignListPrefix + string(f.Status)}
	}
	ids, hasMore, err := s.pageIDs(ctx, lists, f.Limit, f.StartingAfter)
	if err != nil {
		return page, err
	}
	page.HasMore = hasMore
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	counts := make([]*redis.StringCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, campaignKey(id))
			counts[i] = p.HGet(ctx, codeKey(id), "redeemed")
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return page, unavailable(err)
	}
	for i, cmd := range cmds {
		c, err := decodeCampaign(ids[i], cmd.Val())
		if errors.Is(err, promo.ErrNotFound) {
			continue
		}
		if err != nil {
			return page, err
		}
		if n, err := counts[i].Int(); err == nil {
			c.Redeemed = n
		} else if err := s.withRedeemed(ctx, c); err != nil { // no counter yet: counted once
			return page, err
		}
		page.Data = append(page.Data, c)
	}
	return page, nil
}

// SaveCampaign implements promo.CampaignStore. Validate's snapshot of the
// campaign's code record is dropped by writeCode (status, expiry and terms
// live there).
func (s *Store) SaveCampaign(ctx context.Context, c *promo.Campaign) error {
	doc, err := json.Marshal(campaignDocOf(c))
	if err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, campaignKey(c.ID), "doc", doc, "status", string(c.Terms.Status)).Err(); err != nil {
		return unavailable(err)
	}
	if err := s.writeCampaignCode(ctx, c); err != nil {
		return err
	}
	return unavailable(indexScript.Run(ctx, s.rdb, campaignListKeys, c.ID, string(c.Terms.Status)).Err())
}

// GeneratingCampaigns implements promo.CampaignStore; finished campaigns
// still queued (a crash after their last step) are dequeued here.
func (s *Store) GeneratingCampaigns(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, keyCampaignsGenerating).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	var out []string
	for _, id := range ids {
		h, err := s.rdb.HMGet(ctx, campaignKey(id), "state", "doc").Result()
		if err != nil {
			return nil, unavailable(err)
		}
		if h[1] == nil || h[0] == string(promo.CampaignReady) {
			if err := s.rdb.SRem(ctx, keyCampaignsGenerating, id).Err(); err != nil {
				return nil, unavailable(err)
			}
			continue
		}
		out = append(out, id)
	}
	return out, nil
}

// LeaseGeneration implements promo.CampaignStore.
func (s *Store) LeaseGeneration(ctx context.Context, id, owner string, ttl time.Duration) (bool, error) {
	n, err := campaignLeaseScript.Run(ctx, s.rdb, []string{campaignLeaseKey(id)}, owner, ttl.Milliseconds()).Int()
	return n == 1, unavailable(err)
}

// GenerateStep implements promo.CampaignStore. One step makes batch B (the
// cursor): it records its candidate texts (lua/campaign_candidates.lua),
// claims each one's text key with HSETNX id "c<N>.<B>", draws again for
// the texts another code holds, and commits the claimed texts as chunk B
// (lua/campaign_commit.lua). A step cut short anywhere leaves its
// candidates recorded: the next step (any owner) claims them again, and
// the texts already claimed for batch B answer with B's own reference, so
// they are kept, never lost, and never counted twice.
func (s *Store) GenerateStep(ctx context.Context, c *promo.Campaign, owner string, max int,
	draw func(n int) ([]string, error)) (int, error) {
	h, err := s.rdb.HMGet(ctx, campaignKey(c.ID), "batch", "generated", "count", "num", "len").Result()
	if err != nil {
		return 0, unavailable(err)
	}
	batch, generated, count, num, width := int(atoiAny(h[0])), int(atoiAny(h[1])), int(atoiAny(h[2])), atoiAny(h[3]), int(atoiAny(h[4]))
	if num == 0 || width == 0 {
		return 0, promo.ErrNotFound
	}
	if generated >= count {
		return generated, nil
	}
	want := min(max, count-generated)
	keys := []string{campaignKey(c.ID), campaignCandKey(c.ID), campaignLeaseKey(c.ID)}
	var cand []string
	raw, err := s.rdb.Get(ctx, campaignCandKey(c.ID)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, unavailable(err)
	}
	if b, texts, ok := strings.Cut(raw, "|"); ok && b == strconv.Itoa(batch) {
		cand = splitTexts(texts, width)
	}
	ref := campaignTextRef(num, batch)
	var mine []string
	for attempt := 0; ; attempt++ {
		if len(cand) < want {
			fresh, err := draw(want - len(cand))
			if err != nil {
				return 0, err
			}
			for _, t := range fresh {
				if len(t) != width {
					return 0, fmt.Errorf("campaign %s: drew %q, not %d characters long", c.ID, t, width)
				}
			}
			cand = dedupTexts(append(cand, fresh...))
		}
		ok, err := campaignCandidatesScript.Run(ctx, s.rdb, keys, owner, batch, strings.Join(cand, "")).Int()
		if err != nil {
			return 0, unavailable(err)
		}
		if ok == 0 {
			return 0, errLeaseLost(c.ID, batch)
		}
		if mine, err = s.claimTexts(ctx, cand, ref); err != nil {
			return 0, err
		}
		if len(mine) >= want || attempt == 20 {
			break
		}
		cand = mine // the texts others hold are dropped; draw their replacements
	}
	if len(mine) > want {
		mine = mine[:want] // cannot happen: candidates never exceed want
	}
	n, err := campaignCommitScript.Run(ctx, s.rdb, append(keys, campaignChunkKey(c.ID, batch)), owner, batch,
		strings.Join(mine, ""), len(mine)).Int()
	if err != nil {
		return 0, unavailable(err)
	}
	if n < 0 {
		return 0, errLeaseLost(c.ID, batch)
	}
	if n >= count {
		if err := s.rdb.SRem(ctx, keyCampaignsGenerating, c.ID).Err(); err != nil {
			return 0, unavailable(err)
		}
	}
	return n, nil
}

// errLeaseLost stops a step whose owner lost the lease (another replica
// took the campaign over after the lease ran out).
func errLeaseLost(id string, batch int) error {
	return promo.Errorf(promo.CodeConflict, "campaign %s: generation of batch %d was taken over by another replica", id, batch)
}

// claimTexts claims each text for ref (HSETNX) and returns, in order, those
// that ref holds: claimed now, or by an earlier attempt of the same batch.
func (s *Store) claimTexts(ctx context.Context, texts []string, ref string) ([]string, error) {
	cmds := make([]*redis.StringCmd, len(texts))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range texts {
			key := codeTextKey(t)
			p.HSetNX(ctx, key, "id", ref)
			cmds[i] = p.HGet(ctx, key, "id")
		}
		return nil
	}); err != nil {
		return nil, unavailable(err)
	}
	mine := texts[:0:0]
	for i, cmd := range cmds {
		if cmd.Val() == ref {
			mine = append(mine, texts[i])
		}
	}
	return mine, nil
}

func splitTexts(s string, width int) []string {
	out := make([]string, 0, len(s)/width)
	for i := 0; i+width <= len(s); i += width {
		out = append(out, s[i:i+width])
	}
	return out
}

func dedupTexts(texts []string) []string {
	seen := make(map[string]bool, len(texts))
	out := texts[:0]
	for _, t := range texts {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

func atoiAny(v any) int64 {
	s, _ := v.(string)
	return atoi(s)
}

// chunkCodes reads chunk b and who holds each of its texts: a text is
// redeemed while the redemption that took it (ba:{cmp_ID}:used) holds its
// use (promo.Redemption.HoldsUse: the rule of the reservation script).
func (s *Store) chunkCodes(ctx context.Context, c *promo.Campaign, b int) ([]promo.CampaignCode, error) {
	raw, err := s.rdb.Get(ctx, campaignChunkKey(c.ID, b)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	texts := splitTexts(raw, c.CodeTextLength())
	if len(texts) == 0 {
		return nil, nil
	}
	used, err := s.rdb.HMGet(ctx, campaignUsedKey(c.ID), texts...).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	var promos, states []any
	if c.Mirrored > 0 {
		if promos, err = s.rdb.HMGet(ctx, campaignPTextKey(c.ID), texts...).Result(); err != nil {
			return nil, unavailable(err)
		}
		if states, err = s.rdb.HMGet(ctx, campaignPStateKey(c.ID), texts...).Result(); err != nil {
			return nil, unavailable(err)
		}
	}
	out := make([]promo.CampaignCode, len(texts))
	var ids []string
	var at []int
	for i, t := range texts {
		out[i] = promo.CampaignCode{Code: t}
		if promos != nil {
			out[i].PromotionCodeID, _ = promos[i].(string)
			var st promo.CodeSync
			if parsePState(&st, states[i]); st.Known && out[i].PromotionCodeID != "" {
				out[i].PromotionCodeActive = &st.Active
			}
		}
		if id, ok := used[i].(string); ok && id != "" {
			ids, at = append(ids, id), append(at, i)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	lines, err := s.rdb.HMGet(ctx, rdKey(c.ID), ids...).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	for j, l := range lines {
		raw, _ := l.(string)
		if raw == "" {
			continue
		}
		rd, err := decodeRedemption(c.ID, ids[j], raw)
		if err != nil {
			return nil, err
		}
		if rd.HoldsUse() {
			out[at[j]].Redeemed = true
			out[at[j]].Redemption = &promo.CodeRedemption{ID: rd.ID, Customer: rd.Customer,
				Subscription: rd.Subscription, At: rd.CreatedAt}
		}
	}
	return out, nil
}

// batches is how many chunks the campaign has written.
func (s *Store) batches(ctx context.Context, id string) (int, error) {
	n, err := s.rdb.HGet(ctx, campaignKey(id), "batch").Int()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, unavailable(err)
}

// CampaignCodes implements promo.CampaignStore. starting_after is a code
// text: its text key names its batch, so the page starts in that chunk.
func (s *Store) CampaignCodes(ctx context.Context, c *promo.Campaign, f promo.CampaignCodesFilter) (promo.Page[promo.CampaignCode], error) {
	var page promo.Page[promo.CampaignCode]
	n, err := s.batches(ctx, c.ID)
	if err != nil {
		return page, err
	}
	start, after := 0, ""
	if f.StartingAfter != "" {
		after = promo.NormalizeCode(f.StartingAfter)
		b, err := s.textBatch(ctx, c, after)
		if err != nil {
			return page, err
		}
		start = b
	}
	for b := start; b < n; b++ {
		codes, err := s.chunkCodes(ctx, c, b)
		if err != nil {
			return page, err
		}
		for _, code := range codes {
			if after != "" {
				if code.Code == after {
					after = ""
				}
				continue
			}
			if f.Redeemed != nil && code.Redeemed != *f.Redeemed {
				continue
			}
			if len(page.Data) == f.Limit {
				page.HasMore = true
				return page, nil
			}
			page.Data = append(page.Data, code)
		}
	}
	return page, nil
}

// textBatch is the batch of one of c's texts (starting_after of a page).
func (s *Store) textBatch(ctx context.Context, c *promo.Campaign, text string) (int, error) {
	ref, err := s.rdb.HGet(ctx, codeTextKey(text), "id").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, unavailable(err)
	}
	num, err := s.campaignNum(ctx, c.ID)
	if err != nil {
		return 0, err
	}
	n, b, ok := parseCampaignTextRef(ref)
	if !ok || n != num {
		return 0, promo.Invalid("starting_after", "starting_after must be a code of campaign %s", c.ID)
	}
	return b, nil
}

// EachCampaignCode implements promo.CampaignStore: one chunk in memory.
func (s *Store) EachCampaignCode(ctx context.Context, c *promo.Campaign, fn func(promo.CampaignCode) error) error {
	n, err := s.batches(ctx, c.ID)
	if err != nil {
		return err
	}
	for b := 0; b < n; b++ {
		codes, err := s.chunkCodes(ctx, c, b)
		if err != nil {
			return err
		}
		for _, code := range codes {
			if err := fn(code); err != nil {
				return err
			}
		}
	}
	return nil
}

// campaignCodeForCustomerScript: lua/campaign_code_for_customer.lua.
var campaignCodeForCustomerScript = plainScript("campaign_code_for_customer")

// textOwner is the promo code ID or campaign ID holding a code text, and
// for a campaign's text the batch it was generated in (-1 for a promo code).
func (s *Store) textOwner(ctx context.Context, text string) (string, int, error) {
	ref, err := s.rdb.HGet(ctx, codeTextKey(text), "id").Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, promo.ErrNotFound
	}
	if err != nil {
		return "", 0, unavailable(err)
	}
	if strings.HasPrefix(ref, "pc_") {
		return ref, -1, nil
	}
	num, batch, ok := parseCampaignTextRef(ref)
	if !ok {
		return "", 0, promo.ErrNotFound
	}
	id, err := s.campaignID(ctx, num)
	return id, batch, err
}

// campaignID resolves a campaign number (cached: it never changes).
func (s *Store) campaignID(ctx context.Context, num int64) (string, error) {
	if id, ok := s.campaignIDs.Load(num); ok {
		return id.(string), nil
	}
	id, err := s.rdb.Get(ctx, campaignNumKey(num)).Result()
	if errors.Is(err, redis.Nil) {
		return "", promo.ErrNotFound
	}
	if err != nil {
		return "", unavailable(err)
	}
	s.campaignIDs.Store(num, id)
	return id, nil
}

// campaignCodeForCustomer is GetByCodeForCustomer for a campaign code: the
// campaign's code record, the customer's redemption of the campaign and
// the code's holder, in one script on the campaign's slot, read fresh, put
// together by campaignCode.
func (s *Store) campaignCodeForCustomer(ctx context.Context, cmpID, text, customer string) (*promo.PromoCode, *promo.Redemption, error) {
	res, err := s.runShared(ctx, s.shared.do, campaignCodeForCustomerScript,
		[]string{codeKey(cmpID), rdKey(cmpID), custKey(cmpID), campaignUsedKey(cmpID)}, customer, text).Slice()
	if err != nil {
		return nil, nil, unavailable(err)
	}
	if len(res) != 5 {
		return nil, nil, unavailable(fmt.Errorf("unexpected campaign code read answer of %d items", len(res)))
	}
	flat, _ := res[0].([]any)
	base, err := s.docs.decode(cmpID, flatHash(flat)) // the terms' JSON parsed once per change, as a promo code's
	if err != nil {
		return nil, nil, err
	}
	return campaignCode(cmpID, base, text, customer, campaignUsesOf(res[1:]))
}

// campaignCodeUsesScript: lua/campaign_code_uses.lua.
var campaignCodeUsesScript = plainScript("campaign_code_uses")

// campaignUses is what a read of one campaign code takes from the
// campaign's ledger, never from a snapshot: the customer's redemption of
// the campaign and the redemption holding the code's text (raw records and
// their IDs, "" when none), as campaign_code_for_customer.lua and
// campaign_code_uses.lua return them.
type campaignUses struct{ raw, id, holderRaw, holderID string }

// campaignUsesOf reads the four items {customer's record, its ID, holder's
// record, its ID} of a script's answer.
func campaignUsesOf(res []any) campaignUses {
	return campaignUses{raw: str(res[0]), id: str(res[1]), holderRaw: str(res[2]), holderID: str(res[3])}
}

// campaignUsesFor reads u for validate (lua/campaign_code_uses.lua): one
// read-only script on the campaign's slot, in a shared pipeline.
func (s *Store) campaignUsesFor(ctx context.Context, cmpID, text, customer string) (campaignUses, error) {
	res, err := s.runShared(ctx, s.shared.do, campaignCodeUsesScript,
		[]string{rdKey(cmpID), custKey(cmpID), campaignUsedKey(cmpID)}, customer, text).Slice()
	if err != nil {
		return campaignUses{}, unavailable(err)
	}
	if len(res) != 4 {
		return campaignUses{}, unavailable(fmt.Errorf("unexpected campaign code uses answer of %d items", len(res)))
	}
	return campaignUsesOf(res), nil
}

// campaignCode is the campaign's code record base seen as the code text
// (promo.PromoCode.IsCampaignCode: Code the text, Stock 1 while no
// redemption holds the text, else 0) and the customer's redemption of the
// campaign (for a campaign without the customer rule, ManyPerCustomer: the
// customer's redemption holding this code), from the ledger's parts u. An
// archived campaign's code is not found. base is not changed (it may be a
// snapshot shared by validates): the answer is a copy.
func campaignCode(cmpID string, base *promo.PromoCode, text, customer string, u campaignUses) (*promo.PromoCode, *promo.Redemption, error) {
	if base.Status == promo.StatusArchived {
		return nil, nil, promo.ErrNotFound // as an archived promo code's text: no such code
	}
	p := *base
	p.Code, p.UnlimitedStock, p.Stock = text, false, 1
	var holder *promo.Redemption
	if u.holderRaw != "" {
		var err error
		if holder, err = decodeRedemption(cmpID, u.holderID, u.holderRaw); err != nil {
			return nil, nil, err
		}
		if holder.HoldsUse() {
			p.Stock = 0
		}
	}
	if p.ManyPerCustomer {
		// No one use of the campaign per customer: the customer's
		// redemption that matters is the one holding this code, if any
		// (a retry of the request that took it resumes it).
		if holder != nil && holder.Customer == customer && holder.HoldsUse() {
			return &p, holder, nil
		}
		return &p, nil, nil
	}
	var rd *promo.Redemption
	if u.raw != "" {
		var err error
		if rd, err = decodeRedemption(cmpID, u.id, u.raw); err != nil {
			return nil, nil, err
		}
	}
	return &p, rd, nil
}

// Mirror keys: the campaign's on-demand Stripe promotion codes.
func campaignMirrorKey(id string) string { return "ba:{" + id + "}:mirror" } // ZSET queued texts
func campaignPTextKey(id string) string  { return "ba:{" + id + "}:ptext" }  // HASH text -> promotion code ID
func campaignPCodesKey(id string) string { return "ba:{" + id + "}:pcodes" } // HASH promotion code ID -> text
// campaignPStateKey: what is known of each promotion code: text -> "<1|0>:<switches>" (1: active in Stripe).
func campaignPStateKey(id string) string { return "ba:{" + id + "}:pstate" }

const keyCampaignsMirroring = "ba:{catalog}:campaigns:mirroring"

var (
	campaignAttributeScript = ledgerScript("campaign_attribute")
	campaignMirroredScript  = plainScript("campaign_mirrored")
)

var _ promo.MirrorStore = (*Store)(nil)

// QueueMirror implements promo.MirrorStore.
func (s *Store) QueueMirror(ctx context.Context, c *promo.Campaign, texts []string) error {
	num, err := s.campaignNum(ctx, c.ID)
	if err != nil {
		return err
	}
	refs := make([]*redis.StringCmd, len(texts))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range texts {
			refs[i] = p.HGet(ctx, codeTextKey(t), "id")
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return unavailable(err)
	}
	members := make([]redis.Z, 0, len(texts))
	for i, cmd := range refs {
		n, _, ok := parseCampaignTextRef(cmd.Val())
		if !ok || n != num {
			return promo.Invalid("codes", "%s is not a code of campaign %s", texts[i], c.ID)
		}
		members = append(members, redis.Z{Member: texts[i]})
	}
	done, err := s.rdb.HMGet(ctx, campaignPTextKey(c.ID), texts...).Result()
	if err != nil {
		return unavailable(err)
	}
	queue := members[:0]
	for i, m := range members {
		if done[i] == nil {
			queue = append(queue, m)
		}
	}
	if len(queue) == 0 {
		return nil
	}
	if err := s.rdb.ZAdd(ctx, campaignMirrorKey(c.ID), queue...).Err(); err != nil {
		return unavailable(err)
	}
	return unavailable(s.rdb.SAdd(ctx, keyCampaignsMirroring, c.ID).Err())
}

// MirroringCampaigns implements promo.MirrorStore; campaigns whose queue is
// empty are dequeued.
func (s *Store) MirroringCampaigns(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, keyCampaignsMirroring).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	var out []string
	for _, id := range ids {
		n, err := s.queued(ctx, id)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			// A text queued meanwhile re-adds the campaign after its ZADD.
			if err := s.rdb.SRem(ctx, keyCampaignsMirroring, id).Err(); err != nil {
				return nil, unavailable(err)
			}
			if n, err = s.queued(ctx, id); err != nil || n == 0 {
				continue
			}
			s.rdb.SAdd(ctx, keyCampaignsMirroring, id)
		}
		out = append(out, id)
	}
	return out, nil
}

// DropMirrorQueue implements promo.MirrorStore.
func (s *Store) DropMirrorQueue(ctx context.Context, id string) error {
	return unavailable(s.rdb.Del(ctx, campaignMirrorKey(id)).Err())
}

// NextMirror implements promo.MirrorStore.
func (s *Store) NextMirror(ctx context.Context, id string, n int) ([]string, error) {
	texts, err := s.rdb.ZRange(ctx, campaignMirrorKey(id), 0, int64(n-1)).Result()
	return texts, unavailable(err)
}

// RecordMirrored implements promo.MirrorStore (lua/campaign_mirrored.lua).
func (s *Store) RecordMirrored(ctx context.Context, id, text, promotionCodeID string, active bool) error {
	return unavailable(campaignMirroredScript.Run(ctx, s.rdb,
		[]string{campaignKey(id), campaignPTextKey(id), campaignPCodesKey(id), campaignMirrorKey(id), campaignPStateKey(id)},
		text, promotionCodeID, boolInt(active)).Err())
}

// AttributeCampaignCode implements promo.MirrorStore
// (lua/campaign_attribute.lua).
func (s *Store) AttributeCampaignCode(ctx context.Context, id, redemptionID, promotionCodeID string) (*promo.Redemption, error) {
	defer s.dropSnapshot(id) // a ledger script: the line, the code's use, the redeemed counter
	res, err := campaignAttributeScript.Run(ctx, s.rdb, append(redemptionKeys(id), campaignPCodesKey(id)),
		redemptionID, promotionCodeID).StringSlice()
	if err != nil {
		return nil, unavailable(err)
	}
	if res[0] == "none" {
		return nil, nil
	}
	return decodeRedemption(id, redemptionID, res[1])
}

// campaignSyncKey queues mirrored codes whose promotion code's active flag
// must be checked (score: the campaign's psync_seq when queued).
func campaignSyncKey(id string) string { return "ba:{" + id + "}:psync" } // ZSET texts

var (
	campaignQueueSyncScript     = plainScript("campaign_queue_sync")
	campaignCodeSyncedScript    = plainScript("campaign_code_synced")
	campaignPCodeObservedScript = plainScript("campaign_pcode_observed")
)

// QueueCodeSync implements promo.MirrorStore (lua/campaign_queue_sync.lua).
func (s *Store) QueueCodeSync(ctx context.Context, id, text string, all bool) error {
	mode := "one"
	if all {
		mode = "all"
	}
	return s.queueCodeSync(ctx, id, text, mode)
}

// QueueGivenBack implements promo.MirrorStore (lua/campaign_queue_sync.lua).
func (s *Store) QueueGivenBack(ctx context.Context, id, text string) error {
	return s.queueCodeSync(ctx, id, text, "free")
}

func (s *Store) queueCodeSync(ctx context.Context, id, text, mode string) error {
	n, err := campaignQueueSyncScript.Run(ctx, s.rdb, []string{campaignKey(id), campaignPTextKey(id), campaignSyncKey(id)},
		text, mode).Int()
	if err != nil {
		return unavailable(err)
	}
	if n == 0 {
		return nil
	}
	return unavailable(s.rdb.SAdd(ctx, keyCampaignsMirroring, id).Err())
}

// parsePState reads a pstate value ("<1|0>:<switches>"; absent: unknown).
func parsePState(c *promo.CodeSync, v any) {
	raw, _ := v.(string)
	flag, n, ok := strings.Cut(raw, ":")
	if !ok {
		return
	}
	c.Known, c.Active = flag == "1" || flag == "0", flag == "1"
	c.Switches = atoi(n)
}

// NextCodeSync implements promo.MirrorStore.
func (s *Store) NextCodeSync(ctx context.Context, id string, n int) ([]promo.CodeSync, int64, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, campaignSyncKey(id), 0, int64(n-1)).Result()
	if err != nil || len(zs) == 0 {
		return nil, 0, unavailable(err)
	}
	texts := make([]string, len(zs))
	for i, z := range zs {
		texts[i], _ = z.Member.(string)
	}
	var pids, states *redis.SliceCmd
	var gen *redis.StringCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		pids = p.HMGet(ctx, campaignPTextKey(id), texts...)
		states = p.HMGet(ctx, campaignPStateKey(id), texts...)
		gen = p.HGet(ctx, campaignKey(id), "psync_gen")
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, unavailable(err)
	}
	out := make([]promo.CodeSync, len(texts))
	for i, t := range texts {
		out[i] = promo.CodeSync{Text: t, Score: zs[i].Score}
		out[i].PromotionCodeID, _ = pids.Val()[i].(string)
		parsePState(&out[i], states.Val()[i])
	}
	return out, atoi(gen.Val()), nil
}

// CodeSynced implements promo.MirrorStore (lua/campaign_code_synced.lua).
func (s *Store) CodeSynced(ctx context.Context, id string, c promo.CodeSync, switched, active bool) error {
	return unavailable(campaignCodeSyncedScript.Run(ctx, s.rdb, []string{campaignSyncKey(id), campaignPStateKey(id)},
		c.Text, strconv.FormatFloat(c.Score, 'f', -1, 64), boolInt(switched), boolInt(active), c.Switches).Err())
}

// CampaignPromotionCode implements promo.MirrorStore.
func (s *Store) CampaignPromotionCode(ctx context.Context, id, promotionCodeID string) (promo.CodeSync, error) {
	c := promo.CodeSync{PromotionCodeID: promotionCodeID}
	text, err := s.rdb.HGet(ctx, campaignPCodesKey(id), promotionCodeID).Result()
	if errors.Is(err, redis.Nil) {
		return c, promo.ErrNotFound
	}
	if err != nil {
		return c, unavailable(err)
	}
	c.Text = text
	state, err := s.rdb.HGet(ctx, campaignPStateKey(id), text).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return c, unavailable(err)
	}
	parsePState(&c, state)
	return c, nil
}

// ObservePromotionCodeActive implements promo.MirrorStore
// (lua/campaign_pcode_observed.lua).
func (s *Store) ObservePromotionCodeActive(ctx context.Context, id string, c promo.CodeSync, active bool) (bool, error) {
	n, err := campaignPCodeObservedScript.Run(ctx, s.rdb, []string{campaignPStateKey(id)}, c.Text, boolInt(active), c.Switches).Int()
	return n == 1, unavailable(err)
}

// queued counts a campaign's queued Stripe work: codes to mirror, codes
// whose promotion code to switch.
func (s *Store) queued(ctx context.Context, id string) (int64, error) {
	var a, b *redis.IntCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		a, b = p.ZCard(ctx, campaignMirrorKey(id)), p.ZCard(ctx, campaignSyncKey(id))
		return nil
	}); err != nil {
		return 0, unavailable(err)
	}
	return a.Val() + b.Val(), nil
}
