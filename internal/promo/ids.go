package promo

import (
	"crypto/sha256"
	"time"
)

// crockford is the ULID alphabet (Crockford's base32).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// RedemptionIDFor is the ledger ID of a redemption the adapter learns about
// from Stripe (made outside it, or rebuilt by reconcile): a ULID whose time
// is the discount's start and whose random part is a hash of the discount
// ID. The same discount always gets the same ID, so a rebuild reproduces the
// ledger, and IDs still sort by creation like the service's own.
func RedemptionIDFor(discountID string, start time.Time) string {
	var b [16]byte
	ms := uint64(max(start.UnixMilli(), 0))
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	h := sha256.Sum256([]byte("redemption\x00" + discountID))
	copy(b[6:], h[:10])
	return "rd_" + encodeULID(b)
}

// encodeULID renders 128 bits as 26 Crockford base32 characters, most
// significant first (the first character carries 3 bits).
func encodeULID(b [16]byte) string {
	var out [26]byte
	// Work on the bits from the least significant end, 5 at a time.
	var acc uint64
	bits := 0
	pos := 25
	for i := 15; i >= 0; i-- {
		acc |= uint64(b[i]) << bits
		bits += 8
		for bits >= 5 && pos >= 0 {
			out[pos] = crockford[acc&31]
			acc >>= 5
			bits -= 5
			pos--
		}
	}
	for ; pos >= 0; pos-- {
		out[pos] = crockford[acc&31]
		acc >>= 5
	}
	return string(out[:])
}
