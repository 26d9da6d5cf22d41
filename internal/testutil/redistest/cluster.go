package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis Cluster
//
// StartCluster (or StartClusterMain in TestMain) runs a real Redis Cluster on loopback: masters*(1+replicas)
// redis-server processes in cluster mode, each in its own temporary directory with its own nodes.conf, on free ports
// (never 6379) with an explicit cluster bus port, joined by `redis-cli --cluster create`:
//
//	c := redistest.StartCluster(t, 3, 1) // 3 masters, 1 replica each
//	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
//	old := c.MasterOf(t, "ba:{catalog}:codes")
//	_ = old.Kill()                                     // SIGKILL, as a crash
//	promoted, at := c.WaitFailover(t, old, 20*time.Second)
//
// Every node keeps an append-only file fsynced on every write (as StartDurable), so a killed node that is Restarted
// rejoins with its data, and as a replica of the node that replaced it. The node timeout is short (ClusterNodeTimeout),
// so a replica replaces a killed master within a few seconds. Replication is asynchronous, as in production: a write
// acknowledged by a master may be lost when the master dies before its replica received it (see WaitReplicated).
//
// Nodes are Servers: Kill, Restart, Pause (SIGSTOP: a hung node) and Resume work on them, and the helpers below leave
// out the nodes that are killed or paused.
//
// The returned Cluster is ready and empty: every node reports cluster_state:ok, knows every other node, agrees on the
// slot map, and every replica has finished its initial sync and receives its master's writes as they come. Topology
// questions (MasterOf, ReplicasOf, Masters) are answered from each live node's view of itself (CLUSTER NODES,
// "myself"), so they are right during and after a failover. For the service's own client use
// redisstore.Connect("", c.Addrs(), "") and redisstore.New, or REDIS_ADDRS=strings.Join(c.Addrs(), ",") for run().
//
// StartCluster skips the test (with the reason) when redis-server or redis-cli is not installed; run `make deps`.

// ClusterNodeTimeout is the cluster-node-timeout of the nodes StartCluster starts: a master that stops answering
// for that long is flagged as failing and, once a majority of masters agree, replaced by its replica (in about two to
// four times this in total).
const ClusterNodeTimeout = 1500 * time.Millisecond

const (
	// clusterReadyTimeout bounds how long a start waits for the cluster to be formed and in sync.
	clusterReadyTimeout = 60 * time.Second
	// pollInterval is how often the cluster helpers poll the nodes.
	pollInterval = 20 * time.Millisecond
	// clusterSlots is the number of hash slots of Redis Cluster.
	clusterSlots = 16384
)

// notFoundClusterMsg is the skip reason when redis-server or redis-cli is missing.
const notFoundClusterMsg = "redis-server and redis-cli are needed for a Redis Cluster test: run `make deps` " +
	"(apt-get install redis-server redis-tools)"

// clusterNodeConfig is the cluster part of one node's command line.
type clusterNodeConfig struct {
	nodeTimeout time.Duration
}

func (c *clusterNodeConfig) args(busPort int) []string {
	return []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-port", strconv.Itoa(busPort),
		"--cluster-node-timeout", strconv.FormatInt(c.nodeTimeout.Milliseconds(), 10),
		// A replica may take over however long it lost its master for: tests on a loaded machine must not end up
		// with a slot nobody serves.
		"--cluster-replica-validity-factor", "0",
		// Start the initial full sync at once instead of waiting 5 s for more replicas.
		"--repl-diskless-sync-delay", "0",
	}
}

// Cluster is a Redis Cluster of redis-server child processes on 127.0.0.1.
type Cluster struct {
	// Nodes are all the nodes, in start order. Which of them are masters changes with failovers: ask MasterOf,
	// Masters or ReplicasOf.
	Nodes []*Server

	cli     string
	clients map[*Server]*redis.Client // one plain client per node, for the helpers
}

