package stripesim

import (
	stripe "github.com/stripe/stripe-go/v76"
)

type product struct {
	ID          string
	seq         int64
	created     int64
	updated     int64
	name        string
	description string
	active      bool
	metadata    map[string]string
}

func (s *Server) renderProduct(p *product) map[string]any {
	return map[string]any{
		"id":                   p.ID,
		"object":               "product",
		"active":               p.active,
		"created":              p.created,
		"default_price":        nil,
		"description":          nstr(p.description),
		"features":             []any{},
		"images":               []any{},
		"livemode":             false,
		"metadata":             metaJSON(p.metadata),
		"name":                 p.name,
		"package_dimensions":   nil,
		"shippable":            nil,
		"statement_descriptor": nil,
		"tax_code":             nil,
		"type":                 "service",
		"unit_label":           nil,
		"updated":              p.updated,
		"url":                  nil,
	}
}

var productIgnored = []string{"images", "images[#]", "url", "statement_descriptor", "tax_code", "unit_label", "shippable", "features[**]"}

var productCreateSchema = newSchema(
	[]string{"id", "name", "description", "active", "metadata", "metadata[*]", "expand[#]"},
	productIgnored, formNames(stripe.ProductParams{}))

var productUpdateSchema = newSchema(
	[]string{"name", "description", "active", "metadata", "metadata[*]", "expand[#]"},
	productIgnored, formNames(stripe.ProductParams{}))

// addProduct assigns ID/timestamps, records the product and emits
// product.created. Caller holds s.mu.
func (s *Server) addProduct(p *product, o eventOrigin) *product {
	if p.ID == "" {
		p.ID = newID("prod")
	}
	now := s.realNow()
	p.seq, p.created, p.updated = s.nextSeq(), now, now
	if p.metadata == nil {
		p.metadata = map[string]string{}
	}
	s.products[p.ID] = p
	s.idx.products.add(p)
	s.emit("product.created", s.renderProduct(p), nil, o, now)
	return p
}

func hProductCreate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(productCreateSchema); err != nil {
		return nil, err
	}
	s := c.s
	name, ok, err := c.p.scalar("name")
	if err != nil {
		return nil, err
	}
	if !ok || name == "" {
		return nil, missingParam("name")
	}
	id, _, err := c.p.scalar("id")
	if err != nil {
		return nil, err
	}
	if id != "" && s.products[id] != nil {
		return nil, &apiError{Status: 400, Type: typeInvalidRequest, Code: "resource_already_exists", Param: "id",
			Message: "Product already exists."}
	}
	mu, err := c.p.metadata()
	if err != nil {
		return nil, err
	}
	desc, _, err := c.p.scalar("description")
	if err != nil {
		return nil, err
	}
	active, hasActive, err := c.p.bool("active")
	if err != nil {
		return nil, err
	}
	p := &product{ID: id, name: name, description: desc, active: true, metadata: mu.apply(nil)}
	if hasActive {
		p.active = active
	}
	s.addProduct(p, c.origin())
	return s.renderProduct(p), nil
}

func (s *Server) productByPath(id string) (*product, *apiError) {
	p := s.products[id]
	if p == nil {
		return nil, noSuchPath("product", id)
	}
	return p, nil
}

func hProductRetrieve(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(retrieveSchema); err != nil {
		return nil, err
	}
	p, err := c.s.productByPath(c.id())
	if err != nil {
		return nil, err
	}
	return c.s.renderProduct(p), nil
}

func hProductUpdate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(productUpdateSchema); err != nil {
		return nil, err
	}
	s := c.s
	p, err := s.productByPath(c.id())
	if err != nil {
		return nil, err
	}
	before := s.renderProduct(p)
	upd := *p
	if v, ok, err := c.p.scalar("name"); err != nil {
		return nil, err
	} else if ok {
		if v == "" {
			return nil, invalidParamCode("parameter_invalid_empty", "name", "You passed an empty string for 'name'. We assume empty values are an attempt to unset a parameter; however 'name' cannot be unset. You should remove 'name' from your request or supply a non-empty value.")
		}
		upd.name = v
	}
	if v, ok, err := c.p.scalar("description"); err != nil {
		return nil, err
	} else if ok {
		upd.description = v
	}
	if v, ok, err := c.p.bool("active"); err != nil {
		return nil, err
	} else if ok {
		upd.active = v
	}
	mu, err := c.p.metadata()
	if err != nil {
		return nil, err
	}
	upd.metadata = mu.apply(upd.metadata)
	upd.updated = s.realNow()
	*p = upd
	s.emitUpdate("product.updated", before, s.renderProduct(p), c.origin(), p.updated)
	return s.renderProduct(p), nil
}

var productListSchema = newSchema(append([]string{"active", "ids[#]"}, listSchemaBase...), nil, nil)

func hProductList(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(productListSchema); err != nil {
		return nil, err
	}
	s := c.s
	active, hasActive, err := c.p.bool("active")
	if err != nil {
		return nil, err
	}
	ids, err := c.p.strList("ids")
	if err != nil {
		return nil, err
	}
	created, err := c.p.rangeFilter("created")
	if err != nil {
		return nil, err
	}
	idSet := map[string]bool{}
	for _, id := range ids {
		idSet[id] = true
	}
	return paginate(c, "/v1/products", s.idx.products.view(s.products, func(x *product) int64 { return x.seq }), func(p *product) bool {
		if hasActive && p.active != active {
			return false
		}
		if len(idSet) > 0 && !idSet[p.ID] {
			return false
		}
		if !created.match(p.created) {
			return false
		}
		return true
	}, func(x *product) int64 { return x.seq },
		func(id string) (int64, bool) {
			if x := s.products[id]; x != nil {
				return x.seq, true
			}
			return 0, false
		}, "product", s.renderProduct)
}
