package main

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestAuditTrail: every admin change is recorded with the key's name, the
// request ID and the fields changed; replays and no-op updates add nothing.
func TestAuditTrail(t *testing.T) {
	s := startService(t, nil)
	create := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), map[string]any{"code": "AUDIT1",
		"promo_type": "percentage", "amount_off": 15, "stock": 5, "metadata": map[string]string{"team": "growth"}})
	mustStatus(t, create, http.StatusCreated)
	id := create.json(t)["id"].(string)

	key := newKey()
	body := map[string]any{"stock": 7, "metadata": map[string]any{"team": nil, "channel": "email"}}
	update := s.call(t, "POST", "/v1/promo_codes/"+id, admin2Secret, key, body)
	mustStatus(t, update, http.StatusOK)
	replay := s.call(t, "POST", "/v1/promo_codes/"+id, admin2Secret, key, body)
	if replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("not a replay: %v", replay.Header)
	}
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes/"+id, adminSecret, newKey(), map[string]any{"stock": 7}), http.StatusOK) // no change
	archive := s.call(t, "POST", "/v1/promo_codes/"+id, adminSecret, newKey(), map[string]any{"status": "archived"})
	mustStatus(t, archive, http.StatusOK)

	r := s.call(t, "GET", "/v1/promo_codes/"+id+"/events", adminSecret, "", nil)
	mustStatus(t, r, http.StatusOK)
	var list struct {
		Data []struct {
			ID, Action, APIKey string
			RequestID          string `json:"request_id"`
			APIKeyName         string `json:"api_key"`
			Changes            []struct {
				Field         string
				Before, After json.RawMessage
			}
		}
		HasMore bool `json:"has_more"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Data) != 3 {
		t.Fatalf("%d events, want create, update, archive: %s", len(list.Data), r.Body)
	}
	arch, upd, cre := list.Data[0], list.Data[1], list.Data[2]
	if arch.Action != "archive" || arch.APIKeyName != "admin" || arch.RequestID != archive.Header.Get("X-Request-Id") ||
		len(arch.Changes) != 1 || arch.Changes[0].Field != "status" || string(arch.Changes[0].Before) != `"active"` ||
		string(arch.Changes[0].After) != `"archived"` {
		t.Errorf("archive event: %+v", arch)
	}
	if upd.Action != "update" || upd.APIKeyName != "admin2" || upd.RequestID != update.Header.Get("X-Request-Id") {
		t.Errorf("update event: %+v", upd)
	}
	want := map[string][2]string{"stock": {"5", "7"}, "metadata.team": {`"growth"`, "null"}, "metadata.channel": {"null", `"email"`}}
	if len(upd.Changes) != len(want) {
		t.Errorf("update changes: %+v", upd.Changes)
	}
	for _, ch := range upd.Changes {
		if w, ok := want[ch.Field]; !ok || string(ch.Before) != w[0] || string(ch.After) != w[1] {
			t.Errorf("update change %s: %s → %s", ch.Field, ch.Before, ch.After)
		}
	}
	if cre.Action != "create" || cre.APIKeyName != "admin" || cre.RequestID != create.Header.Get("X-Request-Id") {
		t.Errorf("create event: %+v", cre)
	}
	fields := map[string]string{}
	for _, ch := range cre.Changes {
		if string(ch.Before) != "null" {
			t.Errorf("create change %s has a before: %s", ch.Field, ch.Before)
		}
		fields[ch.Field] = string(ch.After)
	}
	if fields["code"] != `"AUDIT1"` || fields["amount_off"] != "15.00" || fields["stock"] != "5" || fields["metadata.team"] != `"growth"` {
		t.Errorf("create changes: %v", fields)
	}

	// Paging, and the usual refusals.
	r = s.call(t, "GET", "/v1/promo_codes/"+id+"/events?limit=1&starting_after="+upd.ID, adminSecret, "", nil)
	mustStatus(t, r, http.StatusOK)
	if d := r.json(t)["data"].([]any); len(d) != 1 || d[0].(map[string]any)["id"] != cre.ID {
		t.Errorf("second page: %s", r.Body)
	}
	mustStatus(t, s.call(t, "GET", "/v1/promo_codes/"+id+"/events?starting_after=ev_nope", adminSecret, "", nil), http.StatusBadRequest)
	mustStatus(t, s.call(t, "GET", "/v1/promo_codes/pc_nope/events", adminSecret, "", nil), http.StatusNotFound)
	mustStatus(t, s.call(t, "GET", "/v1/promo_codes/"+id+"/events", checkoutSecret, "", nil), http.StatusForbidden)
}
