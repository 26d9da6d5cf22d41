package stripesim

import (
	"crypto/rand"
	"math/big"
	"time"
)

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString returns n characters from alphabet using crypto/rand.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// newID returns a Stripe-looking ID such as "cus_Pq3xYb0a1B2c3D".
func newID(prefix string) string {
	return prefix + "_" + randomString(14, idAlphabet)
}

// addMonths adds n calendar months to the anchor the way Stripe computes
// billing periods: always from the anchor (not chained), clamping the day to
// the end of shorter months (Jan 31 -> Feb 28/29 -> Mar 31), keeping the
// time of day. Times are UTC.
func addMonths(anchor int64, n int) int64 {
	t := time.Unix(anchor, 0).UTC()
	y, m, d := t.Date()
	total := int(m) - 1 + n
	ny := y + total/12
	nm := total % 12
	if nm < 0 {
		nm += 12
		ny--
	}
	first := time.Date(ny, time.Month(nm+1), 1, t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	if d > last {
		d = last
	}
	return time.Date(ny, time.Month(nm+1), d, t.Hour(), t.Minute(), t.Second(), 0, time.UTC).Unix()
}
