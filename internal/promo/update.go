package promo

import (
	"sort"
	"strings"
	"time"
)

// UpdateInput is an admin's change to an existing code. Only status,
// expiration, stock, unlimited_stock and metadata may change; Immutable names
// any other field the request tried to set.
type UpdateInput struct {
	Status         *Status
	ExpirationSet  bool       // expiration_datetime was present
	Expiration     *time.Time // nil with ExpirationSet: remove the expiration
	Stock          *int64
	UnlimitedStock *bool
	// Metadata is merged into the code's metadata; an empty value deletes its key.
	Metadata  map[string]string
	Immutable []string
}

// Check makes the checks of in that need no state: the fields it may
// change, their values and their form. Update makes them before it reads
// the code (an invalid request is refused before the operation begins, see
// Began); Apply makes them again, with the checks that depend on the code.
func (in UpdateInput) Check(now time.Time) error {
	if len(in.Immutable) > 0 {
		fields := append([]string(nil), in.Immutable...)
		sort.Strings(fields)
		return Invalid(fields[0], "%s cannot be changed on an existing code: the discount is fixed in Stripe once customers may hold it; create a new code (and archive this one) instead",
			strings.Join(fields, ", "))
	}
	if in.Status != nil {
		switch *in.Status {
		case StatusActive, StatusInactive, StatusArchived:
		default:
			return Invalid("status", "status must be active, inactive or archived")
		}
	}
	if in.ExpirationSet && in.Expiration != nil {
		if err := checkExpiration(*in.Expiration, now); err != nil {
			return err
		}
	}
	if in.Stock != nil {
		if err := CheckStock(*in.Stock); err != nil {
			return err
		}
	}
	for k, v := range in.Metadata {
		if err := checkMetadataKey(k); err != nil {
			return err
		}
		if len(v) > MaxMetadataValueLength {
			return Invalid("metadata", "metadata value for %q is longer than %d characters", k, MaxMetadataValueLength)
		}
	}
	return nil
}

// Apply checks in against p and returns the updated copy. p is unchanged.
func (in UpdateInput) Apply(p *PromoCode, now time.Time) (*PromoCode, error) {
	if len(in.Immutable) > 0 {
		fields := append([]string(nil), in.Immutable...)
		sort.Strings(fields)
		return nil, Invalid(fields[0], "%s cannot be changed on an existing code: the discount is fixed in Stripe once customers may hold it; create a new code (and archive this one) instead",
			strings.Join(fields, ", "))
	}
	if p.Status == StatusArchived {
		return nil, Errorf(CodeConflict, "code %s is archived and can no longer be changed", p.ID)
	}
	if p.Stripe.State != SyncReady {
		return nil, Errorf(CodeConflict, "code %s is still being created; retry the create request or wait", p.ID)
	}
	if p.StatusReason == ReasonCouponDeleted && in.Status != nil && *in.Status == StatusActive {
		return nil, &Error{Code: CodeConflict, Param: "status",
			Message: "code " + p.ID + " cannot be activated: its Stripe coupon was deleted; create a new code"}
	}
	n := *p
	n.Metadata = copyMetadata(p.Metadata)
	if in.Status != nil {
		switch *in.Status {
		case StatusActive, StatusInactive, StatusArchived:
			n.Status = *in.Status
		default:
			return nil, Invalid("status", "status must be active, inactive or archived")
		}
	}
	if in.ExpirationSet {
		if in.Expiration == nil {
			n.ExpiresAt = nil
		} else {
			if err := checkExpiration(*in.Expiration, now); err != nil {
				return nil, err
			}
			t := in.Expiration.UTC()
			n.ExpiresAt = &t
		}
	}
	if in.UnlimitedStock != nil && *in.UnlimitedStock && in.Stock != nil {
		return nil, errStockWithUnlimited()
	}
	if in.UnlimitedStock != nil {
		n.UnlimitedStock = *in.UnlimitedStock
	}
	if in.Stock != nil {
		if err := CheckStock(*in.Stock); err != nil {
			return nil, err
		}
		n.Stock = *in.Stock
	} else if in.UnlimitedStock != nil && !*in.UnlimitedStock && p.UnlimitedStock {
		return nil, Invalid("stock", "stock is required when turning unlimited_stock off")
	}
	for k, v := range in.Metadata {
		if err := checkMetadataKey(k); err != nil {
			return nil, err
		}
		if v == "" {
			delete(n.Metadata, k)
		} else {
			n.Metadata[k] = v
		}
	}
	if len(in.Metadata) > 0 {
		// Only when it changes: a code created before MaxMetadataKeys was
		// lowered can still be archived, restocked or switched off.
		if err := CheckMetadata(n.Metadata); err != nil {
			return nil, err
		}
	}
	n.UpdatedAt = now
	return &n, nil
}
