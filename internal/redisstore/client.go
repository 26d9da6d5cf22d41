package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

// Connect opens a client: Redis Cluster when addrs is non-empty (through
// NewClusterClient even for one seed address), else the server in url.
// password, when set, overrides the URL's password.
//
// A cluster client gives up on an unreachable node quickly and refreshes its
// slot map every 2 s; New adds the rest of what makes the store follow a
// failover within seconds (see "Redis Cluster: following a failover").
func Connect(url string, addrs []string, password string) (redis.UniversalClient, error) {
	if len(addrs) > 0 {
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                      addrs,
			Password:                   password,
			DisableIdentity:            true,
			ClusterStateReloadInterval: clusterStateRefresh,
			DialTimeout:                clusterDialTimeout,
			DialerRetries:              clusterDialAttempts,
			ReadTimeout:                clusterIOTimeout,
			WriteTimeout:               clusterIOTimeout,
		}), nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	opt.DisableIdentity = true // no CLIENT SETINFO on connect: Redis < 7.2 refuses it
	if password != "" {
		opt.Password = password
	}
	return redis.NewClient(opt), nil
}

// SetLogger sends go-redis's own log lines (failed dials, pool warnings:
// "redis: connection pool: failed to dial after 5 attempts: ...") to log as
// warnings with component=redis and the text in detail, instead of
// go-redis's plain lines on stderr. go-redis has one logger per process:
// the last call wins. nil restores go-redis's default.
func SetLogger(log *slog.Logger) {
	if log == nil {
		logging.Enable()
		return
	}
	redis.SetLogger(goRedisLogger{log.With("component", "redis")})
}

// goRedisLogger adapts a *slog.Logger to go-redis's logging interface.
type goRedisLogger struct{ log *slog.Logger }

