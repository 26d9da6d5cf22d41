package stripesim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Money is integer minor units throughout; floats never carry amounts.

// zeroDecimal lists Stripe's zero-decimal currencies (amounts are whole
// units, e.g. 500 JPY is amount=500).
var zeroDecimal = map[string]bool{
	"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true, "kmf": true,
	"krw": true, "mga": true, "pyg": true, "rwf": true, "ugx": true, "vnd": true,
	"vuv": true, "xaf": true, "xof": true, "xpf": true,
}

// threeDecimal lists Stripe's three-decimal currencies (1.230 KWD is
// amount=1230; Stripe charges them in multiples of 10).
var threeDecimal = map[string]bool{"bhd": true, "jod": true, "kwd": true, "omr": true, "tnd": true}

// supportedCurrencies is the set of ISO codes the simulator accepts: the
// currencies Stripe charges that billing-adapter's source list names, plus
// the other common ones and every zero-decimal currency. Crypto tokens (eth,
// ape) and the withdrawn Bulgarian lev (bgn) are refused, as by Stripe.
var supportedCurrencies = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(`usd eur gbp cad aud nzd chf sek nok dkk pln czk huf ron
		isk try ils aed sar inr sgd hkd twd thb myr idr php brl mxn cop pen ars uyu zar egp
		ngn kes mad cny dop pkr dzd all xcd amd bsd bob bam khr crc etb gmd ghs gtq gyd jmd
		mop mur mdl mnt nad mkd qar rsd lkr tzs ttd uzs rub`) {
		m[c] = true
	}
	for c := range zeroDecimal {
		m[c] = true
	}
	for c := range threeDecimal {
		m[c] = true
	}
	return m
}()

// parseCurrency validates and lowercases a currency code.
func parseCurrency(param, v string) (string, *apiError) {
	c := strings.ToLower(strings.TrimSpace(v))
	if !supportedCurrencies[c] {
		return "", invalidParam(param, "Invalid currency: %s. Stripe currently supports these currencies: %s", v, "usd, eur, gbp, jpy, ... (see stripe-sim money.go)")
	}
	return c, nil
}

// parsePercent parses a percent_off decimal string exactly into hundredths
// of a percent ("25.5000" -> 2550). At most two significant decimals are
// allowed; 0 < percent <= 100.
func parsePercent(param, v string) (int64, *apiError) {
	s := strings.TrimSpace(v)
	bad := func() (int64, *apiError) {
		return 0, invalidParam(param, "Invalid decimal: %s", v)
	}
	if s == "" || strings.HasPrefix(s, "+") {
		return bad()
	}
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" {
		intPart = "0"
	}
	for _, r := range intPart + frac {
		if r < '0' || r > '9' {
			return bad()
		}
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 2 {
		return 0, invalidParam(param, "Invalid %s: %s. It can have at most 2 decimal places.", param, v)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	if len(intPart) > 6 {
		return 0, invalidParam(param, "Invalid %s: must be greater than 0 and at most 100.", param)
	}
	ip, _ := strconv.ParseInt(intPart, 10, 64)
	fp, _ := strconv.ParseInt(frac, 10, 64)
	bp := ip*100 + fp
	if neg {
		bp = -bp
	}
	if bp <= 0 || bp > 10000 {
		return 0, invalidParam(param, "Invalid %s: must be greater than 0 and at most 100.", param)
	}
	return bp, nil
}

// percentJSON renders hundredths of a percent as an exact JSON number.
func percentJSON(bp int64) json.Number {
	s := fmt.Sprintf("%d.%02d", bp/100, bp%100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return json.Number(s)
}

// percentOf computes amount*bp/10000 rounded to the nearest minor unit,
// halves rounded up (amount >= 0).
func percentOf(amount, bp int64) int64 {
	return (amount*bp + 5000) / 10000
}

// formatAmount renders an amount for line descriptions ("$20.00", "¥500").
func formatAmount(amount int64, currency string) string {
	sym := map[string]string{"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}[currency]
	if sym == "" {
		sym = strings.ToUpper(currency) + " "
	}
	if zeroDecimal[currency] {
		return fmt.Sprintf("%s%d", sym, amount)
	}
	neg := ""
	if amount < 0 {
		neg, amount = "-", -amount
	}
	if threeDecimal[currency] {
		return fmt.Sprintf("%s%s%d.%03d", neg, sym, amount/1000, amount%1000)
	}
	return fmt.Sprintf("%s%s%d.%02d", neg, sym, amount/100, amount%100)
}
