package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
)

// -cluster: the stack's Redis is a real Redis Cluster (3 masters, 1 replica
// each, from internal/testutil/redistest: AOF fsynced on every write, as the
// tests run it) and the service gets REDIS_ADDRS. During each scenario's
// measured run a MONITOR connection to every master counts the commands the
// clients send (not the ones Lua scripts run) by slot of their first key:
// the share of round trips per master and per slot. Keys and memory per
// master are read at the end. MONITOR costs the masters CPU, so the req/s of
// a -cluster run are not comparable with a single-node run; no baselines run.

// startClusterRedis starts the cluster and returns its masters' clients.
func startClusterRedis(ctx context.Context) (*redistest.Cluster, func(), []*redis.Client, error) {
	c, stop, err := redistest.StartClusterMain(3, 1)
	if err != nil {
		return nil, nil, nil, err
	}
	var masters []*redis.Client
	for _, addr := range c.Addrs() {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		info, err := rdb.Info(ctx, "replication").Result()
		if err != nil {
			rdb.Close()
			stop()
			return nil, nil, nil, err
		}
		if strings.Contains(info, "role:master") {
			masters = append(masters, rdb)
		} else {
			rdb.Close()
		}
	}
	return c, stop, masters, nil
}

// monitor counts the client commands every master receives.
type monitor struct {
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
	byNode  map[string]int64
	bySlot  map[int]int64
	sample  map[int]string
	noKey   int64
	started bool
}

func startMonitor(masters []*redis.Client) (*monitor, error) {
	m := &monitor{byNode: map[string]int64{}, bySlot: map[int]int64{}, sample: map[int]string{}}
	for _, rdb := range masters {
		addr := rdb.Options().Addr
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			m.stop()
			return nil, err
		}
		if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
			conn.Close()
			m.stop()
			return nil, err
		}
		r := bufio.NewReaderSize(conn, 1<<20)
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			conn.Close()
			m.stop()
			return nil, fmt.Errorf("MONITOR on %s: %q %v", addr, line, err)
		}
		m.conns = append(m.conns, conn)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				m.count(addr, line)
			}
		}()
	}
	return m, nil
}

// count reads one MONITOR line: `1700000000.123456 [0 127.0.0.1:5555] "CMD" "arg"...`;
// `[0 lua]` lines are commands run by scripts, not round trips.
func (m *monitor) count(node, line string) {
	open := strings.IndexByte(line, '[')
	end := strings.IndexByte(line, ']')
	if open < 0 || end < open || strings.HasSuffix(line[open:end], " lua") {
		return
	}
	args := quotedArgs(line[end+1:])
	if len(args) == 0 {
		return
	}
	key := firstKey(args)
	m.mu.Lock()
	defer m.mu.Unlock()
	if key == "" {
		m.noKey++
		return
	}
	slot := redistest.KeySlot(key)
	m.byNode[node]++
	m.bySlot[slot]++
	if _, ok := m.sample[slot]; !ok {
		m.sample[slot] = key
	}
}

// firstKey is the command's first key ("" for commands without one).
func firstKey(args []string) string {
	switch strings.ToUpper(args[0]) {
	case "EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO":
		if len(args) > 3 && args[2] != "0" {
			return args[3]
		}
		return ""
	case "PING", "INFO", "CLUSTER", "WAIT", "MULTI", "EXEC", "DISCARD", "READONLY", "READWRITE", "CLIENT", "HELLO",
		"SCRIPT", "COMMAND", "DBSIZE", "SELECT", "AUTH", "MONITOR", "FLUSHALL", "MEMORY", "SCAN":
		return ""
	}
	if len(args) > 1 {
		return args[1]
	}
	return ""
}

// quotedArgs splits MONITOR's `"a" "b\"c"` into its arguments.
func quotedArgs(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '"' {
			continue
		}
		var b strings.Builder
		for i++; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		out = append(out, b.String())
	}
	return out
}

func (m *monitor) stop() {
	for _, c := range m.conns {
		c.Close()
	}
	m.wg.Wait()
}

// ClusterShares is how a scenario's (or the whole run's) Redis round trips
// spread over the cluster.
type ClusterShares struct {
	RoundTrips int64       `json:"round_trips"` // client commands with a key
	NoKey      int64       `json:"commands_without_key"`
	Masters    []NodeShare `json:"masters"`
	TopSlots   []SlotShare `json:"top_slots"`
	MaxSlot    float64     `json:"max_slot_share"`
	MaxMaster  float64     `json:"max_master_share"`
	// KeysMemory: keys and used_memory per master at the end of the run
	// (the whole run's shares only).
	KeysMemory []NodeShare `json:"keys_and_memory,omitempty"`

	slots       map[int]int64
	samples     map[int]string
	nodes       map[string]int64
	masterOrder []string
}

