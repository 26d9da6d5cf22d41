// Package redisdump copies and compares the whole data set of a test's
// redis-server.
//
// Take and Restore copy every key with DUMP and RESTORE (TTLs kept), so a
// test can build a state once and replay different histories on fresh
// servers holding exactly that state. Read takes a type-aware picture of
// every key (strings, hashes, sets, sorted sets, lists; whether a key
// expires, not how long it has left), and Diff lists what changed between two
// pictures. Values that are JSON objects (the store's records) are compared
// field by field, so a report names the record field that changed rather
// than two opaque blobs; a value rewritten with the same meaning (keys in
// another order, an omitted zero value, a hash counter written as 0 where it
// was absent) is reported as re-encoded, not as a change.
package redisdump

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Entry is one dumped key.
type Entry struct {
	Key  string
	Dump string        // DUMP's serialization
	TTL  time.Duration // 0 when the key does not expire
}

// Snapshot is every key of a data set.
type Snapshot []Entry

// keys lists every key of the current database, sorted.
func keys(ctx context.Context, rdb redis.UniversalClient) ([]string, error) {
	var out []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Take dumps every key of the database rdb talks to.
func Take(ctx context.Context, rdb redis.UniversalClient) (Snapshot, error) {
	ks, err := keys(ctx, rdb)
	if err != nil {
		return nil, err
	}
	out := make(Snapshot, 0, len(ks))
	for _, k := range ks {
		d, err := rdb.Dump(ctx, k).Result()
		if err == redis.Nil {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("DUMP %s: %w", k, err)
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("PTTL %s: %w", k, err)
		}
		if ttl < 0 {
			ttl = 0
		}
		out = append(out, Entry{Key: k, Dump: d, TTL: ttl})
	}
	return out, nil
}

// Restore writes every key of s into the database rdb talks to, replacing
// keys of the same name.
func (s Snapshot) Restore(ctx context.Context, rdb redis.UniversalClient) error {
	for _, e := range s {
		if err := rdb.RestoreReplace(ctx, e.Key, e.TTL, e.Dump).Err(); err != nil {
			return fmt.Errorf("RESTORE %s: %w", e.Key, err)
		}
	}
	return nil
}

// Value is what one key holds.
type Value struct {
	Type    string // string, hash, set, zset, list
	Expires bool
	String  string
	Hash    map[string]string
	Set     []string // sorted
	ZSet    map[string]float64
	List    []string
}

// Read takes a picture of every key.
func Read(ctx context.Context, rdb redis.UniversalClient) (map[string]Value, error) {
	ks, err := keys(ctx, rdb)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Value, len(ks))
	for _, k := range ks {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("TYPE %s: %w", k, err)
		}
		v := Value{Type: typ}
		switch typ {
		case "none":
			continue
		case "string":
			v.String, err = rdb.Get(ctx, k).Result()
		case "hash":
			v.Hash, err = rdb.HGetAll(ctx, k).Result()
		case "set":
			v.Set, err = rdb.SMembers(ctx, k).Result()
			slices.Sort(v.Set)
		case "zset":
			var zs []redis.Z
			zs, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
			v.ZSet = map[string]float64{}
			for _, z := range zs {
				v.ZSet[fmt.Sprint(z.Member)] = z.Score
			}
		case "list":
			v.List, err = rdb.LRange(ctx, k, 0, -1).Result()
		default:
			err = fmt.Errorf("unsupported type %s", typ)
		}
		if err == redis.Nil {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("PTTL %s: %w", k, err)
		}
		v.Expires = ttl > 0
		out[k] = v
	}
	return out, nil
}

// Change kinds.
const (
	Added     = "added"     // the key, field or record field appeared
	Removed   = "removed"   // it disappeared
	Changed   = "changed"   // its value changed
	Reencoded = "reencoded" // the bytes changed, the JSON meaning did not
)

// Change is one difference between two pictures: Key, the hash field or
// set/zset member (Field), and for JSON values the record field (Path,
// dotted for nested objects).
type Change struct {
	Kind          string
	Key           string
	Field         string
	Path          string
	Before, After string
}