// StartCluster starts a Redis Cluster of masters masters (at least 3, as Redis requires) with replicasPerMaster
// replicas each, and kills every node (SIGKILL) when the test and its subtests finish. It skips the test when
// redis-server or redis-cli is missing and fails it when the cluster is not ready within 60 seconds.
func StartCluster(t testing.TB, masters, replicasPerMaster int) *Cluster {
	t.Helper()
	bins, err := clusterBinaries()
	if err != nil {
		t.Skip(err.Error())
	}
	c, err := startCluster(bins, t.TempDir(), masters, replicasPerMaster)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				if tail := n.logTail(); tail != "" {
					t.Logf("redistest: cluster node %s output:\n%s", n.Addr, lastLines(tail, 40))
				}
			}
		}
		if err := c.close(); err != nil {
			t.Errorf("redistest: %v", err)
		}
	})
	return c
}

// StartClusterMain is StartCluster for TestMain: it returns a stop func (kill every node, remove the directories)
// instead of registering a cleanup, and an error instead of skipping when redis-server or redis-cli is missing.
// Call stop before os.Exit; it is safe to call more than once.
func StartClusterMain(masters, replicasPerMaster int) (*Cluster, func(), error) {
	bins, err := clusterBinaries()
	if err != nil {
		return nil, nil, err
	}
	return startInDir("redistest-cluster-", func(dir string) (*Cluster, error) {
		return startCluster(bins, dir, masters, replicasPerMaster)
	}, (*Cluster).close)
}

type binaries struct{ server, cli string }

func clusterBinaries() (binaries, error) {
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		return binaries{}, errors.New(notFoundClusterMsg)
	}
	return binaries{server: server, cli: cli}, nil
}

func startCluster(bins binaries, dir string, masters, replicasPerMaster int) (c *Cluster, err error) {
	if masters < 3 {
		return nil, fmt.Errorf("a Redis Cluster needs at least 3 masters, not %d", masters)
	}
	if replicasPerMaster < 0 {
		return nil, fmt.Errorf("replicasPerMaster = %d", replicasPerMaster)
	}
	c = &Cluster{cli: bins.cli, clients: map[*Server]*redis.Client{}}
	defer func() {
		if err != nil {
			_ = c.close()
		}
	}()
	conf := &clusterNodeConfig{nodeTimeout: ClusterNodeTimeout}
	n := masters * (1 + replicasPerMaster)
	for i := 0; i < n; i++ {
		nodeDir := filepath.Join(dir, fmt.Sprintf("node%d", i))
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			return c, err
		}
		s, err := startNode(bins.server, nodeDir, true, conf)
		if err != nil {
			return c, fmt.Errorf("cluster node %d: %w", i, err)
		}
		c.Nodes = append(c.Nodes, s)
		c.clients[s] = redis.NewClient(&redis.Options{
			Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
			PoolSize: 2, DisableIdentity: true,
		})
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPerMaster), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.cli, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "[OK] All 16384 slots covered") {
		return c, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitReady(ctx, masters, replicasPerMaster); err != nil {
		return c, err
	}
	if err := c.waitStreaming(ctx); err != nil {
		return c, err
	}
	return c, nil
}

// waitStreaming makes sure that every master streams its writes to its replicas. A replica that has just loaded
// its initial copy reports its link up at once, but a master that sent that copy over a socket (diskless, the
// default) starts forwarding writes only when the replica next acknowledges (up to a second later); a master that
// died before that would take every write since the copy with it. So each master writes and deletes a probe key
// (leaving no key behind), and every replica must then reach the master's offset.
func (c *Cluster) waitStreaming(ctx context.Context) error {
	views := c.views(ctx)
	for _, m := range views {
		if !m.Master || len(m.Slots) == 0 {
			continue
		}
		key := keyInSlot("redistest:probe:", m.Slots[0][0])
		cl := c.clients[m.Server]
		if err := cl.Set(ctx, key, "1", 0).Err(); err != nil {
			return fmt.Errorf("probe write on %s: %w", m.Server.Addr, err)
		}
		if err := cl.Del(ctx, key).Err(); err != nil {
			return fmt.Errorf("probe delete on %s: %w", m.Server.Addr, err)
		}
		if err := c.waitReplicated(ctx, m.Server); err != nil {
			return err
		}
	}
	return nil
}

