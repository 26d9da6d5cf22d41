// The checks of an admin's create and update requests (each refusal a 400
// naming the field). "Validate" is reserved for POST /v1/promo_codes/validate,
// the checkout question "would this code be accepted now?" (preview.go).

package promo

import (
	"sort"
	"strings"
	"time"
)

// Limits on codes and metadata, chosen so that every code within them works
// on every path: create, update, subscribe (with request metadata within
// its own limit), apply, and reconcile reading promo_code_config back.
//
// The metadata budget. Stripe allows StripeMetadataKeys (50) keys per object
// (key ≤ 40 characters without [ or ], value ≤ 500). Next to the code's own
// keys the adapter writes its own, per object:
//
//	object (Stripe call)            keys                                              at most
//	coupon (create)                 the code's + promo_code_id, promo_code,           23 + 3      = 26
//	                                promo_code_config
//	promotion code (create)         the code's + promo_code_id, promo_code            23 + 2      = 25
//	coupon (update)                 the code's new keys + its removed keys, sent      23 + 23 + 3 = 49
//	                                empty to unset them in the same call + 3
//	promotion code (update)         the same, less promo_code_config                  23 + 23 + 2 = 48
//	subscription (subscribe)        the code's ∪ the request's + promo_code_id,       23 + 23 + 4 = 50
//	                                promo_code, promo_redemption_id,
//	                                promo_redemption_source
//	subscription (apply)            its own ∪ those 4 (the code's are not copied)     checked: 50
//
// The subscription on subscribe is the binding row: a code's metadata
// (MaxMetadataKeys) and a subscribe request's (MaxSubscriptionMetadataKeys)
// share 50 - 4 = 46 keys, so that any code works with any request. A
// subscription given a code by apply keeps its own metadata, which is not
// ours to limit: one with more than 46 keys besides the adapter's cannot
// take a code, and apply says so before reserving anything
// (checkMetadataRoom). promo_code_config must fit one 500-character value in
// the longest form it can take after any update; only plan_ids make it long
// (checkStripeConfigFits): MaxPlanIDs Stripe price IDs always fit. A code
// of MaxCodeLength characters is a valid Stripe promotion code text; the
// coupon's name (40 characters at most) is the code cut short by the gateway.
const (
	StripeMetadataKeys          = 50
	MaxMetadataKeys             = 23 // a code's own metadata
	MaxSubscriptionMetadataKeys = 23 // a subscribe request's metadata
	MaxCodeLength               = 64
	MaxMetadataKeyLength        = 40
	MaxMetadataValueLength      = 500
	MaxDurationMonths           = 1200
	MaxPlanIDs                  = 10
	MaxStock                    = 1_000_000_000
)

// Metadata keys the adapter writes on Stripe objects to link them back.
const (
	MetaPromoCodeID = "promo_code_id"
	MetaPromoCode   = "promo_code"
)

var reservedMetadataKeys = []string{MetaPromoCodeID, MetaPromoCode, MetaConfig}

// CreateInput is an admin's request for a new code, as decoded from JSON.
// AmountOff is the decimal text as sent ("5.50"); pointers are nil when absent.
type CreateInput struct {
	Code                    string
	PromoType               PromoType
	AmountOff               string
	Currency                string
	Duration                Duration
	PromoDurationMonths     *int64
	ExpirationDatetime      *time.Time
	NewUsersOnly            bool
	ExistingMembershipsOnly bool
	PlanIDs                 []string
	Stock                   *int64
	UnlimitedStock          *bool
	Status                  Status
	Metadata                map[string]string
}

// NormalizeCode upper-cases a code as entered by a customer or an admin.
func NormalizeCode(code string) string { return strings.ToUpper(strings.TrimSpace(code)) }

// CheckCodeText checks the customer-facing code text (already normalized).
func CheckCodeText(code string) *Error {
	if code == "" {
		return Invalid("code", "code is required")
	}
	if len(code) > MaxCodeLength {
		return Invalid("code", "code must be at most %d characters", MaxCodeLength)
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return Invalid("code", "code may contain only letters A-Z and digits 0-9")
		}
	}
	return nil
}

