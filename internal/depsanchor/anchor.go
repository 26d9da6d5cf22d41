// Package depsanchor pins dependencies in go.mod until the packages using them land. Temporary.
package depsanchor

import (
	_ "github.com/labstack/echo/v4"
	_ "github.com/labstack/echo/v4/middleware"
	_ "github.com/oklog/ulid/v2"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/stripe/stripe-go/v76"
	_ "github.com/stripe/stripe-go/v76/client"
	_ "github.com/stripe/stripe-go/v76/webhook"
)
