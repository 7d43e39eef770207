// Command embedserve serves a WSGI app from CPython embedded in this
// process with package wsgiembed, on one listener: a test and benchmark
// harness for the embedded worker mode, not the hornbeam server.
//
//	go run ./wsgiembed/embedserve -b 127.0.0.1:8001 --python /usr/bin/python3 --pythonpath examples hello:application
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // on -debug only: the default mux is not served otherwise
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hornbeam-go/hornbeam/wsgiembed"
)

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	*l = append(*l, strings.Split(s, ",")...)
	return nil
}

func main() {
	bind := flag.String("b", "127.0.0.1:8001", "address to listen on")
	python := flag.String("python", "/usr/bin/python3", "interpreter whose libpython to embed")
	threads := flag.Int("threads", 1, "requests inside Python at once")
	debugAddr := flag.String("debug", "", "serve /debug/pprof/ on this address")
	var paths listFlag
	flag.Var(&paths, "pythonpath", "directories put in front of sys.path (repeatable or comma-separated)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: embedserve [flags] MODULE:CALLABLE")
		os.Exit(2)
	}
	debug.SetGCPercent(400) // as the hornbeam server runs
	if *debugAddr != "" {
		go func() { log.Println(http.ListenAndServe(*debugAddr, nil)) }()
	}
	app, err := wsgiembed.Load(wsgiembed.Config{Python: *python, App: flag.Arg(0), PythonPath: paths, Threads: *threads})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *bind)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving %s on %s (embedded %s)", flag.Arg(0), ln.Addr(), app.Interp().Install.Library)
	srv := &http.Server{
		Handler:           &wsgiembed.Handler{App: app, ErrorLog: log.Default(), MaxBodySize: 1 << 30},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Second,
	}
	log.Fatal(srv.Serve(ln))
}
