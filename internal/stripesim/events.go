package stripesim

import (
	"encoding/json"
	"reflect"
	"strings"
)

// event is one recorded Stripe event. body is the full event JSON, frozen
// at creation (webhook deliveries send exactly these bytes).
type event struct {
	ID      string
	seq     int64
	created int64
	typ     string
	body    []byte
}

// eventOrigin tells which API request caused an event; empty for events the
// simulator's clock caused (renewals, test clock advances).
type eventOrigin struct {
	reqID   string
	idemKey string
}

// pendingEvent is an event whose snapshot was taken but which is not yet
// recorded, so a handler can choose the order events are recorded in.
type pendingEvent struct {
	typ     string
	obj     map[string]any
	prev    map[string]any
	created int64
}

// emit records an event. obj is the object snapshot (a fresh render), prev
// the previous_attributes for *.updated events. Caller holds s.mu.
func (s *Server) emit(typ string, obj map[string]any, prev map[string]any, o eventOrigin, created int64) *event {
	rawObj, err := marshalJSON(obj)
	if err != nil {
		panic(err)
	}
	ev := &event{ID: newID("evt"), seq: s.nextSeq(), created: created, typ: typ}
	pending := 0
	if s.hooks.enabled() {
		pending = 1
	}
	var req map[string]any
	if o.reqID != "" {
		req = map[string]any{"id": o.reqID, "idempotency_key": nstr(o.idemKey)}
	} else {
		req = map[string]any{"id": nil, "idempotency_key": nil}
	}
	data := map[string]any{"object": preEncoded(rawObj)}
	if prev != nil {
		data["previous_attributes"] = prev
	}
	full := map[string]any{
		"id":     ev.ID,
		"object": "event",
		// No "account": Stripe sends it only on Connect events (the spec
		// has it optional and not nullable).
		"api_version":      apiVersion,
		"created":          created,
		"data":             data,
		"livemode":         false,
		"pending_webhooks": pending,
		"request":          req,
		"type":             typ,
	}
	ev.body, err = marshalJSON(full)
	if err != nil {
		panic(err)
	}
	s.events = append(s.events, ev)
	s.eventByID[ev.ID] = ev
	if max := s.opts.MaxEvents; max > 0 && len(s.events) >= 2*max {
		// Keep the newest max (trimmed in batches: each event is dropped once).
		drop := len(s.events) - max
		for _, old := range s.events[:drop] {
			delete(s.eventByID, old.ID)
		}
		s.events = append([]*event(nil), s.events[drop:]...)
	}
	s.log.Debug("stripesim: event", "id", ev.ID, "type", typ)
	if pending > 0 {
		s.hooks.enqueue(ev)
	}
	s.cli.publish(ev.body)
	return ev
}

// flush records pending events in order.
func (s *Server) flush(evs []pendingEvent, o eventOrigin) {
	for _, pe := range evs {
		s.emit(pe.typ, pe.obj, pe.prev, o, pe.created)
	}
}

// previousAttributes computes Stripe's data.previous_attributes: the old
// values of top-level fields that changed (metadata is diffed per key, with
// null for keys that did not exist before).
func previousAttributes(before, after map[string]any) map[string]any {
	prev := map[string]any{}
	for k, bv := range before {
		av, ok := after[k]
		if ok && equalJSON(av, bv) {
			continue
		}
		if k == "metadata" {
			bm, _ := bv.(map[string]any)
			am, _ := av.(map[string]any)
			d := map[string]any{}
			for mk, mv := range bm {
				if am[mk] != mv {
					d[mk] = mv
				}
			}
			for mk := range am {
				if _, ok := bm[mk]; !ok {
					d[mk] = nil
				}
			}
			prev[k] = d
			continue
		}
		prev[k] = bv
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			prev[k] = nil
		}
	}
	return prev
}

func equalJSON(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	ja, err1 := marshalJSON(a)
	jb, err2 := marshalJSON(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// emitUpdate records a *.updated event when something changed.
func (s *Server) emitUpdate(typ string, before, after map[string]any, o eventOrigin, created int64) {
	prev := previousAttributes(before, after)
	if len(prev) == 0 {
		return
	}
	s.emit(typ, after, prev, o, created)
}

func (s *Server) renderEvent(ev *event) map[string]any {
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(ev.body)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		panic(err)
	}
	return m
}

var eventRetrieveSchema = newSchema([]string{"expand[#]"}, nil, nil)

func hEventRetrieve(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(eventRetrieveSchema); err != nil {
		return nil, err
	}
	ev := c.s.eventByID[c.id()]
	if ev == nil {
		return nil, noSuchPath("event", c.id())
	}
	return c.s.renderEvent(ev), nil
}

var eventListSchema = newSchema(append([]string{"type", "types[#]", "delivery_success"}, listSchemaBase...), nil, nil)

// typeMatches supports Stripe's wildcard filter ("customer.*").
func typeMatches(pattern, typ string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == typ
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(typ, parts[0]) {
		return false
	}
	rest := typ[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(rest, p)
		}
		j := strings.Index(rest, p)
		if j < 0 {
			return false
		}
		rest = rest[j+len(p):]
	}
	return true
}

func hEventList(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(eventListSchema); err != nil {
		return nil, err
	}
	s := c.s
	typ, hasType := c.p.str("type")
	types, err := c.p.strList("types")
	if err != nil {
		return nil, err
	}
	if hasType && len(types) > 0 {
		return nil, invalidParam("types", "You may only specify one of these parameters: type, types.")
	}
	created, err := c.p.rangeFilter("created")
	if err != nil {
		return nil, err
	}
	return paginate(c, "/v1/events", s.events, func(ev *event) bool {
		if hasType && !typeMatches(typ, ev.typ) {
			return false
		}
		if len(types) > 0 {
			ok := false
			for _, t := range types {
				if typeMatches(t, ev.typ) {
					ok = true
				}
			}
			if !ok {
				return false
			}
		}
		if !created.match(ev.created) {
			return false
		}
		return true
	}, func(e *event) int64 { return e.seq },
		func(id string) (int64, bool) {
			if e := s.eventByID[id]; e != nil {
				return e.seq, true
			}
			return 0, false
		}, "event", s.renderEvent)
}

// EventBodies returns the JSON of every recorded event, oldest first (tests
// validate them against Stripe's spec).
func (s *Server) EventBodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, 0, len(s.events))
	for _, ev := range s.events {
		out = append(out, ev.body)
	}
	return out
}
