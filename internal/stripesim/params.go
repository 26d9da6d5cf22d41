package stripesim

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// This file decodes Stripe's Rack-style form encoding (a[b][0][c]=v,
// expand[]=x) into a tree, validates the keys against a per-endpoint schema
// and offers typed accessors that produce Stripe-shaped errors.

// pnode is one node of the decoded parameter tree. A node may carry a
// scalar value (val), children (kids), or both (metadata= followed by
// metadata[k]=v).
type pnode struct {
	val   *string
	kids  map[string]*pnode
	order []string
}

func (n *pnode) child(k string) *pnode {
	if n.kids == nil {
		n.kids = map[string]*pnode{}
	}
	c, ok := n.kids[k]
	if !ok {
		c = &pnode{}
		n.kids[k] = c
		n.order = append(n.order, k)
	}
	return c
}

// params is a decoded request.
type params struct {
	root  *pnode
	pairs [][2]string // raw key/value pairs in arrival order
}

// splitKey turns "items[0][price]" into ["items","0","price"] and
// "expand[]" into ["expand",""]. ok is false for malformed keys.
func splitKey(k string) ([]string, bool) {
	i := strings.IndexByte(k, '[')
	if i < 0 {
		return []string{k}, k != ""
	}
	if i == 0 {
		return nil, false
	}
	segs := []string{k[:i]}
	rest := k[i:]
	for rest != "" {
		if rest[0] != '[' {
			return nil, false
		}
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return nil, false
		}
		segs = append(segs, rest[1:j])
		rest = rest[j+1:]
	}
	return segs, true
}

// parseParams decodes raw form pairs.
func parseParams(pairs [][2]string) (*params, *apiError) {
	p := &params{root: &pnode{}, pairs: pairs}
	for _, kv := range pairs {
		segs, ok := splitKey(kv[0])
		if !ok {
			return nil, invalidParam(kv[0], "Invalid parameter name: %s", kv[0])
		}
		n := p.root
		for i, s := range segs {
			if s == "" && i > 0 {
				// Rack semantics for "a[]" (append) and "a[][k]" (start a new
				// element when the last one already has k).
				var next string
				if i == len(segs)-1 {
					next = strconv.Itoa(len(n.order))
				} else {
					last := len(n.order) - 1
					if last >= 0 {
						if lc := n.kids[n.order[last]]; lc != nil && lc.kids[segs[i+1]] == nil {
							next = n.order[last]
						}
					}
					if next == "" {
						next = strconv.Itoa(len(n.order))
					}
				}
				s = next
			}
			n = n.child(s)
		}
		v := kv[1]
		n.val = &v
	}
	return p, nil
}

// formPairs reads url-encoded pairs preserving order.
func formPairs(raw string) ([][2]string, error) {
	var out [][2]string
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		ku, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		vu, err := url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{ku, vu})
	}
	return out, nil
}

// fingerprint is a canonical form of the parameters for idempotency
// comparisons (order independent).
func (p *params) fingerprint() string {
	vals := make([]string, 0, len(p.pairs))
	for _, kv := range p.pairs {
		vals = append(vals, url.QueryEscape(kv[0])+"="+url.QueryEscape(kv[1]))
	}
	sort.Strings(vals)
	return strings.Join(vals, "&")
}

// ---- schema ----

// schema lists the parameters one endpoint understands.
//
//   - allowed: modelled parameters, as key patterns. A pattern is a key in
//     bracket form whose segments may be "*" (any map key), "#" (an array
//     index or empty) or "**" (anything below, including nothing).
//   - ignored: real Stripe parameters that are accepted and have no effect
//     on the simulation (for example payment_behavior).
//   - unsupported: real Stripe top-level parameters that are not simulated;
//     they are rejected with a 400 that says so.
//
// Anything else is answered like Stripe: 400 parameter_unknown.
type schema struct {
	allowed     [][]string
	unsupported map[string]bool
}

func newSchema(allowed []string, ignored []string, unsupported []string) *schema {
	s := &schema{unsupported: map[string]bool{}}
	for _, a := range append(append([]string{}, allowed...), ignored...) {
		segs, ok := splitKey(a)
		if !ok {
			panic("stripesim: bad schema pattern " + a)
		}
		s.allowed = append(s.allowed, segs)
	}
	for _, u := range unsupported {
		s.unsupported[u] = true
	}
	return s
}

