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
// exponents, more than exp fractional digits and values beyond max.
// The error text completes "amount_off ...".
func ParseDecimal(s string, exp int, max int64) (int64, string) {
	if s == "" {
		return 0, "is required"
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || !allDigits(intPart) || (hasDot && (frac == "" || !allDigits(frac))) {
		return 0, "must be a plain decimal number such as 5.50"
	}
	if len(frac) > exp {
		if exp == 0 {
			return 0, "must be a whole number for this currency (no decimals)"
		}
		return 0, "has more than " + strconv.Itoa(exp) + " decimal places"
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 15 {
		return 0, "is too large"
	}
	digits := intPart + frac + strings.Repeat("0", exp-len(frac))
	v, err := strconv.ParseInt("0"+digits, 10, 64)
	if err != nil || v > max {
		return 0, "is too large"
	}
	return v, ""
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