func (l goRedisLogger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	l.log.WarnContext(ctx, "redis client", "detail", strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
}

// Redis Cluster: following a failover.
//
// go-redis reloads a cluster client's slot map only on a MOVED or READONLY
// answer and otherwise every 60 s (ClusterStateReloadInterval). When a master
// dies nothing answers MOVED: its slots' commands keep going to the dead
// address, failing, until the next periodic reload, up to a minute after a
// replica took over. Connect and New close that gap:
//
//   - every node of the client reloads the slot map (CLUSTER SLOTS from any
//     reachable node; go-redis runs at most one reload per 200 ms) when a
//     command or pipeline on it fails with no answer (refused, reset, EOF,
//     timeout) or with CLUSTERDOWN, MASTERDOWN, LOADING or READONLY; it sees
//     each attempt, so go-redis's own retries of the command (up to 3) may
//     already reach the promoted replica;
//   - the slot map is refreshed every 2 s anyway while commands flow;
//   - an unreachable node is given up quickly: 1 s per dial, 2 dial
//     attempts, 1 s per read or write (the store's commands take
//     milliseconds). go-redis tries a command twice on its node before it
//     looks the slot up again, so a command caught by a hung master fails
//     or moves on within about 2 s plus the reload.
//
// TestClusterFailoverWindow measures it on a real cluster with the catalog's
// master SIGKILLed (well under a second after the promotion) or frozen with
// SIGSTOP (up to about 3 s); 5 s is the promise. README.md, Operations,
// "failover window", says what a failover can lose.
const (
	clusterStateRefresh = 2 * time.Second
	clusterDialTimeout  = time.Second
	clusterDialAttempts = 2
	clusterIOTimeout    = time.Second
)

// Redis Cluster: acknowledging a write once a replica has it.
//
// Redis replicates asynchronously: a master answers a write before its
// replicas have it, and a replica promoted after the master died lacks what
// had not reached it yet. That window is short on a healthy link (well
// under a millisecond), but a replica that has just loaded its copy from the
// master receives nothing until it next reports back (up to a second). So in
// a cluster every command that may write (everything but a list of read-only
// commands: scripts, HSET, SET, ZADD, ...) is sent with WAIT 1 250 on the
// same connection, and the store reports success once one replica has
// confirmed it. A write no replica confirms within 250 ms (the master has no
// replica, or it lags) still succeeds, as Redis applied it, and for the next
// 2 s that master's writes do not wait (so a master without a replica costs
// one 250 ms wait per 2 s, not one per write). Every write acknowledged
// without a replica's confirmation is counted in
// billing_redis_errors_total{command="wait"}. Pipelines (lists, and the MULTI
// of reconcile -fix's rebuild, which can be run again) are not waited for.
var (
	replicaAckTimeout = 250 * time.Millisecond
	replicaAckPause   = 2 * time.Second
)

// readOnlyCommands never write, so they need no replica acknowledgement.
var readOnlyCommands = map[string]bool{}

func init() {
	for _, name := range strings.Fields(`get mget strlen getrange exists type ttl pttl expiretime pexpiretime
		hget hgetall hmget hlen hexists hkeys hvals hstrlen hrandfield hscan
		smembers sismember smismember scard srandmember sscan
		zrange zrangebyscore zrangebylex zrevrange zrevrangebyscore zrevrangebylex zscore zmscore zcard zcount
		zlexcount zrank zrevrank zrandmember zscan
		lrange llen lindex scan keys dbsize randomkey
		evalsha_ro eval_ro fcall_ro
		ping echo info cluster command client hello auth select readonly readwrite wait waitaof script time
		memory object debug config slowlog latency role lastsave`) {
		readOnlyCommands[name] = true
	}
}

// followCluster adds clusterNodeHook to every node c connects to.
func followCluster(c *redis.ClusterClient, m *telemetry.Metrics) {
	c.OnNewNode(func(node *redis.Client) {
		node.AddHook(&clusterNodeHook{
			node:   node,
			reload: func() { c.ReloadState(context.Background()) },
			m:      m,
		})
	})
}

// clusterNodeHook sits on one node client of a cluster client: it reloads
// the slot map when the node seems gone and waits for a replica to confirm
// each write.
type clusterNodeHook struct {
	node   *redis.Client
	reload func() // asks the cluster client for a slot map reload
	m      *telemetry.Metrics
	// noWaitUntil (Unix ns): a write that no replica confirmed in time
	// stops the waiting on this node until then.
	noWaitUntil atomic.Int64
}

// processReplicated sends cmd and WAIT 1 on one connection (a pipeline of
// the node, whose hook reloads the slot map on failures) and returns cmd's
// result.
func (h *clusterNodeHook) processReplicated(ctx context.Context, cmd redis.Cmder) error {
	wait := redis.NewIntCmd(ctx, "wait", 1, replicaAckTimeout.Milliseconds())
	pipe := h.node.Pipeline()
	_ = pipe.Process(ctx, cmd)
	_ = pipe.Process(ctx, wait)
	_, _ = pipe.Exec(ctx)
	err := cmd.Err()
	applied := err == nil || errors.Is(err, redis.Nil)
	n, werr := wait.Result()
	if werr == nil && n < 1 || applied && werr != nil {
		// No replica confirmed in time: stop waiting on this node for a while.
		h.noWaitUntil.Store(time.Now().Add(replicaAckPause).UnixNano())
	}
	if applied && (werr != nil || n < 1) {
		h.m.RedisError("wait")
	}
	return err
}

// topologyChanged reports whether err may mean that the slot map is stale.
func topologyChanged(err error) bool {
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, context.Canceled), errors.Is(err, redis.ErrClosed):
		return false
	case redis.IsClusterDownError(err), redis.IsMasterDownError(err), redis.IsLoadingError(err),
		redis.IsReadOnlyError(err):
		return true
	}
	// Any other answer from Redis (a script error, WRONGTYPE; MOVED, which
	// go-redis handles itself) says nothing about the topology; no answer
	// (refused, reset, EOF, timeout) may mean the node is gone.
	var rerr redis.Error
	return !errors.As(err, &rerr)
}

func (h *clusterNodeHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *clusterNodeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		write := !readOnlyCommands[cmd.Name()]
		if write && time.Now().UnixNano() >= h.noWaitUntil.Load() {
			return h.processReplicated(ctx, cmd)
		}
		err := next(ctx, cmd)
		if topologyChanged(err) {
			h.reload()
		}
		if write && (err == nil || errors.Is(err, redis.Nil)) {
			h.m.RedisError("wait") // acknowledged without waiting for a replica
		}
		return err
	}
}

func (h *clusterNodeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if topologyChanged(err) {
			h.reload()
		}
		return err
	}
}

