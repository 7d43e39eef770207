package asgi_test

// Real frameworks from Debian (issue #14, item 9), each served end to end
// by the real binary: FastAPI 0.92 (examples/asgi_fastapi.py), Starlette
// 0.26 (asgi_starlette.py), Quart 0.18 (asgi_quart.py), Django 3.2 with
// Channels 4.0 (examples/django_async). The clients are Go's net/http and
// coder/websocket, and python3-httpx / python3-websockets as subprocesses.
// Starlette 0.26 predates spec 2.4's root_path in path: no root_path here.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fwClient has a bound: a response that never comes fails the test.
var fwClient = &http.Client{Timeout: 10 * time.Second}

// doJSON sends a request (body marshalled as JSON when not nil) and
// decodes the JSON answer into out (when not nil); it returns the status.
func doJSON(t *testing.T, s *server, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url(path), rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := fwClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: status %d, not JSON (%v): %s", method, path, res.StatusCode, err, raw)
		}
	}
	return res.StatusCode
}

// wantJSON checks a JSON answer field by field (numbers as float64).
func wantJSON(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s: %q = %#v, want %#v (all: %v)", what, k, got[k], w, got)
		}
	}
}

// upload POSTs n random bytes to path, with a Content-Length or (chunked)
// without, and checks that the app saw them all: it answers length and
// sha256; the answer is returned.
func upload(t *testing.T, s *server, path string, n int, chunked bool) map[string]any {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	sum := sha256.Sum256(data)
	var body io.Reader = bytes.NewReader(data)
	if chunked {
		body = io.MultiReader(bytes.NewReader(data[:n/2]), bytes.NewReader(data[n/2:])) // no length known
	}
	req, _ := http.NewRequest("POST", s.url(path), body)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := fwClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var got map[string]any
	if res.StatusCode != 200 || json.Unmarshal(raw, &got) != nil {
		t.Fatalf("POST %s (%d bytes, chunked %v): status %d: %s", path, n, chunked, res.StatusCode, raw)
	}
	wantJSON(t, "upload", got, map[string]any{"length": float64(n), "sha256": hex.EncodeToString(sum[:])})
	return got
}

// checkStreamedBeforeEnd GETs path, whose app sends a first line and then
// waits until releasePath is fetched: the first line must arrive while the
// app is still waiting (a buffered response would never end), the rest
// after the release.
func checkStreamedBeforeEnd(t *testing.T, s *server, path, releasePath string, rest []string) {
	t.Helper()
	res, err := fwClient.Get(s.url(path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.ContentLength != -1 {
		t.Fatalf("GET %s: status %d, Content-Length %d: want 200, streamed (no length)", path, res.StatusCode, res.ContentLength)
	}
	br := bufio.NewReader(res.Body)
	first, err := br.ReadString('\n')
	if err != nil || first != "first\n" {
		t.Fatalf("GET %s: the first chunk: %q, %v (it must arrive before the app is released)", path, first, err)
	}
	if code, body := s.get(releasePath); code != 200 {
		t.Fatalf("GET %s: %d %s", releasePath, code, body)
	}
	tail, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("GET %s: the rest: %v", path, err)
	}
	if want := strings.Join(rest, ""); string(tail) != want {
		t.Errorf("GET %s: after the release got %q, want %q", path, tail, want)
	}
}

// checkError fetches a route that raises, five times: 500 for the
// client, and each time the traceback with the exception's text in the
// server's log (Starlette re-raises right after sending its 500: the
// error reached a stream whose goroutine had just finished, and was lost
// now and then). The worker then goes on serving okPath.
func checkError(t *testing.T, s *server, path, exc, okPath string) {
	t.Helper()
	const n = 5
	for i := 0; i < n; i++ {
		code, body := s.get(path)
		if code != 500 {
			t.Errorf("GET %s: status %d, want 500: %s", path, code, body)
		}
	}
	s.waitLog(5*time.Second, "Traceback (most recent call last)", exc)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(s.log.String(), exc) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests raised, the log has %d tracebacks with %q:\n%s", n, strings.Count(s.log.String(), exc), exc, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := s.get(okPath); code != 200 {
		t.Errorf("GET %s after the error: %d %s", okPath, code, body)
	}
}

