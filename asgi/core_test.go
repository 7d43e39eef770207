package asgi_test

import (
	"encoding/json"
	"testing"
)

func TestScope(t *testing.T) {
	s := start(t, nil, "asgi_app:app")
	code, body := s.get("/scope?a=1&b=%20")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var sc map[string]any
	if err := json.Unmarshal([]byte(body), &sc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for k, want := range map[string]any{"type": "http", "method": "GET", "path": "/scope", "raw_path": "/scope",
		"query_string": "a=1&b=%20", "root_path": "", "http_version": "1.1", "scheme": "http"} {
		if sc[k] != want {
			t.Errorf("scope[%q] = %v, want %v", k, sc[k], want)
		}
	}
}
