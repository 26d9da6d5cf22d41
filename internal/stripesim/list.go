package stripesim

import "sort"

// listSchemaBase are the pagination parameters every list endpoint takes.
var listSchemaBase = []string{"limit", "starting_after", "ending_before", "expand[#]", "created", "created[*]"}

// paginate implements Stripe's cursor pagination over items (any order):
// newest first; starting_after returns older objects, ending_before the
// newer objects closest to the cursor (still newest first).
func paginate[T any](c *reqCtx, url string, items []T, seqOf func(T) int64, cursor func(id string) (int64, bool), kind string, render func(T) map[string]any) (map[string]any, *apiError) {
	limit := int64(10)
	if v, ok, err := c.p.int64("limit"); err != nil {
		return nil, err
	} else if ok {
		if v < 1 {
			return nil, invalidParam("limit", "This value must be greater than or equal to 1.")
		}
		if v > 100 {
			return nil, invalidParam("limit", "This value must be less than or equal to 100.")
		}
		limit = v
	}
	sort.SliceStable(items, func(i, j int) bool { return seqOf(items[i]) > seqOf(items[j]) })

	sa, hasSA := c.p.str("starting_after")
	eb, hasEB := c.p.str("ending_before")
	if hasSA && sa != "" && hasEB && eb != "" {
		return nil, invalidParam("starting_after", "You may only specify one of these parameters: ending_before, starting_after.")
	}
	var page []T
	hasMore := false
	switch {
	case hasSA && sa != "":
		cs, ok := cursor(sa)
		if !ok {
			return nil, noSuchParam(kind, "starting_after", sa)
		}
		var rest []T
		for _, it := range items {
			if seqOf(it) < cs {
				rest = append(rest, it)
			}
		}
		if int64(len(rest)) > limit {
			rest, hasMore = rest[:limit], true
		}
		page = rest
	case hasEB && eb != "":
		cs, ok := cursor(eb)
		if !ok {
			return nil, noSuchParam(kind, "ending_before", eb)
		}
		var newer []T
		for _, it := range items {
			if seqOf(it) > cs {
				newer = append(newer, it)
			}
		}
		if int64(len(newer)) > limit {
			newer, hasMore = newer[int64(len(newer))-limit:], true
		}
		page = newer
	default:
		page = items
		if int64(len(page)) > limit {
			page, hasMore = page[:limit], true
		}
	}
	data := make([]any, 0, len(page))
	for _, it := range page {
		data = append(data, render(it))
	}
	return map[string]any{"object": "list", "data": data, "has_more": hasMore, "url": url}, nil
}