// checkShutdownFile stops the server (SIGTERM) and checks that the app's
// shutdown code wrote file, which it must not have written before.
func checkShutdownFile(t *testing.T, s *server, file, want string) {
	t.Helper()
	if _, err := os.Stat(file); err == nil {
		t.Fatalf("%s exists before the shutdown", file)
	}
	s.stop()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the app's shutdown handler did not run after SIGTERM: %v\n%s", err, s.log.String())
	}
	if !strings.Contains(string(b), want) {
		t.Errorf("%s: %q, want %q in it", file, b, want)
	}
}

func wsDial(t *testing.T, s *server, path string) *websocket.Conn {
	t.Helper()
	c, _ := wsDialOpts(t, s, path, nil)
	return c
}

// wsDialOpts dials with options, and returns the handshake's response.
func wsDialOpts(t *testing.T, s *server, path string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "ws://"+s.addr+path, opts)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	c.SetReadLimit(1 << 20) // the client's default is 32 KiB
	t.Cleanup(func() { c.CloseNow() })
	return c, res
}

// wsRefused dials path and wants the handshake refused with status.
func wsRefused(t *testing.T, s *server, path string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "ws://"+s.addr+path, nil)
	if err == nil {
		c.CloseNow()
		t.Fatalf("dial %s: accepted, want %d", path, status)
	}
	if res == nil || res.StatusCode != status {
		t.Errorf("dial %s: %v (response %v), want status %d", path, err, res, status)
	}
}

// wsRead reads one message within 5 s.
func wsRead(t *testing.T, c *websocket.Conn) (websocket.MessageType, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("websocket read: %v", err)
	}
	return typ, string(b)
}

func wsWrite(t *testing.T, c *websocket.Conn, typ websocket.MessageType, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, []byte(msg)); err != nil {
		t.Fatalf("websocket write %q: %v", msg, err)
	}
}

// wsEcho sends msg and wants want back, of the same type.
func wsEcho(t *testing.T, c *websocket.Conn, typ websocket.MessageType, msg, want string) {
	t.Helper()
	wsWrite(t, c, typ, msg)
	gtyp, got := wsRead(t, c)
	if gtyp != typ || got != want {
		t.Errorf("sent %v %q: got %v %q, want %v %q", typ, msg, gtyp, got, typ, want)
	}
}

// wsWantClose reads until the server's close frame: its code and reason.
func wsWantClose(t *testing.T, c *websocket.Conn, code websocket.StatusCode, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("want a close %d %q, got message %q, err %v", code, reason, b, err)
	}
	if ce.Code != code || ce.Reason != reason {
		t.Errorf("close %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
	}
}

