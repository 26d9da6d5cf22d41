package stripesim

import (
	"fmt"
	"strconv"

	stripe "github.com/stripe/stripe-go/v76"
)

type price struct {
	ID         string
	seq        int64
	created    int64
	currency   string
	unitAmount int64
	recurring  bool // monthly when true; one_time otherwise
	product    string
	active     bool
	nickname   string
	lookupKey  string
	metadata   map[string]string
}

func (s *Server) renderPrice(p *price) map[string]any {
	typ := "one_time"
	var rec any
	if p.recurring {
		typ = "recurring"
		rec = map[string]any{
			"aggregate_usage":   nil,
			"interval":          "month",
			"interval_count":    1,
			"trial_period_days": nil,
			"usage_type":        "licensed",
		}
	}
	return map[string]any{
		"id":                  p.ID,
		"object":              "price",
		"active":              p.active,
		"billing_scheme":      "per_unit",
		"created":             p.created,
		"currency":            p.currency,
		"custom_unit_amount":  nil,
		"livemode":            false,
		"lookup_key":          nstr(p.lookupKey),
		"metadata":            metaJSON(p.metadata),
		"nickname":            nstr(p.nickname),
		"product":             p.product,
		"recurring":           rec,
		"tax_behavior":        "unspecified",
		"tiers_mode":          nil,
		"transform_quantity":  nil,
		"type":                typ,
		"unit_amount":         p.unitAmount,
		"unit_amount_decimal": strconv.FormatInt(p.unitAmount, 10),
	}
}

var priceCreateSchema = newSchema(
	[]string{"currency", "unit_amount", "recurring[interval]", "recurring[interval_count]", "recurring[usage_type]",
		"product", "product_data[name]", "product_data[id]", "product_data[metadata]", "product_data[metadata][*]",
		"metadata", "metadata[*]", "nickname", "lookup_key", "transfer_lookup_key", "active", "billing_scheme", "expand[#]"},
	[]string{"tax_behavior", "product_data[statement_descriptor]", "product_data[unit_label]", "product_data[tax_code]", "product_data[active]"},
	formNames(stripe.PriceParams{}))

var priceUpdateSchema = newSchema(
	[]string{"active", "metadata", "metadata[*]", "nickname", "lookup_key", "transfer_lookup_key", "expand[#]"},
	[]string{"tax_behavior"}, formNames(stripe.PriceParams{}))

// addPrice records a price and emits price.created. Caller holds s.mu.
func (s *Server) addPrice(p *price, o eventOrigin) *price {
	p.ID = newID("price")
	p.seq = s.nextSeq()
	p.created = s.realNow()
	if p.metadata == nil {
		p.metadata = map[string]string{}
	}
	s.prices[p.ID] = p
	s.idx.prices.add(p)
	s.emit("price.created", s.renderPrice(p), nil, o, p.created)
	return p
}

// lookupKeyOwner returns the active price using key, if any.
func (s *Server) lookupKeyOwner(key string) *price {
	for _, p := range s.prices {
		if p.lookupKey == key {
			return p
		}
	}
	return nil
}

func hPriceCreate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(priceCreateSchema); err != nil {
		return nil, err
	}
	s := c.s
	p := &price{active: true}
	cur, ok, err := c.p.scalar("currency")
	if err != nil {
		return nil, err
	}
	if !ok || cur == "" {
		return nil, missingParam("currency")
	}
	if p.currency, err = parseCurrency("currency", cur); err != nil {
		return nil, err
	}
	amt, ok, err := c.p.int64("unit_amount")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, missingParam("unit_amount")
	}
	if amt < 0 || amt > 99999999 {
		return nil, invalidParam("unit_amount", "Invalid unit_amount: must be between 0 and 99999999.")
	}
	p.unitAmount = amt
	if bs, ok := c.p.str("billing_scheme"); ok && bs != "per_unit" {
		return nil, invalidParam("billing_scheme", "stripe-sim only supports billing_scheme=per_unit.")
	}
	if c.p.has("recurring") {
		iv, ok, err := c.p.scalar("recurring", "interval")
		if err != nil {
			return nil, err
		}
		if !ok || iv == "" {
			return nil, missingParam("recurring[interval]")
		}
		switch iv {
		case "month":
		case "day", "week", "year":
			return nil, invalidParam("recurring[interval]", "stripe-sim only supports monthly prices (recurring[interval]=month); %q is valid on Stripe but not simulated.", iv)
		default:
			return nil, invalidParam("recurring[interval]", "Invalid recurring[interval]: must be one of day, week, month, or year")
		}
		if n, ok, err := c.p.int64("recurring", "interval_count"); err != nil {
			return nil, err
		} else if ok && n != 1 {
			return nil, invalidParam("recurring[interval_count]", "stripe-sim only supports recurring[interval_count]=1.")
		}
		if ut, ok := c.p.str("recurring", "usage_type"); ok && ut != "licensed" {
			return nil, invalidParam("recurring[usage_type]", "stripe-sim only supports recurring[usage_type]=licensed.")
		}
		p.recurring = true
	}
	prodID, hasProd, err := c.p.scalar("product")
	if err != nil {
		return nil, err
	}
	hasPD := c.p.has("product_data")
	if hasProd && hasPD {
		return nil, invalidParam("product", "You may only specify one of these parameters: product, product_data.")
	}
	if (!hasProd || prodID == "") && !hasPD {
		return nil, missingParam("product")
	}
	var pd *product
	if hasPD {
		name, ok, err := c.p.scalar("product_data", "name")
		if err != nil {
			return nil, err
		}
		if !ok || name == "" {
			return nil, missingParam("product_data[name]")
		}
		pid, _ := c.p.str("product_data", "id")
		meta := map[string]string{}
		if n := c.p.node("product_data", "metadata"); n != nil {
			for _, k := range n.order {
				if v := n.kids[k].val; v != nil && *v != "" {
					meta[k] = *v
				}
			}
		}
		if pid != "" && s.products[pid] != nil {
			return nil, &apiError{Status: 400, Type: typeInvalidRequest, Code: "resource_already_exists",
				Param: "product_data[id]", Message: "Product already exists."}
		}
		pd = &product{ID: pid, name: name, active: true, metadata: meta}
	} else if s.products[prodID] == nil {
		return nil, noSuchParam("product", "product", prodID)
	}
	p.nickname, _ = c.p.str("nickname")
	if a, ok, err := c.p.bool("active"); err != nil {
		return nil, err
	} else if ok {
		p.active = a
	}
	mu, err := c.p.metadata()
	if err != nil {
		return nil, err
	}
	p.metadata = mu.apply(nil)
	transfer, _, err := c.p.bool("transfer_lookup_key")
	if err != nil {
		return nil, err
	}
	if lk, _ := c.p.str("lookup_key"); lk != "" {
		if owner := s.lookupKeyOwner(lk); owner != nil {
			if !transfer {
				return nil, requestError("lookup_key", "A price (`%s`) already uses that lookup key.", owner.ID)
			}
			owner.lookupKey = ""
		}
		p.lookupKey = lk
	}
	if pd != nil {
		s.addProduct(pd, c.origin())
		prodID = pd.ID
	}
	p.product = prodID
	s.addPrice(p, c.origin())
	return s.renderPrice(p), nil
}