func matchPattern(pat, segs []string) bool {
	for i, ps := range pat {
		if ps == "**" {
			return true
		}
		if i >= len(segs) {
			return false
		}
		switch ps {
		case "*":
			if segs[i] == "" {
				return false
			}
		case "#":
			if segs[i] != "" {
				if _, err := strconv.Atoi(segs[i]); err != nil {
					return false
				}
			}
		default:
			if ps != segs[i] {
				return false
			}
		}
	}
	return len(pat) == len(segs)
}

// check validates every raw key against the schema.
func (sc *schema) check(p *params) *apiError {
	for _, kv := range p.pairs {
		segs, _ := splitKey(kv[0])
		ok := false
		for _, pat := range sc.allowed {
			if matchPattern(pat, segs) {
				ok = true
				break
			}
		}
		if ok {
			continue
		}
		if sc.unsupported[segs[0]] && !sc.modelsTop(segs[0]) {
			return unsupportedParam(segs[0])
		}
		return unknownParam(kv[0])
	}
	return nil
}

// modelsTop reports whether some allowed pattern starts with name, in which
// case an unmatched nested key is simply unknown.
func (sc *schema) modelsTop(name string) bool {
	for _, pat := range sc.allowed {
		if pat[0] == name {
			return true
		}
	}
	return false
}

// ---- typed accessors ----

func (p *params) node(path ...string) *pnode {
	n := p.root
	for _, s := range path {
		if n == nil || n.kids == nil {
			return nil
		}
		n = n.kids[s]
	}
	return n
}

func keyName(path []string) string {
	var b strings.Builder
	b.WriteString(path[0])
	for _, s := range path[1:] {
		b.WriteString("[" + s + "]")
	}
	return b.String()
}

// has reports whether the parameter was sent at all (with a scalar value or
// children).
func (p *params) has(path ...string) bool {
	return p.node(path...) != nil
}

// str returns a scalar parameter.
func (p *params) str(path ...string) (string, bool) {
	n := p.node(path...)
	if n == nil || n.val == nil {
		return "", false
	}
	return *n.val, true
}

// strOr returns the scalar or def.
func (p *params) strOr(def string, path ...string) string {
	if v, ok := p.str(path...); ok {
		return v
	}
	return def
}

// scalar is like str but rejects a hash where a string is expected.
func (p *params) scalar(path ...string) (string, bool, *apiError) {
	n := p.node(path...)
	if n == nil {
		return "", false, nil
	}
	if n.val == nil {
		return "", false, invalidParam(keyName(path), "Invalid string: %s must be a string, not a hash.", keyName(path))
	}
	return *n.val, true, nil
}

// int64 parses an integer parameter.
func (p *params) int64(path ...string) (int64, bool, *apiError) {
	v, ok, err := p.scalar(path...)
	if err != nil || !ok {
		return 0, ok, err
	}
	n, perr := strconv.ParseInt(v, 10, 64)
	if perr != nil {
		return 0, true, invalidParamCode("parameter_invalid_integer", keyName(path), "Invalid integer: %s", v)
	}
	return n, true, nil
}