// Store is the Redis implementation of the domain's stores.
type Store struct {
	rdb   redis.UniversalClient
	texts *textCache // code text -> promo code ID hints (textcache.go)
	docs  *docCache  // decoded code documents of the request paths (codec.go)
	// campaignIDs caches campaign number -> campaign ID (immutable).
	campaignIDs sync.Map
	cidx        *campaignIndex // campaign code text -> campaign (cmpindex.go); nil = off
	metrics     *telemetry.Metrics
	// snaps are validate's code snapshots (markers.go); nil = off.
	snaps *codeSnaps
	// markersOK: every ledger line's customer has its marker (markers.go).
	markersOK atomic.Bool
	// shared sends concurrent requests' commands in shared pipelines
	// (pipeshare.go): validate's reads, the webhook's writes.
	shared *pipeShare
	// cluster: rdb is a *redis.ClusterClient.
	cluster bool
}

// New wraps a client. Metrics (may be nil) counts failed commands.
//
// A Redis Cluster client (*redis.ClusterClient) also gets clusterNodeHook on
// every node it connects to from then on, so that it follows a failover
// within about a second of the promotion and reports a write done once a
// replica has it. Wrap a cluster client before its first command.
func New(rdb redis.UniversalClient, m *telemetry.Metrics) *Store {
	rdb.AddHook(errorHook{m})
	c, cluster := rdb.(*redis.ClusterClient)
	if cluster {
		followCluster(c, m)
	}
	return &Store{rdb: rdb, texts: newTextCache(), docs: newDocCache(), metrics: m, shared: &pipeShare{rdb: rdb}, cluster: cluster}
}

// SetCampaignIndex turns on the campaign code index (cmpindex.go) holding at
// most max code texts (CAMPAIGN_CODE_INDEX); 0 turns it off, as New leaves
// it. Call it before the store serves requests.
func (s *Store) SetCampaignIndex(max int) {
	if max <= 0 {
		s.cidx = nil
		return
	}
	s.cidx = newCampaignIndex(max, s.metrics, s.readCampaignTexts)
}

// Client returns the underlying client.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Ping reports whether Redis answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// unavailable translates a Redis failure at the boundary.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var pe *promo.Error
	if errors.As(err, &pe) || errors.Is(err, promo.ErrNotFound) {
		return err
	}
	return promo.Unavailable("Redis", err)
}

// errorHook counts failed commands by name (billing_redis_errors_total), so
// that a healthy service reports 0. Not failures: redis.Nil (a missing key),
// a caller that gave up (context.Canceled), and the replies go-redis expects
// and handles itself: NOSCRIPT to EVALSHA (redis.Script.Run then sends EVAL)
// and an unknown CLIENT subcommand to the optional probes it sends on a new
// connection (CLIENT SETINFO, switched off in Connect, and CLIENT
// MAINT_NOTIFICATIONS, which it stops sending once refused).
type errorHook struct{ m *telemetry.Metrics }

func (h errorHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil && !errors.Is(err, context.Canceled) {
			h.m.RedisError("dial")
		}
		return c, err
	}
}

func (h errorHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if isFailure(cmd, err) {
			h.m.RedisError(strings.ToLower(cmd.Name()))
		}
		return err
	}
}

func (h errorHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil {
			return nil
		}
		failed := true // an error no command carries (the connection) counts
		for _, cmd := range cmds {
			if cmd.Err() != nil {
				if failed = isFailure(cmd, cmd.Err()); failed {
					break
				}
			}
		}
		if failed {
			h.m.RedisError("pipeline")
		}
		return err
	}
}

// isFailure tells a Redis failure from the error replies that are part of
// normal work (see errorHook).
func isFailure(cmd redis.Cmder, err error) bool {
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, context.Canceled):
		return false
	case redis.HasErrorPrefix(err, "NOSCRIPT"):
		name := strings.ToLower(cmd.Name())
		return name != "evalsha" && name != "evalsha_ro"
	case strings.EqualFold(cmd.Name(), "client"):
		var reply redis.Error
		if !errors.As(err, &reply) {
			return true // no reply at all: the connection failed
		}
		sub, _ := argAt(cmd, 1)
		return sub != "setinfo" && sub != "maint_notifications"
	}
	return true
}

// argAt returns a command's argument i, lower-cased, when it is a string.
func argAt(cmd redis.Cmder, i int) (string, bool) {
	args := cmd.Args()
	if i >= len(args) {
		return "", false
	}
	s, ok := args[i].(string)
	return strings.ToLower(s), ok
}

// Store implements every persistence port of the domain.
var (
	_ promo.Store            = (*Store)(nil)
	_ promo.IdempotencyStore = (*Store)(nil)
	_ promo.RedemptionStore  = (*Store)(nil)
	_ promo.ValidateReader   = (*Store)(nil)
)
