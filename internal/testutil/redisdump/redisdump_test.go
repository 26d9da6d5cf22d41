package redisdump

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
	"github.com/redis/go-redis/v9"
)

func client(t *testing.T) *redis.Client {
	t.Helper()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestTakeAndRestoreCopyEveryKey(t *testing.T) {
	ctx := context.Background()
	src, dst := client(t), client(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(src.Set(ctx, "s", "v", 0).Err())
	must(src.Set(ctx, "ttl", "v", time.Hour).Err())
	must(src.HSet(ctx, "h", "a", "1", "b", `{"x":1}`).Err())
	must(src.SAdd(ctx, "set", "m1", "m2").Err())
	must(src.ZAdd(ctx, "z", redis.Z{Score: 2, Member: "m"}).Err())
	must(src.RPush(ctx, "l", "1", "2").Err())
	snap, err := Take(ctx, src)
	must(err)
	must(snap.Restore(ctx, dst))
	a, err := Read(ctx, src)
	must(err)
	b, err := Read(ctx, dst)
	must(err)
	if d := Diff(a, b, nil); len(d) != 0 || len(a) != 6 || !b["ttl"].Expires || b["s"].Expires {
		t.Fatalf("copy differs: %v (%d keys)", d, len(a))
	}
}

func TestDiffNamesRecordFields(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rdb.HSet(ctx, "ba:{pc_01ABCDEFGHJK}:rd", "rd_01ABCDEFGHJK", `{"st":"ended","why":"duration_over","end":5,"flags":{}}`,
		"rd_01ZZZZZZZZZZ", `{"st":"pending","cy":0}`).Err())
	must(rdb.HSet(ctx, "ba:{pc_01ABCDEFGHJK}:code", "stock", "3").Err())
	before, err := Read(ctx, rdb)
	must(err)
	must(rdb.HSet(ctx, "ba:{pc_01ABCDEFGHJK}:rd", "rd_01ABCDEFGHJK", `{"why":"discount_deleted","st":"ended","end":4}`,
		"rd_01ZZZZZZZZZZ", `{"st":"pending"}`).Err())
	must(rdb.HSet(ctx, "ba:{pc_01ABCDEFGHJK}:code", "uses", "0").Err())
	after, err := Read(ctx, rdb)
	must(err)
	var got []string
	for _, c := range Diff(before, after, nil) {
		got = append(got, c.Kind+" "+Place(c)+" "+c.Before+" "+c.After)
	}
	want := []string{
		"reencoded ba:{pc_…}:code[uses] (absent) 0",
		"changed ba:{pc_…}:rd[rd_…].end 5 4",
		`changed ba:{pc_…}:rd[rd_…].why "duration_over" "discount_deleted"`,
		`reencoded ba:{pc_…}:rd[rd_…] {"st":"pending","cy":0} {"st":"pending"}`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("diff\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	ignored := Diff(before, after, func(key, field, path string) bool { return path == "why" })
	if len(ignored) != 3 {
		t.Fatalf("ignore left %v", ignored)
	}
}