// poll GETs path until its body has every one of want (JSON compacted
// without spaces), for up to 5 s.
func poll(t *testing.T, s *server, path string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := s.get(path)
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(body)) == nil {
			body = buf.String()
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(body, w)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %s, want %q in it", path, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pyClient runs a python3 script (httpx, websockets) against the server,
// with the server's base URL as argv[1]; it returns the output.
func pyClient(t *testing.T, s *server, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", script, s.addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	return string(out)
}

// FastAPI

func TestFrameworkFastAPIRoutes(t *testing.T) {
	needPython(t, "fastapi")
	s := start(t, nil, "asgi_fastapi:app")
	var got map[string]any
	if code := doJSON(t, s, "GET", "/items/42?q=caf%C3%A9&limit=5", nil, &got); code != 200 {
		t.Fatalf("status %d: %v", code, got)
	}
	wantJSON(t, "GET /items/42", got, map[string]any{"item_id": 42.0, "q": "café", "limit": 5.0})
	got = nil
	doJSON(t, s, "GET", "/items/7", nil, &got)
	wantJSON(t, "GET /items/7 (defaults)", got, map[string]any{"item_id": 7.0, "q": nil, "limit": 10.0})
	if code := doJSON(t, s, "GET", "/items/notanint", nil, &got); code != 422 {
		t.Errorf("GET /items/notanint: status %d, want 422 (validation)", code)
	}
	got = nil
	if code := doJSON(t, s, "POST", "/items", map[string]any{"name": "nut", "price": 10, "tags": []string{"a", "b"}}, &got); code != 201 {
		t.Fatalf("POST /items: status %d: %v", code, got)
	}
	wantJSON(t, "POST /items", got, map[string]any{"name": "nut", "total": 12.0, "tags": []any{"a", "b"}})
	if code := doJSON(t, s, "POST", "/items", map[string]any{"name": "nut"}, &got); code != 422 {
		t.Errorf("POST /items without a price: status %d, want 422", code)
	}
	// The startup handler ran once, before the first request.
	got = nil
	doJSON(t, s, "GET", "/state", nil, &got)
	if got["startup"] != 1.0 {
		t.Errorf("on_event(startup) ran %v times before serving, want 1", got["startup"])
	}
}

func TestFrameworkFastAPIUpload(t *testing.T) {
	needPython(t, "fastapi")
	s := start(t, nil, "asgi_fastapi:app")
	for _, chunked := range []bool{false, true} {
		got := upload(t, s, "/upload", 300<<10+123, chunked)
		// 300 KiB cannot come in one 64 KiB message: request.stream()
		// saw several.
		if n, _ := got["chunks"].(float64); n < 5 {
			t.Errorf("chunked %v: the app saw the body in %v pieces, want at least 5 (64 KiB each)", chunked, got["chunks"])
		}
	}
	// A small body comes whole.
	var got map[string]any
	doJSON(t, s, "POST", "/upload", map[string]string{"x": "y"}, &got)
	wantJSON(t, "small upload", got, map[string]any{"length": 9.0, "chunks": 1.0})
}

func TestFrameworkFastAPIStreaming(t *testing.T) {
	needPython(t, "fastapi")
	s := start(t, nil, "asgi_fastapi:app")
	checkStreamedBeforeEnd(t, s, "/stream?key=a", "/release?key=a",
		[]string{"after release 0\n", "after release 1\n", "after release 2\n"})
}

func TestFrameworkFastAPILifespan(t *testing.T) {
	needPython(t, "fastapi")
	file := filepath.Join(t.TempDir(), "shutdown")
	s := start(t, []string{"FASTAPI_SHUTDOWN_FILE=" + file}, "asgi_fastapi:app")
	if code, body := s.get("/items/1"); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	checkShutdownFile(t, s, file, "after 1 startup")
}

// Repeated headers both ways, and a multipart form with a file over
// 64 KiB.
func TestFrameworkFastAPIHeadersAndForms(t *testing.T) {
	needPython(t, "fastapi", "multipart")
	s := start(t, nil, "asgi_fastapi:app")
	req, _ := http.NewRequest("GET", s.url("/headers"), nil)
	req.Header.Add("X-Tag", "one")
	req.Header.Add("X-Tag", "two")
	res, err := fwClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != `{"x_tag":["one","two"]}` {
		t.Errorf("repeated request header: %s", b)
	}
	var names []string
	for _, c := range res.Cookies() {
		names = append(names, c.Name+"="+c.Value)
	}
	if strings.Join(names, " ") != "a=1 b=2" {
		t.Errorf("Set-Cookie: %q, want both cookies", res.Header.Values("Set-Cookie"))
	}

	data := make([]byte, 200<<10)
	rand.Read(data)
	sum := sha256.Sum256(data)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("note", "a file")
	fw, _ := mw.CreateFormFile("up", "blob.bin")
	fw.Write(data)
	mw.Close()
	req, _ = http.NewRequest("POST", s.url("/form"), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err = fwClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	var got map[string]any
	if res.StatusCode != 200 || json.Unmarshal(b, &got) != nil {
		t.Fatalf("POST /form: %d %s", res.StatusCode, b)
	}
	wantJSON(t, "POST /form", got, map[string]any{"note": "a file", "filename": "blob.bin", "length": float64(len(data)), "sha256": hex.EncodeToString(sum[:])})
}

// One worker serves many requests at once: async handlers on its loop,
// sync ones in FastAPI's thread pool.
func TestFrameworkFastAPIConcurrency(t *testing.T) {
	needPython(t, "fastapi")
	s := start(t, nil, "asgi_fastapi:app")
	for _, path := range []string{"/slow?s=0.5", "/sync-sleep?s=0.5"} {
		t0 := time.Now()
		errs := make(chan string, 8)
		for i := 0; i < 8; i++ {
			go func() {
				res, err := fwClient.Get(s.url(path))
				if err != nil {
					errs <- err.Error()
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || !strings.Contains(string(b), `"slept":0.5`) {
					errs <- fmt.Sprintf("%d %s", res.StatusCode, b)
					return
				}
				errs <- ""
			}()
		}
		for i := 0; i < 8; i++ {
			if e := <-errs; e != "" {
				t.Errorf("GET %s: %s", path, e)
			}
		}
		// Eight 0.5 s requests one after the other would take 4 s.
		if d := time.Since(t0); d > 2500*time.Millisecond {
			t.Errorf("8 concurrent GET %s took %s: not served concurrently", path, d)
		}
	}
}

// A client that does not read: StreamingResponse's send() waits, so the
// generator stops about a window (plus the sockets' buffers) ahead; then
// everything arrives.
func TestFrameworkFastAPIBackpressure(t *testing.T) {
	needPython(t, "fastapi")
	s := start(t, nil, "asgi_fastapi:app")
	conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(64 << 10)
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, "GET /big?mb=64 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	sent := func() float64 {
		var st map[string]any
		doJSON(t, s, "GET", "/state", nil, &st)
		n, _ := st["big_sent"].(float64)
		return n
	}
	// Wait until the generator stalls.
	last := -1.0
	for i := 0; i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		n := sent()
		if n == last && n > 0 {
			break
		}
		last = n
	}
	// 256 KiB window, the server socket's send buffer (4 MiB at most
	// here), the client's 64 KiB: far below 64 MiB.
	t.Logf("the generator stalled after %d KiB", int(last)>>10)
	if last > 12<<20 {
		t.Errorf("with a client not reading, the app got %d MiB through send(): no backpressure", int(last)>>20)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil || n != 64<<20 {
		t.Errorf("read %d bytes (%v), want 64 MiB", n, err)
	}
	for deadline := time.Now().Add(3 * time.Second); sent() != 64<<20; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the app sent %v bytes, want 64 MiB", sent())
		}
	}
}