// NewPromoCode checks in and builds the code it describes (without ID,
// timestamps or Stripe refs). now is used to check the expiration.
func NewPromoCode(in CreateInput, now time.Time) (*PromoCode, error) {
	p := &PromoCode{Code: NormalizeCode(in.Code), Status: StatusActive}
	if err := CheckCodeText(p.Code); err != nil {
		return nil, err
	}
	if err := p.setAmount(in); err != nil {
		return nil, err
	}
	if err := p.setDuration(in.Duration, in.PromoDurationMonths); err != nil {
		return nil, err
	}
	if in.ExpirationDatetime != nil {
		if err := checkExpiration(*in.ExpirationDatetime, now); err != nil {
			return nil, err
		}
		t := in.ExpirationDatetime.UTC()
		p.ExpiresAt = &t
	}
	if in.NewUsersOnly && in.ExistingMembershipsOnly {
		return nil, Invalid("existing_memberships_only",
			"existing_memberships_only cannot be combined with new_users_only: a customer with a membership is not a new user")
	}
	p.NewUsersOnly, p.ExistingMembershipsOnly = in.NewUsersOnly, in.ExistingMembershipsOnly
	plans, err := checkPlanIDs(in.PlanIDs)
	if err != nil {
		return nil, err
	}
	p.PlanIDs = plans
	if err := p.setStock(in.Stock, in.UnlimitedStock); err != nil {
		return nil, err
	}
	switch in.Status {
	case "", StatusActive:
	case StatusInactive:
		p.Status = StatusInactive
	case StatusArchived:
		return nil, Invalid("status", "a new code cannot be created archived")
	default:
		return nil, Invalid("status", "status must be active or inactive")
	}
	if err := CheckMetadata(in.Metadata); err != nil {
		return nil, err
	}
	p.Metadata = copyMetadata(in.Metadata)
	if err := checkStripeConfigFits(p); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *PromoCode) setAmount(in CreateInput) error {
	switch in.PromoType {
	case Percentage:
		if in.Currency != "" {
			return Invalid("currency", "currency applies only to flat_amount codes")
		}
		v, msg := ParseDecimal(in.AmountOff, 2, 100_00)
		if msg != "" {
			if msg == "is too large" {
				msg = "must be at most 100"
			}
			return Invalid("amount_off", "amount_off %s", msg)
		}
		if v == 0 {
			return Invalid("amount_off", "amount_off must be greater than 0")
		}
		p.PromoType, p.AmountOff = Percentage, v
	case FlatAmount:
		cur := strings.ToLower(strings.TrimSpace(in.Currency))
		if cur == "" {
			return Invalid("currency", "currency is required for flat_amount codes")
		}
		if why, refused := refusedCurrency[cur]; refused {
			return Invalid("currency", "%s", why)
		}
		exp, ok := CurrencyExponent(cur)
		if !ok {
			return Invalid("currency", "currency %q is not supported", in.Currency)
		}
		v, msg := ParseMoney(in.AmountOff, cur)
		if msg != "" {
			return Invalid("amount_off", "amount_off %s", msg)
		}
		if v == 0 {
			return Invalid("amount_off", "amount_off must be greater than 0")
		}
		if exp == 3 && v%10 != 0 {
			return Invalid("amount_off", "amount_off in %s must be a multiple of 0.010: Stripe charges three-decimal currencies in steps of 10 minor units", strings.ToUpper(cur))
		}
		p.PromoType, p.AmountOff, p.Currency = FlatAmount, v, cur
	case "":
		return Invalid("promo_type", "promo_type is required (percentage or flat_amount)")
	default:
		return Invalid("promo_type", "promo_type must be percentage or flat_amount")
	}
	return nil
}