// keyInSlot returns prefix followed by a hash tag that puts the key in slot.
func keyInSlot(prefix string, slot int) string {
	for i := 0; ; i++ {
		tag := strconv.Itoa(i)
		if KeySlot(tag) == slot {
			return prefix + "{" + tag + "}"
		}
	}
}

// close kills every node and closes the helper clients.
func (c *Cluster) close() error {
	var errs []error
	for _, cl := range c.clients {
		_ = cl.Close()
	}
	for _, n := range c.Nodes {
		if err := n.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Addrs are the "127.0.0.1:PORT" addresses of every node: seeds for redis.ClusterOptions.Addrs or REDIS_ADDRS.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// Client is a plain (non-cluster) client of one node, for looking at it directly (INFO, CLUSTER ..., or reading a
// replica's copy after READONLY). It belongs to the Cluster: do not close it. It reconnects across Kill and Restart.
func (c *Cluster) Client(n *Server) *redis.Client { return c.clients[n] }

// NodeInfo is one node's view of itself (the "myself" line of its CLUSTER NODES).
type NodeInfo struct {
	Server   *Server
	ID       string
	Master   bool
	MasterID string   // for a replica: the ID of its master
	Epoch    int64    // config epoch
	Slots    [][2]int // slot ranges it serves (masters), inclusive
}

// Self asks a node about itself. It fails when the node does not answer (for instance when it was killed).
func (c *Cluster) Self(ctx context.Context, n *Server) (NodeInfo, error) {
	out, err := c.clients[n].ClusterNodes(ctx).Result()
	if err != nil {
		return NodeInfo{}, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !hasFlag(f[2], "myself") {
			continue
		}
		info := NodeInfo{Server: n, ID: f[0], Master: hasFlag(f[2], "master")}
		if f[3] != "-" {
			info.MasterID = f[3]
		}
		info.Epoch, _ = strconv.ParseInt(f[6], 10, 64)
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") { // a slot being migrated or imported
				continue
			}
			lo, hi, found := strings.Cut(r, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				continue
			}
			b := a
			if found {
				if b, err = strconv.Atoi(hi); err != nil {
					continue
				}
			}
			info.Slots = append(info.Slots, [2]int{a, b})
		}
		return info, nil
	}
	return NodeInfo{}, fmt.Errorf("CLUSTER NODES of %s has no myself line:\n%s", n.Addr, out)
}

func hasFlag(flags, flag string) bool {
	for _, f := range strings.Split(flags, ",") {
		if f == flag {
			return true
		}
	}
	return false
}

// views returns the self view of every running node that answers.
func (c *Cluster) views(ctx context.Context) []NodeInfo {
	var out []NodeInfo
	for _, n := range c.Nodes {
		if !n.running() {
			continue
		}
		if info, err := c.Self(ctx, n); err == nil {
			out = append(out, info)
		}
	}
	return out
}

// masterOfSlot is the live node that serves slot as a master (the highest config epoch wins if two claim it).
func (c *Cluster) masterOfSlot(ctx context.Context, slot int) (*Server, error) {
	var best *NodeInfo
	views := c.views(ctx)
	for i := range views {
		v := &views[i]
		if !v.Master || !v.serves(slot) {
			continue
		}
		if best == nil || v.Epoch > best.Epoch {
			best = v
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no live master serves slot %d", slot)
	}
	return best.Server, nil
}

func (v NodeInfo) serves(slot int) bool {
	for _, r := range v.Slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// MasterOf returns the live master serving key's hash slot (hash tags count: "ba:{catalog}:x" and "{catalog}" share
// one). It fails the test when no live node serves it.
func (c *Cluster) MasterOf(t testing.TB, key string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.masterOfSlot(ctx, KeySlot(key))
	if err != nil {
		t.Fatalf("redistest: master of %q: %v", key, err)
	}
	return s
}

// Masters returns the live nodes that are masters serving at least one slot.
func (c *Cluster) Masters(t testing.TB) []*Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*Server
	for _, v := range c.views(ctx) {
		if v.Master && len(v.Slots) > 0 {
			out = append(out, v.Server)
		}
	}
	return out
}

// ReplicasOf returns the live nodes that replicate master.
func (c *Cluster) ReplicasOf(t testing.TB, master *Server) []*Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.Self(ctx, master)
	if err != nil {
		t.Fatalf("redistest: %s: %v", master.Addr, err)
	}
	var out []*Server
	for _, v := range c.views(ctx) {
		if !v.Master && v.MasterID == m.ID {
			out = append(out, v.Server)
		}
	}
	return out
}

