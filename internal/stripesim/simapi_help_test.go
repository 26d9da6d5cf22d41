package stripesim

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// Every control ControlHelp documents is served with the body it shows.
func TestControlHelpMatchesTheRoutes(t *testing.T) {
	sim := New(Options{})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sd, err := sim.Seed()
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string]string{
		"POST /_sim/webhooks/endpoint":      `{"url":"","secret":"whsec_x"}`,
		"POST /_sim/webhooks/chaos":         `{"copies":1,"shuffle":false}`,
		"POST /_sim/customers/{id}/decline": `{"decline":false}`,
		"POST /_sim/faults":                 `{"kind":"server_error","method":"POST","path":"/v1/nothing","count":1,"skip":0,"delay":"2s"}`,
	}
	routes := regexp.MustCompile(`(?m)^  (GET|POST|DELETE) +(/_sim/\S+)`).FindAllStringSubmatch(ControlHelp, -1)
	if len(routes) != 9 {
		t.Fatalf("ControlHelp documents %d controls, want 9", len(routes))
	}
	for _, m := range routes {
		route := m[1] + " " + m[2]
		path := strings.ReplaceAll(m[2], "{id}", sd.CustomerID)
		req, _ := http.NewRequest(m[1], srv.URL+path, strings.NewReader(bodies[route]))
		req.SetBasicAuth("sk_test_help", "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s with the documented body: %d", route, resp.StatusCode)
		}
	}
	sim.ClearFaults()
}
