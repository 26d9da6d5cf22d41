package stripesim

import (
	"net/http"
	"slices"
)

// testClock is a Stripe test clock. Customers created with test_clock live
// in its time; advancing it processes every crossed billing event of their
// subscriptions in time order. Advancing is synchronous: the response
// already has status "ready" (real Stripe reports "advancing" for a while).
// Stripe's limit of two billing intervals per advance and three customers
// per clock are not enforced.
type testClock struct {
	ID      string
	seq     int64
	created int64
	frozen  int64
	name    string
	status  string
}

func (s *Server) renderClock(tc *testClock) map[string]any {
	return map[string]any{
		"id":            tc.ID,
		"object":        "test_helpers.test_clock",
		"created":       tc.created,
		"deletes_after": tc.created + 30*86400,
		"frozen_time":   tc.frozen,
		"livemode":      false,
		"name":          nstr(tc.name),
		"status":        tc.status,
	}
}

var clockCreateSchema = newSchema([]string{"frozen_time", "name", "expand[#]"}, nil, nil)

func hClockCreate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(clockCreateSchema); err != nil {
		return nil, err
	}
	s := c.s
	ft, err := frozenTime(c)
	if err != nil {
		return nil, err
	}
	if ft <= 0 {
		return nil, invalidParam("frozen_time", "Invalid frozen_time: must be a positive timestamp.")
	}
	name, _ := c.p.str("name")
	tc := &testClock{ID: newID("clock"), seq: s.nextSeq(), created: s.realNow(), frozen: ft, name: name, status: "ready"}
	s.clocks[tc.ID] = tc
	s.idx.clocks.add(tc)
	s.emit("test_helpers.test_clock.created", s.renderClock(tc), nil, c.origin(), tc.created)
	return s.renderClock(tc), nil
}

func (s *Server) clockByPath(id string) (*testClock, *apiError) {
	tc := s.clocks[id]
	if tc == nil {
		return nil, noSuchPath("test clock", id)
	}
	return tc, nil
}

func hClockRetrieve(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(retrieveSchema); err != nil {
		return nil, err
	}
	tc, err := c.s.clockByPath(c.id())
	if err != nil {
		return nil, err
	}
	return c.s.renderClock(tc), nil
}

var clockListSchema = newSchema([]string{"limit", "starting_after", "ending_before", "expand[#]"}, nil, nil)

func hClockList(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(clockListSchema); err != nil {
		return nil, err
	}
	s := c.s
	return paginate(c, "/v1/test_helpers/test_clocks", s.idx.clocks.view(s.clocks, func(x *testClock) int64 { return x.seq }), func(tc *testClock) bool {
		return true
	}, func(x *testClock) int64 { return x.seq },
		func(id string) (int64, bool) {
			if x := s.clocks[id]; x != nil {
				return x.seq, true
			}
			return 0, false
		}, "test clock", s.renderClock)
}

// hClockDelete deletes the clock and, as Stripe does, the customers
// attached to it together with their subscriptions and invoices.
func hClockDelete(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(deleteSchema); err != nil {
		return nil, err
	}
	s := c.s
	tc, err := s.clockByPath(c.id())
	if err != nil {
		return nil, err
	}
	for id, cu := range s.customers {
		if cu.clock != tc.ID {
			continue
		}
		for sid, sub := range s.subs {
			if sub.customer == id {
				delete(s.subs, sid)
			}
		}
		for iid, in := range s.invoices {
			if in.customer == id {
				delete(s.invoices, iid)
			}
		}
		delete(s.customers, id)
	}
	delete(s.clocks, tc.ID)
	s.emit("test_helpers.test_clock.deleted", s.renderClock(tc), nil, c.origin(), s.realNow())
	return map[string]any{"id": tc.ID, "object": "test_helpers.test_clock", "deleted": true}, nil
}

var clockAdvanceSchema = newSchema([]string{"frozen_time", "expand[#]"}, nil, nil)

func hClockAdvance(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(clockAdvanceSchema); err != nil {
		return nil, err
	}
	s := c.s
	ft, err := frozenTime(c)
	if err != nil {
		return nil, err
	}
	tc, err := s.clockByPath(c.id())
	if err != nil {
		return nil, err
	}
	if ft <= tc.frozen {
		return nil, &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Param: "frozen_time",
			Message: "The frozen_time must be after the test clock's current frozen_time."}
	}
	o := c.origin()
	tc.status = "advancing"
	s.emit("test_helpers.test_clock.advancing", s.renderClock(tc), nil, o, s.realNow())
	subs := slices.Clone(s.subsOnClock(tc.ID))
	s.advanceSubs(subs, ft, func(t int64) { tc.frozen = t })
	tc.frozen = ft
	tc.status = "ready"
	s.emit("test_helpers.test_clock.ready", s.renderClock(tc), nil, o, s.realNow())
	return s.renderClock(tc), nil
}

// frozenTime reads the required frozen_time parameter.
func frozenTime(c *reqCtx) (int64, *apiError) {
	ft, ok, err := c.p.int64("frozen_time")
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, missingParam("frozen_time")
	}
	return ft, nil
}
