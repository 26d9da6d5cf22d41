package redisstore

import (
	"context"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// pipeShare lets concurrent callers send their commands to Redis in one
// pipeline: while maxSending pipelines are on their way, a caller's
// commands wait, and the next pipeline carries every command that waited
// (combining, as a database's group commit). A caller still makes one
// round trip and sees its own commands' replies and errors; under load
// many callers share a write and a read, instead of two system calls and
// a pool checkout each. No goroutine of its own: the caller whose turn it
// is sends.
//
// Commands of different callers may be sent in any order, as concurrent
// requests' commands are; a caller's own commands keep theirs. On a Redis
// Cluster a write must wait for a replica one command at a time
// (clusterNodeHook), which a pipeline does not: there only reads are shared
// (Store.sendShared).
type pipeShare struct {
	rdb redis.UniversalClient

	mu      sync.Mutex
	waiting []*pipeCall
	sending int // pipelines on their way

	pipes sync.Pool // redis.Pipeliner: a pipeline is empty again after Exec
}

// maxSending is how many shared pipelines may be on their way at once.
const maxSending = 2

// maxShared bounds a shared pipeline's callers.
const maxShared = 128

type pipeCall struct {
	cmds []redis.Cmder
	// wake gets pipeDone when the call's replies are in, pipeLead when it
	// is this call's turn to send batch (itself first).
	wake  chan uint8
	batch []*pipeCall
}

const (
	pipeDone uint8 = iota + 1
	pipeLead
)

var pipeCalls = sync.Pool{New: func() any { return &pipeCall{wake: make(chan uint8, 1)} }}

// do sends cmds, in a pipeline shared with other callers', and returns when
// their replies are in (each command's error is its own, as in a pipeline).
// ctx's values reach the hooks. A caller whose commands still wait for a
// pipeline when ctx is done leaves with ctx's error on them, unsent; once
// they are on their way, ctx's cancellation does not stop the pipeline (it
// carries other callers' commands): it is bounded by the client's read and
// write timeouts.
func (p *pipeShare) do(ctx context.Context, cmds ...redis.Cmder) {
	c := pipeCalls.Get().(*pipeCall)
	c.cmds = cmds
	p.mu.Lock()
	if p.sending < maxSending {
		p.sending++
		c.batch = append(c.batch[:0], c)
		p.mu.Unlock()
		p.send(context.WithoutCancel(ctx), c)
	} else {
		p.waiting = append(p.waiting, c)
		p.mu.Unlock()
		select {
		case turn := <-c.wake:
			if turn == pipeLead {
				p.send(context.WithoutCancel(ctx), c)
			}
		case <-ctx.Done():
			if !p.leave(c) { // already taken into a batch: its replies come
				if <-c.wake == pipeLead {
					p.send(context.WithoutCancel(ctx), c)
				}
			} else {
				for _, cmd := range cmds {
					cmd.SetErr(ctx.Err())
				}
			}
		}
	}
	c.cmds = nil
	clear(c.batch)
	c.batch = c.batch[:0]
	pipeCalls.Put(c)
}

// leave takes c out of the waiting calls; false if a batch has taken it.
func (p *pipeShare) leave(c *pipeCall) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := slices.Index(p.waiting, c)
	if i < 0 {
		return false
	}
	p.waiting = slices.Delete(p.waiting, i, i+1)
	return true
}

// send sends lead.batch as one pipeline, wakes its callers but lead, and
// hands the turn to the first waiting call with the next batch, if any.
func (p *pipeShare) send(ctx context.Context, lead *pipeCall) {
	pl, _ := p.pipes.Get().(redis.Pipeliner)
	if pl == nil {
		pl = p.rdb.Pipeline()
	}
	defer p.pipes.Put(pl)
	for _, c := range lead.batch {
		for _, cmd := range c.cmds {
			_ = pl.Process(ctx, cmd)
		}
	}
	_, _ = pl.Exec(ctx) // each command holds its own reply or error
	for _, c := range lead.batch {
		if c != lead {
			c.wake <- pipeDone
		}
	}
	p.mu.Lock()
	if n := min(len(p.waiting), maxShared); n > 0 {
		next := p.waiting[0]
		next.batch = append(next.batch[:0], p.waiting[:n]...)
		p.waiting = append(p.waiting[:0], p.waiting[n:]...)
		next.wake <- pipeLead // sending stays as it is: the turn passes
	} else {
		p.sending--
	}
	p.mu.Unlock()
}

// sendShared sends a request path's writes (cmds) in a pipeline shared with
// other callers on a single Redis; on a cluster each goes on its own, so that
// it waits for a replica.
func (s *Store) sendShared(ctx context.Context, cmds ...redis.Cmder) {
	if !s.cluster {
		s.shared.do(ctx, cmds...)
		return
	}
	for _, c := range cmds {
		_ = s.rdb.Process(ctx, c)
	}
}

// runShared runs script as redis.Script.Run does (EVALSHA, then EVAL if
// Redis does not have it), its EVALSHA sent by send: s.sendShared for a
// script that writes, s.shared.do for a read-only one (a read has no
// replica to wait for, so it is shared on a cluster too).
func (s *Store) runShared(ctx context.Context, send func(context.Context, ...redis.Cmder), script *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmd := evalShaCmd(ctx, script, keys, args...)
	send(ctx, cmd)
	return evalIfNoScript(ctx, s.rdb, script, cmd, keys, args...)
}

// evalShaCmd is script's EVALSHA on keys and args, not yet sent.
func evalShaCmd(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "evalsha", script.Hash(), len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	return redis.NewCmd(ctx, append(cmdArgs, args...)...)
}
