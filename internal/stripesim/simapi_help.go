package stripesim

// ControlHelp documents the /_sim/ test controls (serveSim) with their
// request bodies; `stripe-sim -h` prints it and the README repeats it.
const ControlHelp = `Test controls: the same sk_test_ key as /v1 (Bearer, or curl -u sk_test_x:); bodies are JSON;
the answer is {"ok":true} unless another is shown. A wrong body is a 400 in Stripe's error shape.

  POST   /_sim/seed                    no body. Makes a demo customer, a product and a monthly 20.00 USD price:
                                       {"customer_id":"cus_...","product_id":"prod_...","price_id":"price_..."}
  POST   /_sim/webhooks/endpoint       {"url":"http://127.0.0.1:8080/webhooks/stripe","secret":"whsec_..."}
                                       where signed events go from now on (pending ones too); "url":"" stops
                                       delivery (events made meanwhile are never delivered).
  POST   /_sim/webhooks/chaos          {"copies":3,"shuffle":true}: every later event is delivered copies times
                                       (at least 1), each batch of pending deliveries in random order when
                                       shuffle is true. {"copies":1,"shuffle":false} is normal delivery.
  POST   /_sim/customers/{id}/decline  {"decline":true}: the customer's invoice payments fail from now on;
                                       {"decline":false}: they succeed again. "decline" is required; an
                                       unknown customer is a 404.
  POST   /_sim/faults                  {"kind":"server_error","method":"POST","path":"/v1/subscriptions",
                                        "count":1,"skip":0,"delay":"2s"}
                                       the next count (default 1) requests matching method ("" = any) and
                                       path prefix ("" = any), after letting skip of them through, fail:
                                         server_error      500 before executing (nothing saved: a retry runs)
                                         rate_limit        429 rate_limit before executing
                                         lock_timeout      429 lock_timeout before executing
                                         hang              no answer for delay (default 60s), then 500
                                         commit_then_500   executes for real, then 500 (replayed for its key)
                                         commit_then_hang  executes for real, then hangs like hang
                                       delay is a Go duration ("1.5s") or nanoseconds; "delay_ms" works too.
                                       Faults queue up: each POST adds one.
  DELETE /_sim/faults                  no body: drops every pending fault.
  GET    /_sim/counts                  requests per operation so far: {"POST /v1/coupons":2,...}
  POST   /_sim/counts/reset            no body: sets every counter to 0.
  GET    /_sim/cli                     the Stripe CLI sessions (stripe listen) and what their CLIs answered:
                                       {"sessions":1,"connections":1,"pending":0,"acks":12,"responses":{"200":5}}
`
