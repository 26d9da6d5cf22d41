package promo

import (
	"errors"
	"strings"
	"testing"
)

// ParseMoney converts exactly, and every refusal reads as a sentence after
// "amount_off", naming the currency where its decimals are the reason.
func TestParseMoney(t *testing.T) {
	const plain = "must be a plain decimal number such as 5.50"
	tests := []struct {
		in, currency string
		want         int64
		msg          string
	}{
		{"5.50", "usd", 550, ""},
		{"5.5", "usd", 550, ""},
		{"007", "usd", 700, ""},
		{"500", "jpy", 500, ""},
		{"1.230", "kwd", 1230, ""},
		{"999999.99", "usd", MaxAmountMinor, ""},
		{"99999999", "jpy", MaxAmountMinor, ""},

		{"5.555", "usd", 0, "can have at most 2 decimal places for USD"},
		{"1.2345", "kwd", 0, "can have at most 3 decimal places for KWD"},
		{"500.5", "jpy", 0, "must be a whole number: JPY has no decimal places"},
		{"500.0", "jpy", 0, "must be a whole number: JPY has no decimal places"},
		{"-5", "usd", 0, "must be positive"},
		{"-5.50", "usd", 0, "must be positive"},
		{"-500", "jpy", 0, "must be positive"},
		{"1000000.00", "usd", 0, "must be at most 999999.99 USD"},
		{"100000000", "jpy", 0, "must be at most 99999999 JPY"},
		{"100000", "kwd", 0, "must be at most 99999.999 KWD"},
		{"123456789012345678901234567890", "usd", 0, "must be at most 999999.99 USD"},
		{"", "usd", 0, "is required"},
		{"NaN", "usd", 0, plain},
		{"Infinity", "usd", 0, plain},
		{"-Infinity", "usd", 0, plain},
		{" 5", "usd", 0, plain},
		{"5 ", "usd", 0, plain},
		{"1e3", "usd", 0, plain},
		{"+5", "usd", 0, plain},
		{"5.", "usd", 0, plain},
		{".5", "usd", 0, plain},
		{"0x10", "usd", 0, plain},
		{"5,50", "usd", 0, plain},
		{"--5", "usd", 0, plain},
		{"-", "usd", 0, plain},
		{"%s%n%x", "usd", 0, plain},
		{"five", "jpy", 0, "must be a plain decimal number such as 500"},
		{"1,5", "kwd", 0, "must be a plain decimal number such as 1.250"},
	}
	for _, tt := range tests {
		t.Run(tt.currency+" "+tt.in, func(t *testing.T) {
			got, msg := ParseMoney(tt.in, tt.currency)
			if got != tt.want || msg != tt.msg {
				t.Fatalf("ParseMoney(%q, %q) = %d, %q; want %d, %q", tt.in, tt.currency, got, msg, tt.want, tt.msg)
			}
		})
	}
}

// ParseDecimal's refusals read alone after the field's name (percentages).
func TestParseDecimalMessages(t *testing.T) {
	tests := []struct {
		in  string
		exp int
		msg string
	}{
		{"12.345", 2, "can have at most 2 decimal places"},
		{"1.5", 0, "must be a whole number"},
		{"-5", 2, "must be positive"},
		{"-0.5", 2, "must be positive"},
		{"NaN", 2, "must be a plain decimal number such as 5.50"},
		{"", 2, "is required"},
		{"100.01", 2, "is too large"},
	}
	for _, tt := range tests {
		if _, msg := ParseDecimal(tt.in, tt.exp, 100_00); msg != tt.msg {
			t.Errorf("ParseDecimal(%q, %d) refused with %q, want %q", tt.in, tt.exp, msg, tt.msg)
		}
	}
}

// The create checks put the money messages after the field's name.
func TestAmountOffMessages(t *testing.T) {
	tests := []struct {
		name string
		in   CreateInput
		msg  string
	}{
		{"usd decimals", okFlat("usd", "5.555"), "amount_off can have at most 2 decimal places for USD"},
		{"jpy decimals", okFlat("jpy", "500.5"), "amount_off must be a whole number: JPY has no decimal places"},
		{"flat negative", okFlat("usd", "-5"), "amount_off must be positive"},
		{"flat too large", okFlat("usd", "1000000"), "amount_off must be at most 999999.99 USD"},
		{"flat missing", okFlat("usd", ""), "amount_off is required"},
		{"flat NaN", okFlat("usd", "NaN"), "amount_off must be a plain decimal number such as 5.50"},
		{"percentage negative", CreateInput{Code: "A1", PromoType: Percentage, AmountOff: "-5"}, "amount_off must be positive"},
		{"percentage decimals", CreateInput{Code: "A1", PromoType: Percentage, AmountOff: "12.345"},
			"amount_off can have at most 2 decimal places"},
		{"percentage over 100", CreateInput{Code: "A1", PromoType: Percentage, AmountOff: "100.5"}, "amount_off must be at most 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPromoCode(tt.in, testNow)
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != CodeInvalidRequest || pe.Param != "amount_off" {
				t.Fatalf("want a 400 on amount_off, got %v", err)
			}
			if pe.Message != tt.msg {
				t.Fatalf("message %q, want %q", pe.Message, tt.msg)
			}
			for _, bad := range []string{"more than", "(no decimals)", "USD USD"} {
				if strings.Contains(pe.Message, bad) {
					t.Fatalf("message %q reads badly (%q)", pe.Message, bad)
				}
			}
		})
	}
}
