package stripesim

import (
	"sort"
	"strconv"
	"strings"
)

// GET /v1/customers/search (Stripe's search query language, a subset):
// clauses field:'value' (exact) or field~'value' (substring, at least 3
// characters) on email, name, phone, description and metadata['key'], joined
// by all AND or all OR; limit (1..100, default 10) and page (the next_page of
// the previous answer). Anything else is a 400 naming `query`. Stripe's search
// is eventually consistent (new customers may take a minute to appear); the
// simulator's is immediate.

type searchClause struct {
	field, key, value string
	substring         bool
}

func parseSearchQuery(q string) ([]searchClause, bool, *apiError) {
	bad := func() *apiError {
		return invalidParam("query", "Unsupported or malformed search query: %q (stripe-sim supports field:'value' and field~'value' on email, name, phone, description and metadata['key'], joined by AND or by OR).", q)
	}
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, false, missingParam("query")
	}
	sep, or := " AND ", false
	if strings.Contains(q, " OR ") {
		if strings.Contains(q, " AND ") {
			return nil, false, bad()
		}
		sep, or = " OR ", true
	}
	var out []searchClause
	for _, part := range strings.Split(q, sep) {
		part = strings.TrimSpace(part)
		i := strings.IndexAny(part, ":~")
		if i <= 0 || len(part) < i+3 || part[i+1] != '\'' || part[len(part)-1] != '\'' {
			return nil, false, bad()
		}
		cl := searchClause{field: part[:i], value: part[i+2 : len(part)-1], substring: part[i] == '~'}
		if strings.HasPrefix(cl.field, "metadata['") && strings.HasSuffix(cl.field, "']") {
			cl.key = cl.field[len("metadata['") : len(cl.field)-2]
			cl.field = "metadata"
		}
		switch cl.field {
		case "email", "name", "phone", "description", "metadata":
		default:
			return nil, false, bad()
		}
		if cl.substring && len(cl.value) < 3 {
			return nil, false, bad()
		}
		out = append(out, cl)
	}
	return out, or, nil
}

func (cl searchClause) match(cu *customer) bool {
	var v string
	switch cl.field {
	case "email":
		v = cu.email
	case "name":
		v = cu.name
	case "phone":
		v = cu.phone
	case "description":
		v = cu.description
	case "metadata":
		v = cu.metadata[cl.key]
	}
	if cl.substring {
		return strings.Contains(strings.ToLower(v), strings.ToLower(cl.value))
	}
	return strings.EqualFold(v, cl.value)
}

var customerSearchSchema = newSchema([]string{"query", "limit", "page", "expand[#]"}, nil, nil)

func hCustomerSearch(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(customerSearchSchema); err != nil {
		return nil, err
	}
	s := c.s
	clauses, or, err := parseSearchQuery(c.p.strOr("", "query"))
	if err != nil {
		return nil, err
	}
	limit := int64(10)
	if v, ok, err := c.p.int64("limit"); err != nil {
		return nil, err
	} else if ok {
		if v < 1 || v > 100 {
			return nil, invalidParam("limit", "Invalid limit: must be between 1 and 100")
		}
		limit = v
	}
	offset := 0
	if pg := c.p.strOr("", "page"); pg != "" {
		n, perr := strconv.Atoi(strings.TrimPrefix(pg, "page_"))
		if !strings.HasPrefix(pg, "page_") || perr != nil || n < 0 {
			return nil, invalidParam("page", "Invalid page: %q", pg)
		}
		offset = n
	}
	var hits []*customer
	for _, cu := range s.customers {
		ok := !or
		for _, cl := range clauses {
			if or {
				ok = ok || cl.match(cu)
			} else {
				ok = ok && cl.match(cu)
			}
		}
		if ok {
			hits = append(hits, cu)
		}
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].seq > hits[j].seq })
	data := []any{}
	end := min(offset+int(limit), len(hits))
	for i := offset; i < end; i++ {
		data = append(data, s.renderCustomer(hits[i]))
	}
	var next any
	if end < len(hits) {
		next = "page_" + strconv.Itoa(end)
	}
	return map[string]any{"object": "search_result", "data": data, "has_more": end < len(hits), "next_page": next,
		"url": "/v1/customers/search"}, nil
}

func init() { addRoute("GET", "/v1/customers/search", hCustomerSearch) }