// --timeout cancels a slow request's task (504; FastAPI's handler sees
// the CancelledError), and does not limit a WebSocket.
func TestFrameworkFastAPITimeout(t *testing.T) {
	needPython(t, "fastapi")
	s := start(t, nil, "asgi_fastapi:app", "--timeout", "1")
	t0 := time.Now()
	code, body := s.get("/slow?s=10")
	if code != 504 || time.Since(t0) > 8*time.Second {
		t.Errorf("GET /slow?s=10 with --timeout 1: %d after %s: %s, want 504 after about 1s", code, time.Since(t0), body)
	}
	poll(t, s, "/events", `{"slow":"cancelled"}`)
	if code, body := s.get("/slow?s=0.1"); code != 200 {
		t.Errorf("GET /slow?s=0.1: %d %s", code, body)
	}
	c := wsDial(t, s, "/ws/echo")
	wsWrite(t, c, websocket.MessageText, "sleep") // 1.5 s, then the echo
	if _, msg := wsRead(t, c); msg != "echo: sleep" {
		t.Errorf("after 1.5 s: %q", msg)
	}
	wsEcho(t, c, websocket.MessageText, "still open", "echo: still open")
}

func TestFrameworkFastAPIError(t *testing.T) {
	needPython(t, "fastapi")
	s := start(t, nil, "asgi_fastapi:app")
	checkError(t, s, "/boom", "RuntimeError: fastapi boom for the test", "/items/1")
}

func TestFrameworkFastAPIWebSocket(t *testing.T) {
	needPython(t, "fastapi")
	s := start(t, nil, "asgi_fastapi:app")
	// accept() with a subprotocol and a header.
	c, res := wsDialOpts(t, s, "/ws/echo", &websocket.DialOptions{Subprotocols: []string{"v2.echo", "v1.echo"}})
	if c.Subprotocol() != "v2.echo" || res.Header.Get("X-Echo") != "yes" {
		t.Errorf("subprotocol %q, x-echo %q: want v2.echo and yes", c.Subprotocol(), res.Header.Get("X-Echo"))
	}
	wsEcho(t, c, websocket.MessageText, "héllo", "echo: héllo")
	wsEcho(t, c, websocket.MessageBinary, "\x00\xff", "echo: \x00\xff")
	wsWrite(t, c, websocket.MessageText, "close")
	wsWantClose(t, c, 4001, "bye")

	// The client closes: the app sees its code.
	c = wsDial(t, s, "/ws/echo")
	wsEcho(t, c, websocket.MessageText, "x", "echo: x")
	if err := c.Close(4010, "client leaves"); err != nil {
		t.Errorf("close: %v", err)
	}
	poll(t, s, "/events", `{"socket":"echo","code":4010}`)

	// Server push while the client says nothing.
	c = wsDial(t, s, "/ws/push?n=4")
	for i := 0; i < 4; i++ {
		_, msg := wsRead(t, c)
		var m map[string]any
		if json.Unmarshal([]byte(msg), &m) != nil || m["push"] != float64(i) {
			t.Errorf("push %d: %q", i, msg)
		}
	}
	c.Close(4002, "")
	poll(t, s, "/events", `{"socket":"push","code":4002}`)
	noTraceback(t, s, 0)
}