// setDuration reconciles the optional duration with promo_duration_months
// (billing cycles; 0 = forever).
func (p *PromoCode) setDuration(d Duration, months *int64) error {
	n, given := int64(0), months != nil
	if given {
		n = *months
		if n < 0 || n > MaxDurationMonths {
			return Invalid("promo_duration_months", "promo_duration_months must be between 0 and %d", MaxDurationMonths)
		}
	}
	switch d {
	case "":
		if n == 0 {
			p.Duration = Forever
		} else {
			p.Duration, p.DurationMonths = Repeating, int(n)
		}
	case Once:
		if n > 1 {
			return Invalid("promo_duration_months", "duration once applies to one billing cycle; promo_duration_months must be 0 or 1")
		}
		p.Duration = Once
	case Repeating:
		if n < 1 {
			return Invalid("promo_duration_months", "duration repeating needs promo_duration_months of at least 1")
		}
		p.Duration, p.DurationMonths = Repeating, int(n)
	case Forever:
		if n != 0 {
			return Invalid("promo_duration_months", "duration forever needs promo_duration_months 0")
		}
		p.Duration = Forever
	default:
		return Invalid("duration", "duration must be once, repeating or forever")
	}
	return nil
}

func (p *PromoCode) setStock(stock *int64, unlimited *bool) error {
	switch {
	case unlimited != nil && *unlimited && stock != nil:
		return errStockWithUnlimited()
	case unlimited != nil && *unlimited:
		p.UnlimitedStock = true
	case stock == nil && unlimited == nil:
		p.UnlimitedStock = true
	case stock == nil:
		return Invalid("stock", "stock is required when unlimited_stock is false")
	default:
		if err := CheckStock(*stock); err != nil {
			return err
		}
		p.Stock = *stock
	}
	return nil
}

// errStockWithUnlimited refuses a request that sets both a stock and
// unlimited_stock: true (issue 12: a 400, not "stock is ignored", so a
// caller never believes a limit is in force when it is not).
func errStockWithUnlimited() *Error {
	return Invalid("stock", "stock cannot be given together with unlimited_stock: true; send one or the other")
}

// CheckStock checks a stock count.
func CheckStock(n int64) *Error {
	if n < 0 || n > MaxStock {
		return Invalid("stock", "stock must be between 0 and %d", MaxStock)
	}
	return nil
}

func checkExpiration(t, now time.Time) *Error {
	if !t.After(now) {
		return Invalid("expiration_datetime", "expiration_datetime must be in the future")
	}
	return nil
}

func checkPlanIDs(ids []string) ([]string, error) {
	if len(ids) > MaxPlanIDs {
		return nil, Invalid("plan_ids", "plan_ids may list at most %d prices", MaxPlanIDs)
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" || len(id) > 255 || strings.ContainsAny(id, " /?#&") {
			return nil, Invalid("plan_ids", "plan_ids must be Stripe price IDs such as price_123")
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

// CheckMetadata checks a code's metadata: at most MaxMetadataKeys keys
// (see the budget above), Stripe's limits on keys and values, none of the
// adapter's keys. An empty value is refused (on update it deletes the key and
// is checked by the caller).
func CheckMetadata(md map[string]string) *Error {
	if len(md) > MaxMetadataKeys {
		return Invalid("metadata", "metadata may have at most %d keys: Stripe allows %d per object, and the rest is kept for the adapter's own keys and for the metadata of the subscriptions the code is used on",
			MaxMetadataKeys, StripeMetadataKeys)
	}
	return checkMetadataEntries(md)
}

// checkMetadataEntries checks each key and value against Stripe's limits
// and the adapter's reserved keys.
func checkMetadataEntries(md map[string]string) *Error {
	for k, v := range md {
		if err := checkMetadataKey(k); err != nil {
			return err
		}
		if v == "" {
			return Invalid("metadata", "metadata value for %q is empty", k)
		}
		if len(v) > MaxMetadataValueLength {
			return Invalid("metadata", "metadata value for %q is longer than %d characters", k, MaxMetadataValueLength)
		}
	}
	return nil
}

func checkMetadataKey(k string) *Error {
	switch {
	case k == "":
		return Invalid("metadata", "metadata keys must not be empty")
	case len(k) > MaxMetadataKeyLength:
		return Invalid("metadata", "metadata key %q is longer than %d characters", k, MaxMetadataKeyLength)
	case strings.ContainsAny(k, "[]"):
		return Invalid("metadata", "metadata key %q must not contain [ or ]", k)
	}
	for _, r := range reservedMetadataKeys {
		if k == r {
			return Invalid("metadata", "metadata key %q is reserved by the adapter", k)
		}
	}
	return nil
}

func copyMetadata(md map[string]string) map[string]string {
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[k] = v
	}
	return out
}