func (c Change) String() string {
	where := c.Key
	if c.Field != "" {
		where += "[" + c.Field + "]"
	}
	if c.Path != "" {
		where += "." + c.Path
	}
	switch c.Kind {
	case Added:
		return fmt.Sprintf("%-9s %s = %s", c.Kind, where, c.After)
	case Removed:
		return fmt.Sprintf("%-9s %s (was %s)", c.Kind, where, c.Before)
	}
	return fmt.Sprintf("%-9s %s: %s -> %s", c.Kind, where, c.Before, c.After)
}

// Ignore tells Diff to leave out a difference at key/field/path (path is ""
// for a whole value).
type Ignore func(key, field, path string) bool

// Diff lists what changed from before to after, sorted by place, leaving out
// what ignore (may be nil) says to.
func Diff(before, after map[string]Value, ignore Ignore) []Change {
	if ignore == nil {
		ignore = func(string, string, string) bool { return false }
	}
	var out []Change
	add := func(c Change) {
		if !ignore(c.Key, c.Field, c.Path) {
			out = append(out, c)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(union(before, after))) {
		b, inB := before[k]
		a, inA := after[k]
		switch {
		case !inA:
			add(Change{Kind: Removed, Key: k, Before: b.summary()})
			continue
		case !inB:
			add(Change{Kind: Added, Key: k, After: a.summary()})
			continue
		case a.Type != b.Type:
			add(Change{Kind: Changed, Key: k, Before: b.summary(), After: a.summary()})
			continue
		}
		if a.Expires != b.Expires {
			add(Change{Kind: Changed, Key: k, Path: "(expires)", Before: strconv.FormatBool(b.Expires), After: strconv.FormatBool(a.Expires)})
		}
		switch a.Type {
		case "string":
			for _, c := range diffScalar(b.String, a.String) {
				c.Key = k
				add(c)
			}
		case "hash":
			for _, f := range slices.Sorted(maps.Keys(union(b.Hash, a.Hash))) {
				bv, inB := b.Hash[f]
				av, inA := a.Hash[f]
				switch {
				case !inA && isZeroText(bv):
					add(Change{Kind: Reencoded, Key: k, Field: f, Before: bv, After: "(absent)"})
				case !inB && isZeroText(av):
					add(Change{Kind: Reencoded, Key: k, Field: f, Before: "(absent)", After: av})
				case !inA:
					add(Change{Kind: Removed, Key: k, Field: f, Before: bv})
				case !inB:
					add(Change{Kind: Added, Key: k, Field: f, After: av})
				default:
					for _, c := range diffScalar(bv, av) {
						c.Key, c.Field = k, f
						add(c)
					}
				}
			}
		case "set":
			bs, as := setOf(b.Set), setOf(a.Set)
			for _, m := range slices.Sorted(maps.Keys(union(bs, as))) {
				switch {
				case !as[m]:
					add(Change{Kind: Removed, Key: k, Field: m, Before: "member"})
				case !bs[m]:
					add(Change{Kind: Added, Key: k, Field: m, After: "member"})
				}
			}
		case "zset":
			for _, m := range slices.Sorted(maps.Keys(union(b.ZSet, a.ZSet))) {
				bv, inB := b.ZSet[m]
				av, inA := a.ZSet[m]
				switch {
				case !inA:
					add(Change{Kind: Removed, Key: k, Field: m, Before: fmt.Sprint(bv)})
				case !inB:
					add(Change{Kind: Added, Key: k, Field: m, After: fmt.Sprint(av)})
				case av != bv:
					add(Change{Kind: Changed, Key: k, Field: m, Before: fmt.Sprint(bv), After: fmt.Sprint(av)})
				}
			}
		case "list":
			if !slices.Equal(a.List, b.List) {
				add(Change{Kind: Changed, Key: k, Before: strings.Join(b.List, ","), After: strings.Join(a.List, ",")})
			}
		}
	}
	return out
}

func (v Value) summary() string {
	switch v.Type {
	case "string":
		return short(v.String)
	case "hash":
		return fmt.Sprintf("hash of %d fields", len(v.Hash))
	case "set":
		return fmt.Sprintf("set of %d", len(v.Set))
	case "zset":
		return fmt.Sprintf("zset of %d", len(v.ZSet))
	case "list":
		return fmt.Sprintf("list of %d", len(v.List))
	}
	return v.Type
}

func short(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// diffScalar compares two stored values: JSON objects field by field,
// anything else as bytes.
func diffScalar(before, after string) []Change {
	if before == after {
		return nil
	}
	bo, okB := jsonObject(before)
	ao, okA := jsonObject(after)
	if !okB || !okA {
		return []Change{{Kind: Changed, Before: short(before), After: short(after)}}
	}
	bf, af := map[string]string{}, map[string]string{}
	flatten("", bo, bf)
	flatten("", ao, af)
	var out []Change
	for _, p := range slices.Sorted(maps.Keys(union(bf, af))) {
		bv, inB := bf[p]
		av, inA := af[p]
		switch {
		case !inA:
			out = append(out, Change{Kind: Removed, Path: p, Before: bv})
		case !inB:
			out = append(out, Change{Kind: Added, Path: p, After: av})
		case av != bv:
			out = append(out, Change{Kind: Changed, Path: p, Before: bv, After: av})
		}
	}
	if len(out) == 0 {
		return []Change{{Kind: Reencoded, Before: short(before), After: short(after)}}
	}
	return out
}

func jsonObject(s string) (map[string]any, bool) {
	if !strings.HasPrefix(strings.TrimSpace(s), "{") {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, false
	}
	return m, true
}

// flatten renders a JSON object as path -> canonical JSON text. Nested
// objects are walked (dotted paths); zero values (null, false, 0, "", empty
// object or array) count as absent: the store's Go encoder omits them, Lua's
// cjson writes some of them, and both read them back the same.
func flatten(prefix string, m map[string]any, out map[string]string) {
	for k, v := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(p, sub, out)
			continue
		}
		if isZero(v) {
			continue
		}
		b, _ := json.Marshal(v)
		out[p] = string(b)
	}
}