// Starlette

func TestFrameworkStarletteHTTP(t *testing.T) {
	needPython(t, "starlette")
	s := start(t, nil, "asgi_starlette:app")
	var got map[string]any
	if code := doJSON(t, s, "GET", "/hello/w%C3%B6rld?upper=1", nil, &got); code != 200 {
		t.Fatalf("status %d: %v", code, got)
	}
	// request.state has what the lifespan yielded (scope["state"]).
	wantJSON(t, "GET /hello", got, map[string]any{"name": "wörld", "greeting": "hello from the lifespan", "upper": true})
	got = nil
	body := map[string]any{"list": []any{1.0, "two"}, "nested": map[string]any{"k": nil}}
	if code := doJSON(t, s, "POST", "/echo", body, &got); code != 200 {
		t.Fatalf("POST /echo: %d %v", code, got)
	}
	wantJSON(t, "POST /echo", got, map[string]any{"got": body})
	if code, _ := s.get("/nowhere"); code != 404 {
		t.Errorf("GET /nowhere: %d, want 404", code)
	}
}

func TestFrameworkStarletteStreaming(t *testing.T) {
	needPython(t, "starlette")
	s := start(t, nil, "asgi_starlette:app")
	// Five lines 50 ms apart: the first arrives well before the last.
	res, err := fwClient.Get(s.url("/stream?n=5"))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(res.Body)
	var at []time.Time
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			break
		}
		at = append(at, time.Now())
		lines = append(lines, l)
	}
	res.Body.Close()
	if strings.Join(lines, "") != "line 0\nline 1\nline 2\nline 3\nline 4\n" {
		t.Fatalf("got %q", lines)
	}
	if d := at[4].Sub(at[0]); d < 100*time.Millisecond {
		t.Errorf("the first and last lines came %s apart, want about 200ms: the response was buffered", d)
	}
}

func TestFrameworkStarletteDisconnect(t *testing.T) {
	needPython(t, "starlette")
	s := start(t, nil, "asgi_starlette:app")

	// A client that leaves mid-stream: Starlette 0.26 sees http.disconnect
	// (its listen_for_disconnect loop) and stops the endless generator.
	res, err := fwClient.Get(s.url("/forever"))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(res.Body)
	for i := 0; i < 3; i++ {
		if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "tick ") {
			t.Fatalf("line %d: %q %v", i, l, err)
		}
	}
	res.Body.Close() // cuts the connection
	poll(t, s, "/events", `"forever_started":1`, `"forever_stopped":1`)

	// request.is_disconnected() turns True once the client has gone (and
	// not before: the receive() after the body waits for a real
	// disconnect).
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url("/longpoll"), nil)
	got := make(chan error, 1)
	go func() {
		res, err := fwClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			err = errors.New("answered: " + string(b))
		}
		got <- err
	}()
	poll(t, s, "/events", `"longpoll_waiting":1`)
	time.Sleep(200 * time.Millisecond)
	poll(t, s, "/events", `"longpoll_left":0`) // still there
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("the long poll: %v, want it cancelled by the client", err)
	}
	poll(t, s, "/events", `"longpoll_left":1`)
	noTraceback(t, s, 0)
}

// noTraceback: nothing the clients did was an error worth a traceback
// (in the log after its first since bytes).
func noTraceback(t *testing.T, s *server, since int) {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // a late error would be logged by now
	if log := s.log.String()[since:]; strings.Contains(log, "Traceback") || strings.Contains(log, "error:") {
		t.Errorf("the log has an error:\n%s", log)
	}
}

func TestFrameworkStarletteLifespan(t *testing.T) {
	needPython(t, "starlette")
	file := filepath.Join(t.TempDir(), "shutdown")
	s := start(t, []string{"STARLETTE_SHUTDOWN_FILE=" + file}, "asgi_starlette:app")
	// A socket open at SIGTERM is closed with 1001 (going away), and the
	// lifespan's shutdown still runs.
	c := wsDial(t, s, "/ws/room")
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, err := c.Read(ctx)
		closed <- err
	}()
	checkShutdownFile(t, s, file, "starlette lifespan ended")
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("the open socket at SIGTERM: %v, want close 1001", err)
	}
}

