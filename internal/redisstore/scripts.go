package redisstore

import (
	"context"
	"embed"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts live in lua/, one file each, with a header naming their
// KEYS and ARGV. Ledger scripts are assembled here, in one place, from the
// shared prelude and their own body:
//
//	plainScript("x")    = lua/x.lua
//	ledgerScript("x")   = lua/ledger_prelude.lua + lua/x.lua
//	observedScript("x") = lua/ledger_prelude.lua + lua/discount_args.lua + lua/x.lua
//
//go:embed lua/*.lua
var luaFiles embed.FS

func luaSource(names ...string) string {
	var src []byte
	for _, n := range names {
		b, err := luaFiles.ReadFile("lua/" + n + ".lua")
		if err != nil {
			panic("redisstore: missing Lua script " + n + ": " + err.Error())
		}
		src = append(append(src, b...), '\n')
	}
	return string(src)
}

// plainScript is a script that stands alone.
func plainScript(name string) *redis.Script { return redis.NewScript(luaSource(name)) }

// ledgerScript is a script on one code's ledger keys (redemptionKeys).
func ledgerScript(name string) *redis.Script {
	return redis.NewScript(luaSource("ledger_prelude", name))
}

// observedScript is a ledger script about a Stripe discount (discount_args.lua).
func observedScript(name string) *redis.Script {
	return redis.NewScript(luaSource("ledger_prelude", "discount_args", name))
}

// evalIfNoScript is cmd, a script's EVALSHA sent in a pipeline, unless Redis
// answered NOSCRIPT (a restarted or flushed Redis, a node that does not have
// the script yet): then the script did not run, and EVAL sends and runs it,
// as redis.Script.Run would have.
func evalIfNoScript(ctx context.Context, rdb redis.Scripter, script *redis.Script, cmd *redis.Cmd, keys []string, args ...any) *redis.Cmd {
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		return script.Eval(ctx, rdb, keys, args...)
	}
	return cmd
}