// NodeShare is one master's share.
type NodeShare struct {
	Addr       string  `json:"addr"`
	RoundTrips float64 `json:"round_trips_share"`
	Keys       int64   `json:"keys,omitempty"`
	KeysShare  float64 `json:"keys_share,omitempty"`
	Memory     int64   `json:"used_memory,omitempty"`
	MemShare   float64 `json:"memory_share,omitempty"`
}

// SlotShare is one slot's share of the round trips, with a key seen there.
type SlotShare struct {
	Slot  int     `json:"slot"`
	Share float64 `json:"share"`
	Key   string  `json:"key"`
}

func (m *monitor) shares(masters []*redis.Client) *ClusterShares {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := &ClusterShares{slots: map[int]int64{}, samples: map[int]string{}, nodes: map[string]int64{}, NoKey: m.noKey}
	for s, n := range m.bySlot {
		cs.slots[s] = n
		cs.samples[s] = m.sample[s]
		cs.RoundTrips += n
	}
	for a, n := range m.byNode {
		cs.nodes[a] = n
	}
	for _, rdb := range masters {
		cs.masterOrder = append(cs.masterOrder, rdb.Options().Addr)
	}
	cs.finish()
	return cs
}

// add sums another scenario's counts into cs (the whole mix).
func (cs *ClusterShares) add(o *ClusterShares) {
	if cs.slots == nil {
		cs.slots, cs.samples, cs.nodes = map[int]int64{}, map[int]string{}, map[string]int64{}
	}
	cs.masterOrder = o.masterOrder
	cs.RoundTrips += o.RoundTrips
	cs.NoKey += o.NoKey
	for s, n := range o.slots {
		cs.slots[s] += n
		if _, ok := cs.samples[s]; !ok {
			cs.samples[s] = o.samples[s]
		}
	}
	for a, n := range o.nodes {
		cs.nodes[a] += n
	}
	cs.finish()
}

func (cs *ClusterShares) finish() {
	cs.Masters, cs.TopSlots, cs.MaxSlot, cs.MaxMaster = nil, nil, 0, 0
	if cs.RoundTrips == 0 {
		return
	}
	total := float64(cs.RoundTrips)
	for _, a := range cs.masterOrder {
		share := float64(cs.nodes[a]) / total
		cs.Masters = append(cs.Masters, NodeShare{Addr: a, RoundTrips: share})
		cs.MaxMaster = max(cs.MaxMaster, share)
	}
	for s, n := range cs.slots {
		cs.TopSlots = append(cs.TopSlots, SlotShare{Slot: s, Share: float64(n) / total, Key: cs.samples[s]})
	}
	sort.Slice(cs.TopSlots, func(i, j int) bool {
		if cs.TopSlots[i].Share != cs.TopSlots[j].Share {
			return cs.TopSlots[i].Share > cs.TopSlots[j].Share
		}
		return cs.TopSlots[i].Slot < cs.TopSlots[j].Slot
	})
	if len(cs.TopSlots) > 0 {
		cs.MaxSlot = cs.TopSlots[0].Share
	}
	if len(cs.TopSlots) > 8 {
		cs.TopSlots = cs.TopSlots[:8]
	}
}

// keysAndMemory reads DBSIZE and used_memory of every master.
func keysAndMemory(ctx context.Context, masters []*redis.Client) ([]NodeShare, error) {
	var out []NodeShare
	var keys, mem int64
	for _, rdb := range masters {
		n, err := rdb.DBSize(ctx).Result()
		if err != nil {
			return nil, err
		}
		info, err := rdb.Info(ctx, "memory").Result()
		if err != nil {
			return nil, err
		}
		var used int64
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				used, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		out = append(out, NodeShare{Addr: rdb.Options().Addr, Keys: n, Memory: used})
		keys += n
		mem += used
	}
	for i := range out {
		if keys > 0 {
			out[i].KeysShare = float64(out[i].Keys) / float64(keys)
		}
		if mem > 0 {
			out[i].MemShare = float64(out[i].Memory) / float64(mem)
		}
	}
	return out, nil
}
