// Package httpapi is the HTTP face of the billing adapter (echo v4): routes,
// request/response shapes, API-key auth with scopes, the Idempotency-Key
// middleware, access logs, metrics, and the one table that maps domain error
// codes to HTTP statuses.
package httpapi
