package webhooks

import (
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// Signature checks, as Stripe documents them: the Stripe-Signature header is
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">[,v1=...]" and each v1
// is compared, in constant time, with the HMAC under each configured secret.
const (
	// Tolerance is how old a signature timestamp may be (Stripe's default).
	Tolerance = 300 * time.Second
	// FutureTolerance is how far ahead of our clock a timestamp may be.
	FutureTolerance = 60 * time.Second
)

var (
	errNoSecret     = errors.New("no webhook secret is configured (STRIPE_WEBHOOK_SECRETS)")
	errNoSignature  = errors.New("missing Stripe-Signature header")
	errBadSignature = errors.New("malformed Stripe-Signature header")
	errTooOld       = fmt.Errorf("signature timestamp is older than %s", Tolerance)
	errTooNew       = fmt.Errorf("signature timestamp is more than %s in the future", FutureTolerance)
	errMismatch     = errors.New("no signature matches the payload under any configured secret")
)

// Verify checks a Stripe-Signature header for payload against every secret
// (several during a rotation) at time now.
func Verify(payload []byte, header string, secrets []string, now time.Time) error {
	if len(secrets) == 0 {
		return errNoSecret
	}
	if header == "" {
		return errNoSignature
	}
	var ts int64
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errBadSignature
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errBadSignature
			}
			ts = n
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	if ts == 0 || len(sigs) == 0 {
		return errBadSignature
	}
	signed := time.Unix(ts, 0)
	switch age := now.Sub(signed); {
	case age > Tolerance:
		return errTooOld
	case age < -FutureTolerance:
		return errTooNew
	}
	for _, secret := range secrets {
		want := webhook.ComputeSignature(signed, payload, secret)
		for _, sig := range sigs {
			if hmac.Equal(want, sig) {
				return nil
			}
		}
	}
	return errMismatch
}

// Sign returns the Stripe-Signature header value for payload signed with
// secret at t, exactly as Stripe builds it (for `webhooks send` and tests).
func Sign(payload []byte, secret string, t time.Time) string {
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), hex.EncodeToString(webhook.ComputeSignature(t, payload, secret)))
}