func TestFrameworkStarletteError(t *testing.T) {
	needPython(t, "starlette")
	s := start(t, nil, "asgi_starlette:app")
	checkError(t, s, "/boom", "ValueError: starlette boom for the test", "/hello/x")
}

func TestFrameworkStarletteWebSocket(t *testing.T) {
	needPython(t, "starlette")
	s := start(t, nil, "asgi_starlette:app")
	c := wsDial(t, s, "/ws/echo")
	wsEcho(t, c, websocket.MessageText, "shout", "SHOUT")
	wsEcho(t, c, websocket.MessageText, strings.Repeat("ab", 100<<10), strings.Repeat("AB", 100<<10)) // 200 KiB
	c.Close(websocket.StatusNormalClosure, "")

	// A room: what one socket sends is pushed to the other, which only
	// reads.
	a := wsDial(t, s, "/ws/room")
	b := wsDial(t, s, "/ws/room")
	poll(t, s, "/events", `"room_joined":2`)
	wsWrite(t, a, websocket.MessageText, "from a")
	if _, msg := wsRead(t, b); msg != "from a" {
		t.Errorf("b got %q, want %q", msg, "from a")
	}
	wsWrite(t, b, websocket.MessageText, "from b")
	if _, msg := wsRead(t, a); msg != "from b" {
		t.Errorf("a got %q, want %q", msg, "from b")
	}
	a.Close(websocket.StatusNormalClosure, "")
	b.CloseNow() // no close handshake: 1006 for the app
	noTraceback(t, s, 0)
}

// Quart

func TestFrameworkQuartHTTP(t *testing.T) {
	needPython(t, "quart")
	s := start(t, nil, "asgi_quart:app")
	var got map[string]any
	if code := doJSON(t, s, "GET", "/users/7?fields=a&fields=b", nil, &got); code != 200 {
		t.Fatalf("status %d: %v", code, got)
	}
	wantJSON(t, "GET /users/7", got, map[string]any{"uid": 7.0, "fields": []any{"a", "b"}, "method": "GET"})
	if code := doJSON(t, s, "GET", "/users/x", nil, nil); code != 404 {
		t.Errorf("GET /users/x: %d, want 404", code)
	}
	got = nil
	if code := doJSON(t, s, "POST", "/json", map[string]any{"b": 2.0, "a": "1"}, &got); code != 201 {
		t.Fatalf("POST /json: %d %v", code, got)
	}
	wantJSON(t, "POST /json", got, map[string]any{"got": map[string]any{"b": 2.0, "a": "1"}, "keys": []any{"a", "b"}})
	got = nil
	doJSON(t, s, "GET", "/serving", nil, &got)
	if got["before_serving"] != 1.0 {
		t.Errorf("before_serving ran %v times before serving, want 1", got["before_serving"])
	}
	for _, chunked := range []bool{false, true} {
		got := upload(t, s, "/upload", 200<<10, chunked)
		if n, _ := got["parts"].(float64); n < 2 {
			t.Errorf("chunked %v: the body came in %v parts, want several", chunked, got["parts"])
		}
	}
}

func TestFrameworkQuartStreaming(t *testing.T) {
	needPython(t, "quart")
	s := start(t, nil, "asgi_quart:app")
	checkStreamedBeforeEnd(t, s, "/stream", "/release",
		[]string{"after release 0\n", "after release 1\n", "after release 2\n"})
}

func TestFrameworkQuartLifespan(t *testing.T) {
	needPython(t, "quart")
	file := filepath.Join(t.TempDir(), "shutdown")
	s := start(t, []string{"QUART_SHUTDOWN_FILE=" + file}, "asgi_quart:app")
	checkShutdownFile(t, s, file, "after_serving ran")
}

func TestFrameworkQuartError(t *testing.T) {
	needPython(t, "quart")
	s := start(t, nil, "asgi_quart:app")
	checkError(t, s, "/boom", "KeyError: 'quart boom for the test'", "/serving")
}