// WaitReplicated waits until every replica of master has acknowledged everything master had received when
// WaitReplicated was called (its replication offset at that moment), so that a write acknowledged before the call
// survives the master's death. It fails the test after timeout.
func (c *Cluster) WaitReplicated(t testing.TB, master *Server, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.waitReplicated(ctx, master); err != nil {
		t.Fatalf("redistest: within %v: %v", timeout, err)
	}
}

func (c *Cluster) waitReplicated(ctx context.Context, master *Server) error {
	target, err := replOffset(ctx, c.clients[master], "master_repl_offset")
	if err != nil {
		return fmt.Errorf("INFO replication of %s: %w", master.Addr, err)
	}
	m, err := c.Self(ctx, master)
	if err != nil {
		return fmt.Errorf("%s: %w", master.Addr, err)
	}
	for _, v := range c.views(ctx) {
		if v.Master || v.MasterID != m.ID {
			continue
		}
		for {
			got, err := replOffset(ctx, c.clients[v.Server], "slave_repl_offset")
			if err == nil && got >= target {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("replica %s of %s did not reach offset %d (at %d, %v)", v.Server.Addr, master.Addr,
					target, got, err)
			}
			time.Sleep(pollInterval)
		}
	}
	return nil
}

func replOffset(ctx context.Context, cl *redis.Client, field string) (int64, error) {
	info, err := cl.Info(ctx, "replication").Result()
	if err != nil {
		return 0, err
	}
	v, ok := infoField(info, field)
	if !ok {
		return 0, fmt.Errorf("INFO replication has no %s", field)
	}
	return strconv.ParseInt(v, 10, 64)
}

func infoField(info, field string) (string, bool) {
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return v, true
		}
	}
	return "", false
}

// WaitFailover waits until a replica of dead (a master the test killed or paused) has taken over all of dead's slots
// and returns it with the time the promotion was first seen (polling every 20 ms, so at most that late). It does not
// wait for the rest of the cluster to learn of the promotion; use WaitHealthy for that. It fails the test after
// timeout. dead's slots are those it served when WaitFailover was called, as seen by any live node.
func (c *Cluster) WaitFailover(t testing.TB, dead *Server, timeout time.Duration) (*Server, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	slots, err := c.slotsOf(ctx, dead)
	if err != nil {
		t.Fatalf("redistest: slots of %s: %v", dead.Addr, err)
	}
	for {
		for _, n := range c.Nodes {
			if n == dead || !n.running() {
				continue
			}
			v, err := c.Self(ctx, n)
			if err != nil || !v.Master || v.MasterID != "" {
				continue
			}
			if coversAll(v, slots) {
				return n, time.Now()
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("redistest: no replica of %s took over its slots within %v", dead.Addr, timeout)
		}
		time.Sleep(pollInterval)
	}
}

// slotsOf asks the live nodes (other than n) which slots n serves, as they see it.
func (c *Cluster) slotsOf(ctx context.Context, n *Server) ([][2]int, error) {
	for _, o := range c.Nodes {
		if o == n || !o.running() {
			continue
		}
		out, err := c.clients[o].ClusterNodes(ctx).Result()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 8 || !strings.HasPrefix(f[1], n.Addr+"@") {
				continue
			}
			var slots [][2]int
			for _, r := range f[8:] {
				lo, hi, found := strings.Cut(r, "-")
				a, err1 := strconv.Atoi(lo)
				b := a
				var err2 error
				if found {
					b, err2 = strconv.Atoi(hi)
				}
				if err1 == nil && err2 == nil {
					slots = append(slots, [2]int{a, b})
				}
			}
			if len(slots) == 0 {
				return nil, fmt.Errorf("%s serves no slot (is it a master?)", n.Addr)
			}
			return slots, nil
		}
	}
	return nil, errors.New("no live node knows it")
}

