package stripesim

import (
	"strings"

	stripe "github.com/stripe/stripe-go/v76"
)

type customer struct {
	ID            string
	seq           int64
	created       int64
	email         string
	name          string
	description   string
	phone         string
	metadata      map[string]string
	clock         string // test clock ID
	currency      string
	invoicePrefix string
	nextInvoice   int64
	decline       bool      // set through /_sim: invoice payments fail
	discount      *discount // a discount on the customer (customer_discounts.go)
}

// customerNow is the customer's current time: its test clock's frozen time
// or real time. Caller holds s.mu.
func (s *Server) customerNow(cu *customer) int64 {
	if cu != nil && cu.clock != "" {
		if tc := s.clocks[cu.clock]; tc != nil {
			return tc.frozen
		}
	}
	return s.realNow()
}

func (s *Server) renderCustomer(cu *customer) map[string]any {
	delinquent := false
	for _, in := range s.customerInvoices(cu.ID) {
		if in.status == "open" {
			delinquent = true
		}
	}
	return map[string]any{
		"id":             cu.ID,
		"object":         "customer",
		"address":        nil,
		"balance":        0,
		"created":        cu.created,
		"currency":       nstr(cu.currency),
		"default_source": nil,
		"delinquent":     delinquent,
		"description":    nstr(cu.description),
		"discount":       s.renderCustomerDiscount(cu),
		"email":          nstr(cu.email),
		"invoice_prefix": cu.invoicePrefix,
		"invoice_settings": map[string]any{
			"custom_fields": nil, "default_payment_method": nil, "footer": nil, "rendering_options": nil,
		},
		"livemode":              false,
		"metadata":              metaJSON(cu.metadata),
		"name":                  nstr(cu.name),
		"next_invoice_sequence": cu.nextInvoice,
		"phone":                 nstr(cu.phone),
		"preferred_locales":     []any{},
		"shipping":              nil,
		"tax_exempt":            "none",
		"test_clock":            nstr(cu.clock),
	}
}

var customerIgnored = []string{"address", "address[**]", "shipping", "shipping[**]", "preferred_locales",
	"preferred_locales[#]", "invoice_settings[**]", "payment_method", "tax[**]", "tax_exempt", "validate"}

var customerCreateSchema = newSchema(
	[]string{"email", "name", "description", "phone", "metadata", "metadata[*]", "test_clock", "expand[#]", "coupon", "promotion_code"},
	customerIgnored, formNames(stripe.CustomerParams{}))

var customerUpdateSchema = newSchema(
	[]string{"email", "name", "description", "phone", "metadata", "metadata[*]", "expand[#]", "coupon", "promotion_code"},
	customerIgnored, formNames(stripe.CustomerParams{}))

// customerFields reads the editable scalar fields.
func customerFields(c *reqCtx, cu *customer) *apiError {
	for _, f := range []struct {
		name string
		dst  *string
	}{{"email", &cu.email}, {"name", &cu.name}, {"description", &cu.description}, {"phone", &cu.phone}} {
		v, ok, err := c.p.scalar(f.name)
		if err != nil {
			return err
		}
		if ok {
			*f.dst = v
		}
	}
	if cu.email != "" && (!strings.Contains(cu.email, "@") || strings.ContainsAny(cu.email, " \t")) {
		return invalidParamCode("email_invalid", "email", "Invalid email address: %s", cu.email)
	}
	mu, err := c.p.metadata()
	if err != nil {
		return err
	}
	cu.metadata = mu.apply(cu.metadata)
	return nil
}

func hCustomerCreate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(customerCreateSchema); err != nil {
		return nil, err
	}
	s := c.s
	cu := &customer{ID: newID("cus"), metadata: map[string]string{}, nextInvoice: 1,
		invoicePrefix: strings.ToUpper(randomString(8, "0123456789ABCDEF"))}
	if err := customerFields(c, cu); err != nil {
		return nil, err
	}
	if clk, ok, err := c.p.scalar("test_clock"); err != nil {
		return nil, err
	} else if ok && clk != "" {
		if s.clocks[clk] == nil {
			return nil, noSuchParam("test_clock", "test_clock", clk)
		}
		cu.clock = clk
	}
	dr, err := readCustomerDiscount(c)
	if err != nil {
		return nil, err
	}
	apply, err := s.customerDiscountChange(cu, dr)
	if err != nil {
		return nil, err
	}
	cu.seq = s.nextSeq()
	cu.created = s.customerNow(cu)
	s.customers[cu.ID] = cu
	s.idx.customers.add(cu)
	discEvent := apply()
	obj := s.renderCustomer(cu)
	s.emit("customer.created", s.renderCustomer(cu), nil, c.origin(), cu.created)
	if discEvent != nil {
		s.emit(discEvent.typ, discEvent.obj, discEvent.prev, c.origin(), discEvent.created)
	}
	return obj, nil
}

func (s *Server) customerByPath(id string) (*customer, *apiError) {
	cu := s.customers[id]
	if cu == nil {
		return nil, noSuchPath("customer", id)
	}
	return cu, nil
}

var retrieveSchema = newSchema([]string{"expand[#]"}, nil, nil)

func hCustomerRetrieve(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(retrieveSchema); err != nil {
		return nil, err
	}
	cu, err := c.s.customerByPath(c.id())
	if err != nil {
		return nil, err
	}
	return c.s.renderCustomer(cu), nil
}

func hCustomerUpdate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(customerUpdateSchema); err != nil {
		return nil, err
	}
	s := c.s
	cu, err := s.customerByPath(c.id())
	if err != nil {
		return nil, err
	}
	before := s.renderCustomer(cu)
	upd := *cu
	if err := customerFields(c, &upd); err != nil {
		return nil, err
	}
	dr, err := readCustomerDiscount(c)
	if err != nil {
		return nil, err
	}
	apply, err := s.customerDiscountChange(cu, dr)
	if err != nil {
		return nil, err
	}
	*cu = upd
	if ev := apply(); ev != nil {
		s.emit(ev.typ, ev.obj, ev.prev, c.origin(), ev.created)
	}
	after := s.renderCustomer(cu)
	s.emitUpdate("customer.updated", before, s.renderCustomer(cu), c.origin(), s.customerNow(cu))
	return after, nil
}

var customerListSchema = newSchema(append([]string{"email", "test_clock"}, listSchemaBase...), nil, nil)

func hCustomerList(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(customerListSchema); err != nil {
		return nil, err
	}
	s := c.s
	email, hasEmail := c.p.str("email")
	clock, hasClock := c.p.str("test_clock")
	created, err := c.p.rangeFilter("created")
	if err != nil {
		return nil, err
	}
	return paginate(c, "/v1/customers", s.idx.customers.view(s.customers, func(x *customer) int64 { return x.seq }), func(cu *customer) bool {
		if hasEmail && cu.email != email {
			return false
		}
		if hasClock && cu.clock != clock {
			return false
		}
		if !created.match(cu.created) {
			return false
		}
		return true
	}, func(x *customer) int64 { return x.seq },
		func(id string) (int64, bool) {
			if x := s.customers[id]; x != nil {
				return x.seq, true
			}
			return 0, false
		}, "customer", s.renderCustomer)
}
