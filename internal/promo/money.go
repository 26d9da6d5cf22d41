package promo

import (
	"strconv"
	"strings"
)

// currencyExponent lists the currencies a flat-amount code may use (the source
// document's list, less the refused ones) with Stripe's minor-unit exponent.
var currencyExponent = func() map[string]int {
	m := map[string]int{}
	for _, c := range strings.Fields(`usd sgd inr aud brl cad dkk eur nok gbp sek chf hkd huf mxn myr pln czk
		nzd aed cop ron thb idr dop php try twd pkr uyu ars zar dzd mad kes all xcd amd bsd bob bam khr crc
		egp etb gmd ghs gtq gyd ils jmd mop mur mdl mnt nad ngn mkd pen qar sar rsd lkr tzs ttd uzs rub`) {
		m[c] = 2
	}
	for _, c := range strings.Fields("jpy krw vnd clp xof mga pyg rwf") {
		m[c] = 0
	}
	for _, c := range strings.Fields("bhd jod kwd omr tnd") {
		m[c] = 3
	}
	return m
}()

// refusedCurrency explains why a listed currency cannot be used with Stripe.
var refusedCurrency = map[string]string{
	"eth": "eth is a crypto currency; Stripe cannot charge it",
	"ape": "ape is a crypto currency; Stripe cannot charge it",
	"bgn": "bgn has been withdrawn; Stripe cannot charge it",
}

// MaxAmountMinor is Stripe's largest amount (8 digits of minor units).
const MaxAmountMinor = 99_999_999

// CurrencyExponent returns the number of minor-unit digits for currency and
// whether the adapter accepts the currency at all.
func CurrencyExponent(currency string) (int, bool) {
	e, ok := currencyExponent[currency]
	return e, ok
}

// ParseDecimal converts decimal text such as "5.50" into an integer scaled by
// 10^exp ("5.50", 2 → 550) without floating point. It refuses signs,
// exponents, white space, more than exp fractional digits and values beyond
// max. The refusal completes "amount_off ..." and reads alone: "is
// required", "must be positive", "must be a plain decimal number such as
// 5.50", "can have at most 2 decimal places", "must be a whole number",
// "is too large".
func ParseDecimal(s string, exp int, max int64) (int64, string) {
	v, f := parseDecimal(s, exp, max)
	switch f {
	case decimalTooPrecise:
		if exp == 0 {
			return 0, "must be a whole number"
		}
		return 0, "can have at most " + strconv.Itoa(exp) + " decimal places"
	case decimalTooLarge:
		return 0, "is too large"
	}
	return v, f.text(exp)
}

// ParseMoney converts an amount in major units of currency (lower-case, one
// the adapter accepts) into minor units with Stripe's exponent: "5.50" usd →
// 550, "500" jpy → 500. Like ParseDecimal its refusal completes
// "amount_off ...", naming the currency where the currency is the reason:
// "can have at most 2 decimal places for USD", "must be a whole number: JPY
// has no decimal places", "must be at most 999999.99 USD".
func ParseMoney(s, currency string) (int64, string) {
	cur := strings.ToUpper(currency)
	exp, ok := CurrencyExponent(currency)
	if !ok {
		return 0, "cannot be in " + cur + ", a currency the adapter does not support"
	}
	v, f := parseDecimal(s, exp, MaxAmountMinor)
	switch f {
	case decimalTooPrecise:
		if exp == 0 {
			return 0, "must be a whole number: " + cur + " has no decimal places"
		}
		return 0, "can have at most " + strconv.Itoa(exp) + " decimal places for " + cur
	case decimalTooLarge:
		return 0, "must be at most " + FormatDecimal(MaxAmountMinor, exp) + " " + cur
	}
	return v, f.text(exp)
}

// decimalFault is why parseDecimal refused its text.
type decimalFault int

const (
	decimalOK decimalFault = iota
	decimalMissing
	decimalNegative
	decimalMalformed
	decimalTooPrecise
	decimalTooLarge
)

// text is the refusal of the faults that read the same for every caller.
func (f decimalFault) text(exp int) string {
	switch f {
	case decimalMissing:
		return "is required"
	case decimalNegative:
		return "must be positive"
	case decimalMalformed:
		return "must be a plain decimal number such as " + [...]string{"500", "5.0", "5.50", "1.250"}[min(exp, 3)]
	}
	return ""
}

func parseDecimal(s string, exp int, max int64) (int64, decimalFault) {
	if s == "" {
		return 0, decimalMissing
	}
	if rest, neg := strings.CutPrefix(s, "-"); neg {
		if _, f := parseDecimal(rest, exp, max); f == decimalMissing || f == decimalMalformed || f == decimalNegative {
			return 0, decimalMalformed
		}
		return 0, decimalNegative
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || !allDigits(intPart) || (hasDot && (frac == "" || !allDigits(frac))) {
		return 0, decimalMalformed
	}
	if len(frac) > exp {
		return 0, decimalTooPrecise
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 15 {
		return 0, decimalTooLarge
	}
	digits := intPart + frac + strings.Repeat("0", exp-len(frac))
	v, err := strconv.ParseInt("0"+digits, 10, 64)
	if err != nil || v > max {
		return 0, decimalTooLarge
	}
	return v, decimalOK
}

// FormatDecimal renders v scaled by 10^exp as exact decimal text: 550, 2 → "5.50".
func FormatDecimal(v int64, exp int) string {
	neg := v < 0
	if neg {
		v = -v
	}
	s := strconv.FormatInt(v, 10)
	if exp > 0 {
		if len(s) <= exp {
			s = strings.Repeat("0", exp-len(s)+1) + s
		}
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