func coversAll(v NodeInfo, slots [][2]int) bool {
	for _, r := range slots {
		for s := r[0]; s <= r[1]; s++ {
			if !v.serves(s) {
				return false
			}
		}
	}
	return true
}

// WaitHealthy waits until every live node (running, not paused) reports cluster_state:ok and all of them agree on
// which node serves each slot. It fails the test after timeout.
func (c *Cluster) WaitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.waitHealthy(ctx); err != nil {
		t.Fatalf("redistest: cluster not healthy within %v: %v", timeout, err)
	}
}

func (c *Cluster) waitHealthy(ctx context.Context) error {
	for {
		err := c.healthy(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		time.Sleep(pollInterval)
	}
}

// healthy checks that every live node is in state ok and that every node maps each slot to the same address.
func (c *Cluster) healthy(ctx context.Context) error {
	var ref string
	live := 0
	for _, n := range c.Nodes {
		if !n.running() {
			continue
		}
		live++
		info, err := c.clients[n].ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr, err)
		}
		if v, _ := infoField(info, "cluster_state"); v != "ok" {
			return fmt.Errorf("%s: cluster_state:%s", n.Addr, v)
		}
		m, err := slotMap(ctx, c.clients[n])
		if err != nil {
			return fmt.Errorf("%s: CLUSTER SLOTS: %w", n.Addr, err)
		}
		if ref == "" {
			ref = m
		} else if m != ref {
			return fmt.Errorf("nodes disagree on the slot map:\n%s\n%s", ref, m)
		}
	}
	if live == 0 {
		return errors.New("no node is running")
	}
	return nil
}

// slotMap renders a node's CLUSTER SLOTS as "start-end master" lines, sorted.
func slotMap(ctx context.Context, cl *redis.Client) (string, error) {
	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	lines := make([]string, 0, len(slots))
	covered := 0
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			continue
		}
		covered += s.End - s.Start + 1
		lines = append(lines, fmt.Sprintf("%05d-%05d %s", s.Start, s.End, s.Nodes[0].Addr))
	}
	if covered != clusterSlots {
		return "", fmt.Errorf("%d of %d slots covered", covered, clusterSlots)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

// waitReady waits for a new cluster: healthy, every node known to every node, the expected number of masters, and
// every replica's initial sync finished.
func (c *Cluster) waitReady(ctx context.Context, masters, replicasPerMaster int) error {
	for {
		err := c.ready(ctx, masters, replicasPerMaster)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cluster not ready within %v: %w", clusterReadyTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

func (c *Cluster) ready(ctx context.Context, masters, replicasPerMaster int) error {
	if err := c.healthy(ctx); err != nil {
		return err
	}
	gotMasters := 0
	for _, n := range c.Nodes {
		info, err := c.clients[n].ClusterInfo(ctx).Result()
		if err != nil {
			return err
		}
		if v, _ := infoField(info, "cluster_known_nodes"); v != strconv.Itoa(len(c.Nodes)) {
			return fmt.Errorf("%s knows %s of %d nodes", n.Addr, v, len(c.Nodes))
		}
		repl, err := c.clients[n].Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		role, _ := infoField(repl, "role")
		switch role {
		case "master":
			gotMasters++
			if v, _ := infoField(repl, "connected_slaves"); v != strconv.Itoa(replicasPerMaster) {
				return fmt.Errorf("master %s has %s of %d replicas connected", n.Addr, v, replicasPerMaster)
			}
		case "slave":
			if v, _ := infoField(repl, "master_link_status"); v != "up" {
				return fmt.Errorf("replica %s: master_link_status:%s", n.Addr, v)
			}
			if v, _ := infoField(repl, "master_sync_in_progress"); v != "0" {
				return fmt.Errorf("replica %s is still syncing", n.Addr)
			}
		}
	}
	if gotMasters != masters {
		return fmt.Errorf("%d masters, want %d", gotMasters, masters)
	}
	return nil
}

// running reports whether the server process is up and answering: not killed, stopped or paused by the test.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.paused
}

// KeySlot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of the key, or of its hash tag (the part between
// the first "{" and the next "}", when not empty), modulo 16384.
func KeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) % clusterSlots
}

func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
