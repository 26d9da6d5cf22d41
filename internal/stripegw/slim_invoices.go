package stripegw

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// Reconcile reads every paid invoice of the account (13 per subscription and
// year). stripe-go's Invoice decodes all of one: its lines with their
// prices and plans, the customer's address, tax and payment fields, most of
// it through custom decoders; about 0.16 ms of CPU per invoice, more than a
// core at Stripe's live read rate of 100 pages a second. slimInvoice is the
// part reconcile reads (toStripeInvoice's fields), decoded by
// go-json-experiment/json (listSlim), which skips the rest without building
// it.

// slimInvoice is an invoice as reconcile reads it.
type slimInvoice struct {
	ID                string `json:"id"`
	Created           int64  `json:"created"`
	Currency          string `json:"currency"`
	AmountPaid        int64  `json:"amount_paid"`
	Customer          idRef  `json:"customer"`
	Subscription      idRef  `json:"subscription"`
	StatusTransitions *struct {
		PaidAt int64 `json:"paid_at"`
	} `json:"status_transitions"`
	Discount             *slimDiscount `json:"discount"`
	TotalDiscountAmounts []struct {
		Amount   int64 `json:"amount"`
		Discount idRef `json:"discount"`
	} `json:"total_discount_amounts"`
}

// slimDiscount is a discount as reconcile reads it.
type slimDiscount struct {
	ID            string `json:"id"`
	Coupon        idRef  `json:"coupon"`
	PromotionCode idRef  `json:"promotion_code"`
	Customer      idRef  `json:"customer"`
	Subscription  string `json:"subscription"`
	Start         int64  `json:"start"`
	End           int64  `json:"end"`
}

// idRef is an expandable field: an ID, the object (its id), or null.
type idRef string

func (r *idRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*r = ""
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*r = idRef(s)
		return nil
	}
	var o struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	*r = idRef(o.ID)
	return nil
}

// UnmarshalJSONFrom is UnmarshalJSON for go-json-experiment/json (listSlim).
func (r *idRef) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch k := dec.PeekKind(); k {
	case 'n', '"':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		*r = ""
		if k == '"' {
			*r = idRef(tok.String())
		}
		return nil
	case '{':
		var o struct {
			ID string `json:"id"`
		}
		if err := jsonv2.UnmarshalDecode(dec, &o); err != nil {
			return err
		}
		*r = idRef(o.ID)
		return nil
	}
	return fmt.Errorf("an ID or an object with an id, not a JSON %v", dec.PeekKind())
}

// slimList is one page of a list of T.
type slimList[T any] struct {
	stripe.APIResource
	stripe.ListMeta
	Data []*T `json:"data"`
}

// listSlimInvoices is the Invoices.List of stripe-go (the same request,
// parameters, retries and errors) decoding slimInvoice.
func (g *Gateway) listSlimInvoices(params *stripe.InvoiceListParams) *stripe.Iter {
	return listSlim[slimInvoice](g, "/v1/invoices", params)
}

// slimOptions make go-json-experiment/json read as encoding/json does (what
// stripe-go uses): names matched without regard to case, invalid UTF-8
// and duplicate names accepted.
var slimOptions = jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true),
	jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))

// listSlim is one page of a list through stripe-go's backend: the request
// of the List of stripe-go (params, with the page's cursor in it; its
// headers, retries, telemetry, and its errors for an answer >= 400), with
// the answer read as a stream (CallStreaming) and decoded into a slim page
// of T by go-json-experiment/json, one pass that skips what the page
// does not name. CallRaw would decode the page with encoding/json, which
// scans all of it twice before decoding it (stripe-go's Unmarshal and its
// response setter's): most of reconcile's CPU, a page being ~0.5 MB.
func listSlim[T any](g *Gateway, path string, params listParams) *stripe.Iter {
	c := g.api.Invoices // any client: its backend and key
	return stripe.GetIter(params, func(p *stripe.Params, b *form.Values) ([]any, stripe.ListContainer, error) {
		list := &slimList[T]{}
		resp := &streamedResponse{}
		if err := c.B.CallStreaming(http.MethodGet, path, c.Key, &pageForm{p: p, values: b}, resp); err != nil {
			return nil, list, err
		}
		defer resp.Body.Close()
		if err := jsonv2.UnmarshalRead(resp.Body, list, slimOptions); err != nil {
			return nil, list, fmt.Errorf("decoding the answer to GET %s (request %s): %w", path, resp.RequestID, err)
		}
		items := make([]any, len(list.Data))
		for i, v := range list.Data {
			items[i] = v
		}
		return items, list, nil
	})
}

// pageForm is a page's parameters as the iterator gives them (p, and the
// query in values) in the shape CallStreaming takes (a parameters struct
// with Metadata and Expand fields, which it checks, and encoded with the
// form package: AppendTo writes values, in their order).
type pageForm struct {
	Expand   []*string         `form:"-"`
	Metadata map[string]string `form:"-"`
	p        *stripe.Params    `form:"-"`
	values   *form.Values      `form:"-"`
}

func (f *pageForm) GetParams() *stripe.Params { return f.p }

func (f *pageForm) AppendTo(values *form.Values, _ []string) {
	if f.values == nil || f.values.Empty() {
		return
	}
	for _, kv := range strings.Split(f.values.Encode(), "&") {
		k, v, _ := strings.Cut(kv, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		values.Add(k, v)
	}
}

// listParams are a List's parameters (stripe.InvoiceListParams...).
type listParams interface {
	stripe.ListParamsContainer
	stripe.ParamsContainer
}

// streamedResponse receives CallStreaming's answer.
type streamedResponse struct{ *stripe.StreamingAPIResponse }

func (r *streamedResponse) SetLastResponse(resp *stripe.StreamingAPIResponse) {
	r.StreamingAPIResponse = resp
}

// slimToStripeInvoice is toStripeInvoice for a slimInvoice.
func slimToStripeInvoice(in *slimInvoice) promo.StripeInvoice {
	out := promo.StripeInvoice{
		ID:           in.ID,
		Currency:     strings.ToLower(in.Currency),
		AmountPaid:   in.AmountPaid,
		PaidAt:       unix(in.Created),
		Customer:     string(in.Customer),
		Subscription: string(in.Subscription),
	}
	if st := in.StatusTransitions; st != nil && st.PaidAt != 0 {
		out.PaidAt = unix(st.PaidAt)
	}
	// 2023-10-16 invoices carry at most one discount, in `discount`.
	out.Discount = in.Discount.toStripe(out.Customer, out.Subscription)
	if out.Discount != nil {
		for _, da := range in.TotalDiscountAmounts {
			if da.Discount != "" && string(da.Discount) == out.Discount.ID {
				out.DiscountAmount += da.Amount
			}
		}
	}
	return out
}