func TestFrameworkQuartWebSocket(t *testing.T) {
	needPython(t, "quart")
	s := start(t, nil, "asgi_quart:app")
	c := wsDial(t, s, "/ws/echo")
	wsEcho(t, c, websocket.MessageText, "one", "quart: one")
	wsEcho(t, c, websocket.MessageText, "two", "quart: two")
	wsWrite(t, c, websocket.MessageText, "close")
	wsWantClose(t, c, 4003, "quart bye")

	c = wsDial(t, s, "/ws/push?n=3")
	for i := 0; i < 3; i++ {
		_, msg := wsRead(t, c)
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(msg)); buf.String() != fmt.Sprintf(`{"push":%d}`, i) {
			t.Errorf("push %d: %q", i, msg)
		}
	}
	wsWantClose(t, c, websocket.StatusNormalClosure, "done")

	// abort(401) before accepting: Quart's HTTP response, through the
	// websocket.http.response extension.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, res, err := websocket.Dial(ctx, "ws://"+s.addr+"/ws/private", nil)
	if err == nil || res == nil || res.StatusCode != 401 {
		t.Errorf("dial /ws/private without the token: %v, %v: want a 401 response", err, res)
	} else if b, _ := io.ReadAll(res.Body); !strings.Contains(string(b), "Unauthorized") {
		t.Errorf("the 401's body: %q, want Quart's page", b)
	}
	c = wsDial(t, s, "/ws/private?token=secret")
	if _, msg := wsRead(t, c); msg != "welcome" {
		t.Errorf("/ws/private with the token: %q", msg)
	}

	// A client that leaves mid-conversation: Quart cancels the handler,
	// nothing to report.
	c = wsDial(t, s, "/ws/echo")
	wsEcho(t, c, websocket.MessageText, "three", "quart: three")
	c.Close(websocket.StatusGoingAway, "")
	noTraceback(t, s, 0)
}

// Django and Channels

func TestFrameworkDjangoViews(t *testing.T) {
	needPython(t, "django", "channels")
	s := start(t, nil, "django_async.asgi:application")
	// Channels' ProtocolTypeRouter has no lifespan: served anyway, said so.
	s.waitLog(5*time.Second, "lifespan", "No application configured for scope type 'lifespan'")

	var got map[string]any
	if code := doJSON(t, s, "GET", "/async/21?q=x", nil, &got); code != 200 {
		t.Fatalf("GET /async/21: %d %v", code, got)
	}
	// An async view runs on hornbeam's event loop...
	wantJSON(t, "async view", got, map[string]any{"n": 21.0, "double": 42.0, "q": "x", "in_loop": true})
	loopThread := got["thread"]
	got = nil
	if code := doJSON(t, s, "GET", "/sync/abc", nil, &got); code != 200 {
		t.Fatalf("GET /sync/abc: %d %v", code, got)
	}
	// ...a sync one in asgiref's thread (sync_to_async), off the loop.
	wantJSON(t, "sync view", got, map[string]any{"word": "abc", "upper": "ABC", "in_loop": false})
	if got["thread"] == loopThread {
		t.Errorf("the sync view ran on the loop's thread %v", loopThread)
	}
	got = nil
	if code := doJSON(t, s, "POST", "/json", map[string]any{"k": []any{1.0}}, &got); code != 201 {
		t.Fatalf("POST /json: %d %v", code, got)
	}
	wantJSON(t, "POST /json", got, map[string]any{"got": map[string]any{"k": []any{1.0}}, "content_type": "application/json"})
	for _, chunked := range []bool{false, true} {
		upload(t, s, "/upload", 300<<10+1, chunked)
	}
	checkError(t, s, "/boom", "ZeroDivisionError: django boom for the test", "/sync/ok")
}