// isZeroText reports a hash field value that reads as nothing: a counter
// at 0 or an empty string is the same as no field.
func isZeroText(s string) bool { return s == "" || s == "0" }

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case json.Number:
		f, err := x.Float64()
		return err == nil && f == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func union[V any](a, b map[string]V) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func setOf(xs []string) map[string]bool {
	out := make(map[string]bool, len(xs))
	for _, x := range xs {
		out[x] = true
	}
	return out
}

// Summary counts changes per kind and per normalized place: IDs inside key
// names and hash fields are replaced by their prefix (pc_…, rd_…), so
// "changed ba:{pc_…}:rd[rd_…].why" says how many ledger records had their
// end reason changed.
func Summary(changes []Change) []string {
	n := map[string]int{}
	for _, c := range changes {
		n[c.Kind+" "+Place(c)]++
	}
	out := make([]string, 0, len(n))
	for k, v := range n {
		out = append(out, fmt.Sprintf("%5d × %s", v, k))
	}
	sort.Strings(out)
	return out
}

// Place is where a change is, with IDs normalized as in Summary:
// "ba:{pc_…}:rd[rd_…].why".
func Place(c Change) string {
	where := normalizeIDs(c.Key)
	if c.Field != "" {
		where += "[" + normalizeIDs(c.Field) + "]"
	}
	if c.Path != "" {
		where += "." + c.Path
	}
	return where
}

// normalizeIDs replaces Stripe-like and adapter IDs (prefix_ then at least 8
// letters or digits) with prefix_….
func normalizeIDs(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '_')
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		j += i
		// the prefix: letters right before '_'
		k := j
		for k > i && isLower(s[k-1]) {
			k--
		}
		end := j + 1
		for end < len(s) && isAlnum(s[end]) {
			end++
		}
		if k < j && end-(j+1) >= 8 {
			b.WriteString(s[i:j+1] + "…")
		} else {
			b.WriteString(s[i:end])
		}
		i = end
	}
	return b.String()
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