// bool parses a boolean parameter.
func (p *params) bool(path ...string) (bool, bool, *apiError) {
	v, ok, err := p.scalar(path...)
	if err != nil || !ok {
		return false, ok, err
	}
	switch v {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, true, invalidParam(keyName(path), "Invalid boolean: %s", v)
}

// list returns the elements of an array parameter in index order.
func (p *params) list(path ...string) ([]*pnode, *apiError) {
	n := p.node(path...)
	if n == nil {
		return nil, nil
	}
	if n.val != nil && *n.val == "" && len(n.kids) == 0 {
		return []*pnode{}, nil // "items=" clears an array
	}
	type kv struct {
		i int
		n *pnode
	}
	var els []kv
	for _, k := range n.order {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 {
			return nil, invalidParam(keyName(path), "Invalid array: %s", keyName(path))
		}
		els = append(els, kv{i, n.kids[k]})
	}
	sort.SliceStable(els, func(a, b int) bool { return els[a].i < els[b].i })
	out := make([]*pnode, len(els))
	for i, e := range els {
		out[i] = e.n
	}
	return out, nil
}

// strList returns an array of strings (expand[0]=a&expand[1]=b).
func (p *params) strList(path ...string) ([]string, *apiError) {
	els, err := p.list(path...)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, e := range els {
		if e.val == nil {
			return nil, invalidParam(keyName(append(path, strconv.Itoa(i))), "Invalid string: expected a string")
		}
		out = append(out, *e.val)
	}
	return out, nil
}

// metadataUpdate describes a metadata parameter: clear everything (metadata=)
// and/or set (non-empty value) or delete (empty value) single keys.
type metadataUpdate struct {
	present bool
	clear   bool
	set     map[string]string
}

func (p *params) metadata() (metadataUpdate, *apiError) {
	n := p.node("metadata")
	if n == nil {
		return metadataUpdate{}, nil
	}
	mu := metadataUpdate{present: true, set: map[string]string{}}
	if n.val != nil {
		if *n.val != "" {
			return mu, invalidParam("metadata", "Invalid object")
		}
		mu.clear = true
	}
	for _, k := range n.order {
		c := n.kids[k]
		if c.val == nil {
			return mu, invalidParam("metadata["+k+"]", "Invalid metadata value: metadata values must be strings.")
		}
		if len(k) > 40 {
			return mu, invalidParam("metadata["+k+"]", "Metadata keys can have up to 40 characters; %q has %d.", k, len(k))
		}
		if len(*c.val) > 500 {
			return mu, invalidParam("metadata["+k+"]", "Metadata values can have up to 500 characters, but you passed in a value that is %d characters.", len(*c.val))
		}
		mu.set[k] = *c.val
	}
	if len(mu.set) > 50 {
		return mu, invalidParam("metadata", "You can have up to 50 metadata keys; you passed %d.", len(mu.set))
	}
	return mu, nil
}

// apply merges a metadata update into m (which may be nil) and returns it.
func (mu metadataUpdate) apply(m map[string]string) map[string]string {
	if !mu.present {
		return m
	}
	out := map[string]string{}
	if !mu.clear {
		for k, v := range m {
			out[k] = v
		}
	}
	for k, v := range mu.set {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// expandPaths returns the requested expansions as dotted paths split.
func (p *params) expandPaths() ([][]string, *apiError) {
	l, err := p.strList("expand")
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, e := range l {
		if e == "" {
			continue
		}
		parts := strings.Split(e, ".")
		if len(parts) > 4 {
			return nil, invalidParam("expand", "You cannot expand more than 4 levels of a property. Property: %s", e)
		}
		out = append(out, parts)
	}
	return out, nil
}

// rangeFilter is a created/period filter: created=123 or created[gte]=...
type rangeFilter struct {
	set                  bool
	eq, gt, gte, lt, lte *int64
}

func (p *params) rangeFilter(name string) (rangeFilter, *apiError) {
	n := p.node(name)
	var rf rangeFilter
	if n == nil {
		return rf, nil
	}
	rf.set = true
	if n.val != nil {
		v, perr := strconv.ParseInt(*n.val, 10, 64)
		if perr != nil {
			return rf, invalidParamCode("parameter_invalid_integer", name, "Invalid integer: %s", *n.val)
		}
		rf.eq = &v
	}
	for _, k := range n.order {
		c := n.kids[k]
		if c.val == nil {
			return rf, unknownParam(name + "[" + k + "]")
		}
		v, perr := strconv.ParseInt(*c.val, 10, 64)
		if perr != nil {
			return rf, invalidParamCode("parameter_invalid_integer", name+"["+k+"]", "Invalid integer: %s", *c.val)
		}
		switch k {
		case "gt":
			rf.gt = &v
		case "gte":
			rf.gte = &v
		case "lt":
			rf.lt = &v
		case "lte":
			rf.lte = &v
		default:
			return rf, unknownParam(name + "[" + k + "]")
		}
	}
	return rf, nil
}

func (rf rangeFilter) match(t int64) bool {
	if !rf.set {
		return true
	}
	if rf.eq != nil && t != *rf.eq {
		return false
	}
	if rf.gt != nil && !(t > *rf.gt) {
		return false
	}
	if rf.gte != nil && !(t >= *rf.gte) {
		return false
	}
	if rf.lt != nil && !(t < *rf.lt) {
		return false
	}
	if rf.lte != nil && !(t <= *rf.lte) {
		return false
	}
	return true
}