func (s *Server) priceByPath(id string) (*price, *apiError) {
	p := s.prices[id]
	if p == nil {
		return nil, noSuchPath("price", id)
	}
	return p, nil
}

func hPriceRetrieve(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(retrieveSchema); err != nil {
		return nil, err
	}
	p, err := c.s.priceByPath(c.id())
	if err != nil {
		return nil, err
	}
	return c.s.renderPrice(p), nil
}

func hPriceUpdate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(priceUpdateSchema); err != nil {
		return nil, err
	}
	s := c.s
	p, err := s.priceByPath(c.id())
	if err != nil {
		return nil, err
	}
	before := s.renderPrice(p)
	upd := *p
	if a, ok, err := c.p.bool("active"); err != nil {
		return nil, err
	} else if ok {
		upd.active = a
	}
	if v, ok := c.p.str("nickname"); ok {
		upd.nickname = v
	}
	mu, err := c.p.metadata()
	if err != nil {
		return nil, err
	}
	upd.metadata = mu.apply(upd.metadata)
	transfer, _, err := c.p.bool("transfer_lookup_key")
	if err != nil {
		return nil, err
	}
	var steal *price
	if lk, ok := c.p.str("lookup_key"); ok {
		if owner := s.lookupKeyOwner(lk); lk != "" && owner != nil && owner != p {
			if !transfer {
				return nil, requestError("lookup_key", "A price (`%s`) already uses that lookup key.", owner.ID)
			}
			steal = owner
		}
		upd.lookupKey = lk
	}
	if steal != nil {
		steal.lookupKey = ""
	}
	*p = upd
	s.emitUpdate("price.updated", before, s.renderPrice(p), c.origin(), s.realNow())
	return s.renderPrice(p), nil
}

var priceListSchema = newSchema(append([]string{"active", "currency", "product", "type", "lookup_keys[#]",
	"recurring[interval]", "recurring[usage_type]"}, listSchemaBase...), nil, nil)

func hPriceList(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(priceListSchema); err != nil {
		return nil, err
	}
	s := c.s
	active, hasActive, err := c.p.bool("active")
	if err != nil {
		return nil, err
	}
	cur, hasCur := c.p.str("currency")
	prod, hasProd := c.p.str("product")
	typ, hasType := c.p.str("type")
	if hasType && typ != "one_time" && typ != "recurring" {
		return nil, invalidParam("type", "Invalid type: must be one of one_time or recurring")
	}
	keys, err := c.p.strList("lookup_keys")
	if err != nil {
		return nil, err
	}
	created, err := c.p.rangeFilter("created")
	if err != nil {
		return nil, err
	}
	iv, hasIV := c.p.str("recurring", "interval")
	return paginate(c, "/v1/prices", s.idx.prices.view(s.prices, func(x *price) int64 { return x.seq }), func(p *price) bool {
		r := s.renderPrice(p)
		switch {
		case hasActive && p.active != active,
			hasCur && fmt.Sprint(r["currency"]) != cur,
			hasProd && p.product != prod,
			hasType && r["type"] != typ,
			hasIV && (!p.recurring || iv != "month"),
			!created.match(p.created):
			return false
		}
		if len(keys) > 0 {
			found := false
			for _, k := range keys {
				if k != "" && k == p.lookupKey {
					found = true
				}
			}
			if !found {
				return false
			}
		}
		return true
	}, func(x *price) int64 { return x.seq },
		func(id string) (int64, bool) {
			if x := s.prices[id]; x != nil {
				return x.seq, true
			}
			return 0, false
		}, "price", s.renderPrice)
}
