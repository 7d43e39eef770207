// Command gohello is the ceiling of the server benchmark (bench/servers):
// a bare Go net/http server with no Python behind it, answering the same
// requests as the benchmark's WSGI apps:
//
//	GET  /        "Hello, World!" (13 bytes)
//	GET  /64k     65536 bytes
//	POST /upload  reads the whole body, answers with its length
//
// It uses http.Server's defaults (no timeouts), GOMAXPROCS = all cores.
package main

import (
	"bytes"
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	hello := []byte("Hello, World!")
	big := bytes.Repeat([]byte("0123456789abcdef"), 65536/16)

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "13")
		w.Write(hello)
	})
	mux.HandleFunc("/64k", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Write(big)
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body := strconv.FormatInt(n, 10)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	})
	log.Printf("gohello listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
