package hornbeam_test

import (
	"testing"

	"github.com/hornbeam-go/hornbeam"
)

func TestSmoke(t *testing.T) {
	s := start(t, "echo", hornbeam.Options{})
	code, body := get(t, s.URL+"/a%20b?x=1")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	contains(t, body, `"PATH_INFO": "/a b"`, "environ")
}