func TestFrameworkDjangoChannels(t *testing.T) {
	needPython(t, "django", "channels")
	s := start(t, nil, "django_async.asgi:application")

	// A sync WebsocketConsumer (run in asgiref's thread).
	c, _ := wsDialOpts(t, s, "/ws/echo/", &websocket.DialOptions{Subprotocols: []string{"chat.v1", "chat.v2"}})
	if c.Subprotocol() != "chat.v2" {
		t.Errorf("subprotocol %q, want chat.v2", c.Subprotocol())
	}
	wsEcho(t, c, websocket.MessageText, "ping", "sync echo: ping")
	wsEcho(t, c, websocket.MessageBinary, "\x01\x02", "sync echo: \x01\x02")
	wsWrite(t, c, websocket.MessageText, "close")
	wsWantClose(t, c, 4005, "")

	// An AsyncWebsocketConsumer room: group_send through the in-memory
	// layer reaches every member.
	a := wsDial(t, s, "/ws/chat/lobby/")
	b := wsDial(t, s, "/ws/chat/lobby/")
	other := wsDial(t, s, "/ws/chat/elsewhere/")
	wsWrite(t, a, websocket.MessageText, "hi all")
	for name, c := range map[string]*websocket.Conn{"a": a, "b": b} {
		if _, msg := wsRead(t, c); msg != "hi all" {
			t.Errorf("%s got %q, want %q", name, msg, "hi all")
		}
	}
	// A push from an HTTP view to sockets whose clients say nothing.
	if code, body := s.get("/notify/lobby?text=from+http"); code != 200 {
		t.Fatalf("GET /notify/lobby: %d %s", code, body)
	}
	for name, c := range map[string]*websocket.Conn{"a": a, "b": b} {
		if _, msg := wsRead(t, c); msg != "notice: from http" {
			t.Errorf("%s got %q, want %q", name, msg, "notice: from http")
		}
	}
	// The other room got nothing of it.
	wsWrite(t, other, websocket.MessageText, "only here")
	if _, msg := wsRead(t, other); msg != "only here" {
		t.Errorf("the other room's socket got %q first, want its own %q", msg, "only here")
	}
	// Clients leaving (with a close, or cutting the connection) are not
	// errors; the room goes on for those left.
	mark := len(s.log.String()) // after the lifespan's warning
	a.Close(websocket.StatusNormalClosure, "")
	b.CloseNow()
	noTraceback(t, s, mark)
	c = wsDial(t, s, "/ws/chat/lobby/")
	wsEcho(t, c, websocket.MessageText, "anyone?", "anyone?")

	// A consumer that closes in connect() refuses the handshake: 403; a
	// path with no route makes Channels raise: 403 too, and the error is
	// logged.
	wsRefused(t, s, "/ws/deny/", 403)
	wsRefused(t, s, "/ws/nowhere/", 403)
	s.waitLog(5*time.Second, "No route found for path 'ws/nowhere/'")
}

// Python clients: httpx and websockets against the servers.

func TestFrameworkPythonClients(t *testing.T) {
	needPython(t, "fastapi", "httpx", "websockets")
	s := start(t, nil, "asgi_fastapi:app")
	out := pyClient(t, s, `
import asyncio, sys, httpx, websockets
base = "http://" + sys.argv[1]
r = httpx.get(base + "/items/5", params={"q": "py"})
print("get", r.status_code, r.json())
r = httpx.post(base + "/items", json={"name": "x", "price": 1.5})
print("post", r.status_code, r.json()["total"])
big = bytes(range(256)) * 1024
r = httpx.post(base + "/upload", content=iter([big[:100000], big[100000:]]))
print("upload", r.json()["length"])
with httpx.stream("GET", base + "/stream", params={"key": "py"}) as r:
    it = r.iter_lines()
    print("first", next(it))
    httpx.get(base + "/release", params={"key": "py"})
    print("rest", "|".join(l.rstrip("\n") for l in it))

async def ws():
    async with websockets.connect("ws://" + sys.argv[1] + "/ws/echo") as c:
        await c.send("from websockets")
        print("ws", await c.recv())
        await c.send("close")
        try:
            await c.recv()
        except websockets.ConnectionClosed as e:
            print("closed", e.rcvd.code, e.rcvd.reason)
asyncio.run(ws())
`)
	for _, want := range []string{
		"get 200 {'item_id': 5, 'q': 'py', 'limit': 10}",
		"post 201 1.8",
		"upload 262144",
		"first first",
		"rest after release 0|after release 1|after release 2",
		"ws echo: from websockets",
		"closed 4001 bye",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("python client: no %q in:\n%s", want, out)
		}
	}
}

func TestFrameworkPythonClientsChannels(t *testing.T) {
	needPython(t, "django", "channels", "websockets")
	s := start(t, nil, "django_async.asgi:application")
	out := pyClient(t, s, `
import asyncio, sys, websockets
async def main():
    url = "ws://" + sys.argv[1] + "/ws/chat/py/"
    async with websockets.connect(url) as a, websockets.connect(url) as b:
        await a.send("hello room")
        print("a", await asyncio.wait_for(a.recv(), 5))
        print("b", await asyncio.wait_for(b.recv(), 5))
asyncio.run(main())
`)
	if !strings.Contains(out, "a hello room\n") || !strings.Contains(out, "b hello room\n") {
		t.Errorf("python websockets client: %s", out)
	}
}
