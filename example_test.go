package hornbeam_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// Start a server on a WSGI application, the Go equivalent of the Erlang
// Hornbeam's
//
//	hornbeam:start("app:application", #{workers => 8, timeout => 30000})
//
// The app, testdata/apps/st_example.py, greets its visitors and counts them
// with hornbeam.state_incr("visitors"); the Go side shares that counter.
func ExampleStart() {
	ctx := context.Background()
	srv, err := hornbeam.Start(ctx, "st_example:application", hornbeam.Options{
		Bind:       []string{"127.0.0.1:0"},   // any free port; see srv.Addrs()
		Workers:    2,                         // Python worker processes
		Timeout:    30 * time.Second,          // per request
		Python:     "/usr/bin/python3",        // the interpreter that runs the app
		PythonPath: []string{"testdata/apps"}, // where st_example.py lives
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop(ctx)

	// One request, served by one of the Python workers.
	resp, err := http.Get("http://" + srv.Addrs()[0].String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, string(body))

	// The shared state is the same from Go: add 10 visitors, read the count.
	n, _ := srv.StateIncr("visitors", 10)
	fmt.Println("after StateIncr:", n)
	v, _, _ := srv.StateGet("visitors")
	fmt.Println("StateGet:", v)
	fmt.Println("workers:", len(srv.Stats().Workers))

	// Stop lets requests in flight finish, then stops the workers.
	if err := srv.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("stopped")

	// Output:
	// 200 OK Hello, visitor 1!
	// after StateIncr: 11
	// StateGet: 11
	// workers: 2
	// stopped
}
