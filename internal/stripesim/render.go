package stripesim

import (
	"reflect"
	"sort"
	"strings"
)

// Objects are rendered to map[string]any in the JSON shape of API version
// 2023-10-16. Every render builds fresh maps, so callers may mutate them
// (expansion does).

func nstr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nint(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

func metaJSON(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyMeta(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// formNames lists the top-level form parameter names of a stripe-go params
// struct. It is used to tell parameters real Stripe knows (but the
// simulator does not model) from unknown ones.
func formNames(v any) []string {
	var out []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("form"), ",")
			switch name {
			case "", "-":
				continue
			case "*":
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft)
				}
				continue
			}
			out = append(out, name)
		}
	}
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	walk(t)
	return out
}

// expandObject applies expand[] paths ("latest_invoice",
// "data.product", "items.data.price.product") to a rendered object.
func (s *Server) expandObject(obj map[string]any, paths [][]string) *apiError {
	for _, p := range paths {
		if err := s.expandPath(obj, p, strings.Join(p, ".")); err != nil {
			return err
		}
	}
	return nil
}

func cannotExpand(full string) *apiError {
	return invalidParam("expand", "This property cannot be expanded (%s).", full)
}

func (s *Server) expandPath(v any, path []string, full string) *apiError {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		for _, el := range x {
			if err := s.expandPath(el, path, full); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		key := path[0]
		if x["object"] == "coupon" && key == "applies_to" && len(path) == 1 {
			// Coupon.applies_to is only present when expanded.
			id, _ := x["id"].(string)
			x["applies_to"] = s.couponAppliesToJSON(id)
			return nil
		}
		if x["object"] == "customer" && key == "subscriptions" {
			// Customer.subscriptions is only present when expanded.
			id, _ := x["id"].(string)
			x["subscriptions"] = s.customerSubscriptionsJSON(id)
		}
		val, ok := x[key]
		if !ok {
			return cannotExpand(full)
		}
		switch vv := val.(type) {
		case nil:
			return nil
		case string:
			obj, ok := s.lookupExpandable(key, vv)
			if !ok {
				return cannotExpand(full)
			}
			x[key] = obj
		case []any:
			for i, e := range vv {
				if id, ok := e.(string); ok {
					obj, ok := s.lookupExpandable(key, id)
					if !ok {
						if key == "discounts" {
							continue // preview discounts are not stored
						}
						return cannotExpand(full)
					}
					vv[i] = obj
				}
			}
		case map[string]any:
		default:
			if len(path) == 1 {
				return cannotExpand(full)
			}
		}
		if len(path) > 1 {
			return s.expandPath(x[key], path[1:], full)
		}
		return nil
	default:
		return cannotExpand(full)
	}
}

// lookupExpandable renders the object an expandable field refers to.
func (s *Server) lookupExpandable(field, id string) (map[string]any, bool) {
	switch field {
	case "customer":
		if cu := s.customers[id]; cu != nil {
			return s.renderCustomer(cu), true
		}
	case "product":
		if p := s.products[id]; p != nil {
			return s.renderProduct(p), true
		}
	case "price", "default_price":
		if p := s.prices[id]; p != nil {
			return s.renderPrice(p), true
		}
	case "latest_invoice", "invoice":
		if in := s.invoices[id]; in != nil {
			return s.renderInvoice(in), true
		}
	case "subscription":
		if sub := s.subs[id]; sub != nil {
			return s.renderSubscription(sub), true
		}
	case "promotion_code":
		if pc := s.promos[id]; pc != nil {
			return s.renderPromo(pc), true
		}
	case "coupon":
		if cp := s.coupons[id]; cp != nil {
			return s.renderCoupon(cp), true
		}
	case "test_clock":
		if tc := s.clocks[id]; tc != nil {
			return s.renderClock(tc), true
		}
	case "discount", "discounts":
		if d := s.discounts[id]; d != nil {
			return s.renderDiscount(d), true
		}
	}
	return nil, false
}

// customerSubscriptionsJSON renders the list a customer shows under
// expand[]=subscriptions (not canceled, newest first).
func (s *Server) customerSubscriptionsJSON(customerID string) map[string]any {
	var subs []*subscription
	for _, sub := range s.subs {
		if sub.customer == customerID && sub.status != "canceled" && sub.status != "incomplete_expired" {
			subs = append(subs, sub)
		}
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].seq > subs[j].seq })
	data := make([]any, 0, len(subs))
	for _, sub := range subs {
		data = append(data, s.renderSubscription(sub))
	}
	return map[string]any{"object": "list", "data": data, "has_more": false, "total_count": len(data),
		"url": "/v1/customers/" + customerID + "/subscriptions"}
}
