// Package promo is the billing adapter's domain: promo codes, the rules that
// govern them, the one error type with its closed set of codes, and the ports
// (Store, Gateway, Clock, IdempotencyStore) that adapters implement.
//
// Nothing here imports an adapter. Redis, Stripe and HTTP live in
// internal/redisstore, internal/stripegw and internal/httpapi; they translate
// their own errors into *Error at the boundary.
//
// Money is exact: flat amounts are int64 minor units of their currency and
// percentages are int64 hundredths of a percent (1250 = 12.50%). Decimal text
// from clients is converted without floating point.
package promo
