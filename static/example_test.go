package static_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/hornbeam-go/hornbeam/static"
)

// Serving ./static under /assets (the flag value "--static /assets=./static"),
// with every other request going to the app.
func Example() {
	dir, _ := os.MkdirTemp("", "static-example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "site.css"), []byte("body{}"), 0o644)

	prefix, d, err := static.ParseMapping("/assets=" + dir)
	if err != nil {
		log.Fatal(err)
	}
	files, err := static.New(prefix, d)
	if err != nil {
		log.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "from the app")
	})
	handler := files.Wrap(app)

	for _, target := range []string{"/assets/site.css", "/assets/missing.css", "/assets/../secret", "/hello"} {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		fmt.Println(target, rec.Code, rec.Header().Get("Content-Type"))
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("POST", "/assets/site.css", nil))
	fmt.Println("POST", rec.Code, rec.Header().Get("Allow"))
	// Output:
	// /assets/site.css 200 text/css; charset=utf-8
	// /assets/missing.css 404 text/plain; charset=utf-8
	// /assets/../secret 404 text/plain; charset=utf-8
	// /hello 200 text/plain; charset=utf-8
	// POST 405 GET, HEAD
}
