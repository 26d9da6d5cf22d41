package redistest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestKeySlot(t *testing.T) {
	// The cluster specification's CRC16 check value ("123456789" -> 0x31C3) and its hash tag rules.
	for key, want := range map[string]int{
		"123456789":            0x31C3,
		"ba:{catalog}:codes":   KeySlot("catalog"),
		"{user1000}.following": KeySlot("user1000"),
		"foo{}{bar}":           KeySlot("foo{}{bar}"), // empty tag: the whole key
		"foo{{bar}}zap":        KeySlot("{bar"),
	} {
		if got := KeySlot(key); got != want {
			t.Errorf("KeySlot(%q) = %d, want %d", key, got, want)
		}
	}
	if KeySlot("foo{}{bar}") == KeySlot("bar") {
		t.Error("an empty hash tag must not select the next one")
	}
}

// TestClusterFailover starts a cluster, checks the topology helpers against Redis's own answers, kills the master
// of a slot and waits for its replica to take over; a killed node that restarts rejoins as a replica with its data.
func TestClusterFailover(t *testing.T) {
	c := StartCluster(t, 3, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if got := len(c.Nodes); got != 6 {
		t.Fatalf("%d nodes, want 6", got)
	}
	if got := len(c.Masters(t)); got != 3 {
		t.Fatalf("%d masters, want 3", got)
	}
	for _, n := range c.Nodes {
		if strings.HasSuffix(n.Addr, ":6379") || n.BusPort == 0 {
			t.Fatalf("node %s (bus %d)", n.Addr, n.BusPort)
		}
	}

	for _, n := range c.Nodes {
		if size, err := c.Client(n).DBSize(ctx).Result(); err != nil || size != 0 {
			t.Fatalf("node %s holds %d keys (%v), want an empty cluster", n.Addr, size, err)
		}
	}

	const key = "ba:{catalog}:codes"
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer rdb.Close()
	for _, k := range []string{key, "foo", "ba:{pc_01J}:code", "foo{}{bar}", "foo{{bar}}zap", "x{y}"} {
		slot, err := rdb.ClusterKeySlot(ctx, k).Result()
		if err != nil || int(slot) != KeySlot(k) {
			t.Fatalf("CLUSTER KEYSLOT %s = %d %v, KeySlot = %d", k, slot, err, KeySlot(k))
		}
	}
	if err := rdb.HSet(ctx, key, "A", "pc_1").Err(); err != nil {
		t.Fatal(err)
	}
	old := c.MasterOf(t, key)
	if v, err := c.Client(old).HGet(ctx, key, "A").Result(); err != nil || v != "pc_1" {
		t.Fatalf("MasterOf(%s) = %s, which does not hold it: %q %v", key, old.Addr, v, err)
	}
	replicas := c.ReplicasOf(t, old)
	if len(replicas) != 1 {
		t.Fatalf("%d replicas of %s, want 1", len(replicas), old.Addr)
	}
	c.WaitReplicated(t, old, 10*time.Second)

	killed := time.Now()
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	promoted, at := c.WaitFailover(t, old, 30*time.Second)
	t.Logf("replica %s promoted %v after the kill", promoted.Addr, at.Sub(killed).Round(time.Millisecond))
	if promoted != replicas[0] {
		t.Fatalf("promoted %s, want the replica %s", promoted.Addr, replicas[0].Addr)
	}
	c.WaitHealthy(t, 30*time.Second)
	if got := c.MasterOf(t, key); got != promoted {
		t.Fatalf("MasterOf after failover = %s, want %s", got.Addr, promoted.Addr)
	}
	if v, err := c.Client(promoted).HGet(ctx, key, "A").Result(); err != nil || v != "pc_1" {
		t.Fatalf("the promoted replica lost the replicated write: %q %v", v, err)
	}

	// The old master comes back as a replica of the new one.
	if err := old.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rs := c.ReplicasOf(t, promoted)
		if len(rs) == 1 && rs[0] == old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted %s did not become a replica of %s", old.Addr, promoted.Addr)
		}
		time.Sleep(pollInterval)
	}
	c.WaitHealthy(t, 30*time.Second)

	// A paused node is left out of the checks (a replica being down leaves the cluster ok).
	if err := old.Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.WaitHealthy(t, 30*time.Second)
	if got := c.MasterOf(t, key); got != promoted {
		t.Fatalf("MasterOf with a paused replica = %s, want %s", got.Addr, promoted.Addr)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("WaitHealthy and MasterOf took %v with a paused node: they wait on it", took)
	}
	if err := old.Resume(); err != nil {
		t.Fatal(err)
	}
}

func TestStartClusterSkipsWithoutRedisCLI(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, _, err := StartClusterMain(3, 1); err == nil || !strings.Contains(err.Error(), "redis-cli") {
		t.Fatalf("StartClusterMain without redis-cli: err = %v, want the install hint", err)
	}
}
