package promo

import (
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// The IDs are real ULIDs: the library the service uses for its own IDs
// parses them back to the same time and bytes, so both kinds sort together.
func TestRedemptionIDForIsAULID(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 30, 45, 123e6, time.UTC)
	id := RedemptionIDFor("di_1Pabc", at)
	if id != RedemptionIDFor("di_1Pabc", at) || id == RedemptionIDFor("di_1Pabd", at) {
		t.Fatal("want deterministic and distinct IDs")
	}
	u, err := ulid.ParseStrict(strings.TrimPrefix(id, "rd_"))
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	if !ulid.Time(u.Time()).Equal(at) {
		t.Fatalf("time %v, want %v", ulid.Time(u.Time()), at)
	}
	if u.String() != strings.TrimPrefix(id, "rd_") {
		t.Fatalf("round trip %s != %s", u, id)
	}
	earlier := RedemptionIDFor("di_zzz", at.Add(-time.Millisecond))
	later := "rd_" + ulid.MustNew(ulid.Timestamp(at.Add(time.Millisecond)), ulid.DefaultEntropy()).String()
	if !(earlier < id && id < later) {
		t.Fatalf("IDs do not sort by time: %s %s %s", earlier, id, later)
	}
}
