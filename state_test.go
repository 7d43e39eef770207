package hornbeam_test

// Tests of the shared state as applications see it: hornbeam.state_* (and
// hornbeam_erlang) in real workers, the in-process fallback outside a
// worker, the Go API (Server.StateGet/StateSet/StateIncr), pool_stats() and
// the --stats-bind endpoint. The apps are testdata/apps/st_*.py.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam"
	"github.com/hornbeam-go/hornbeam/pymarshal"
	"github.com/hornbeam-go/hornbeam/state"
)

// fetch GETs url and returns the status, the body and the response headers.
func fetch(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 120 * time.Second}).Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// getJSON GETs url, wants a 200, and decodes the JSON body into v. It is
// safe to call from any goroutine (it fails the test with Errorf).
func getJSON(t *testing.T, url string, v any) bool {
	t.Helper()
	status, body, _ := fetch(t, url)
	if status != 200 {
		t.Errorf("GET %s: status %d, body:\n%s", url, status, body)
		return false
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Errorf("GET %s: %v in body:\n%s", url, err, body)
		return false
	}
	return true
}

// parallel runs f(0..n-1) in n goroutines and waits for them.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

// pyReply is what most st_state.py routes answer.
type pyReply struct {
	PID  int    `json:"pid"`
	Type string `json:"type"`
	Repr string `json:"repr"`
	Last int64  `json:"last"`
}

func pyGet(t *testing.T, srv *testServer, key string) pyReply {
	t.Helper()
	var r pyReply
	getJSON(t, srv.URL+"/get?key="+url.QueryEscape(key), &r)
	return r
}

func goGet(t *testing.T, srv *testServer, key string) (any, bool) {
	t.Helper()
	v, ok, err := srv.StateGet(key)
	if err != nil {
		t.Fatalf("StateGet(%q): %v", key, err)
	}
	return v, ok
}

// pythonDir is the directory holding the hornbeam Python package.
func pythonDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "python")
}

func TestStateFlaskGuide(t *testing.T) {
	srv := start(t, "st_flask_guide:application", hornbeam.Options{Workers: 4})

	// Page views: every request gets the next number, whichever worker runs it.
	const clients, perClient = 8, 25
	const total = clients * perClient
	var mu sync.Mutex
	var views []int
	pids := map[string]int{}
	parallel(clients, func(int) {
		for range perClient {
			status, body, h := fetch(t, srv.URL+"/")
			n, err := strconv.Atoi(strings.TrimPrefix(body, "Page views: "))
			if status != 200 || err != nil || !strings.HasPrefix(body, "Page views: ") {
				t.Errorf("GET /: %d %q", status, body)
				return
			}
			mu.Lock()
			views = append(views, n)
			pids[h.Get("X-Worker-Pid")]++
			mu.Unlock()
		}
	})
	sort.Ints(views)
	for i, n := range views {
		if n != i+1 {
			t.Fatalf("page views over %d requests are not exactly 1..%d: sorted, #%d is %d (all: %v)", total, total, i+1, n, views)
		}
	}
	if len(views) != total {
		t.Fatalf("got %d page views, want %d", len(views), total)
	}
	if len(pids) < 2 {
		t.Errorf("all %d requests were served by one worker (%v): the counter was not shown to be shared", total, pids)
	}
	if v, _ := goGet(t, srv, "page_views"); v != int64(total) {
		t.Errorf("StateGet(page_views) = %#v, want int64(%d)", v, total)
	}

	// /api/data: computed once, then served from the shared cache by every worker.
	status, first, _ := fetch(t, srv.URL+"/api/data")
	if status != 200 {
		t.Fatalf("GET /api/data: %d %s", status, first)
	}
	var data struct {
		Rows       []int `json:"rows"`
		ComputedBy int   `json:"computed_by"`
	}
	if err := json.Unmarshal([]byte(first), &data); err != nil || !slices.Equal(data.Rows, []int{1, 2, 3}) || data.ComputedBy == 0 {
		t.Fatalf("GET /api/data = %s (%v), want rows [1,2,3] and computed_by", first, err)
	}
	cachePids := map[string]bool{}
	parallel(clients, func(int) {
		for range 5 {
			_, body, h := fetch(t, srv.URL+"/api/data")
			if body != first {
				t.Errorf("GET /api/data = %s, want the cached %s", body, first)
			}
			mu.Lock()
			cachePids[h.Get("X-Worker-Pid")] = true
			mu.Unlock()
		}
	})
	if len(cachePids) < 2 {
		t.Errorf("the cached /api/data was only served by %v", cachePids)
	}
	if v, _ := goGet(t, srv, "expensive_calls"); v != int64(1) {
		t.Errorf("expensive_computation ran %v times, want 1", v)
	}
	v, ok := goGet(t, srv, "api_cache")
	rows, _ := v.(pymarshal.Dict).Get("rows")
	if !ok || !reflect.DeepEqual(rows, pymarshal.List{int64(1), int64(2), int64(3)}) {
		t.Errorf("StateGet(api_cache) = %#v, want a dict with rows [1, 2, 3]", v)
	}
}

func TestStateTypeRoundTrip(t *testing.T) {
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 2})
	var set struct{ PID, Stored int }
	if !getJSON(t, srv.URL+"/roundtrip/set", &set) || set.Stored < 150 {
		t.Fatalf("/roundtrip/set stored only %d values", set.Stored)
	}
	// Read back in other requests; holding each worker for a moment makes
	// the concurrent checks land on both workers.
	var mu sync.Mutex
	otherWorker := false
	for try := 0; try < 5 && !otherWorker; try++ {
		parallel(4, func(int) {
			var r struct {
				PID      int      `json:"pid"`
				Failures []string `json:"failures"`
				Checked  int      `json:"checked"`
			}
			getJSON(t, srv.URL+"/roundtrip/check?hold=0.2", &r)
			if r.Checked != set.Stored {
				t.Errorf("checked %d values, stored %d", r.Checked, set.Stored)
			}
			for _, f := range r.Failures {
				t.Errorf("worker %d (stored by %d): %s", r.PID, set.PID, f)
			}
			mu.Lock()
			otherWorker = otherWorker || (r.PID != 0 && r.PID != set.PID)
			mu.Unlock()
		})
	}
	if !otherWorker {
		t.Errorf("no check ran in a worker other than the one (%d) that stored the values", set.PID)
	}
}

// typeErrorCases are the st_state.TYPE_ERRORS cases and the type name the
// TypeError must mention.
var typeErrorCases = []struct{ name, typ string }{
	{"object", "object"},
	{"bytearray", "bytearray"},
	{"dict_subclass", "MyDict"},
	{"ordered_dict", "OrderedDict"},
	{"int_subclass", "MyInt"},
	{"str_subclass", "MyStr"},
	{"namedtuple", "Point"},
	{"complex", "complex"},
	{"ellipsis", "ellipsis"},
	{"memoryview", "memoryview"},
	{"function", "builtin_function_or_method"},
	{"object_deep_in_list", "object"},
	{"bytearray_deep_in_list", "bytearray"},
	{"object_in_set", "Hashable"},
	{"object_as_dict_key", "Hashable"},
	{"dict_subclass_in_tuple", "MyDict"},
}

type typeErrorResult struct {
	Exc   *string `json:"exc"`
	Msg   string  `json:"msg"`
	After string  `json:"after"`
}

func checkTypeError(t *testing.T, typ string, r typeErrorResult) {
	t.Helper()
	if r.Exc == nil || *r.Exc != "TypeError" {
		t.Errorf("state_set raised %v (%q), want TypeError", r.Exc, r.Msg)
	}
	if !strings.Contains(r.Msg, " "+typ+" ") {
		t.Errorf("the TypeError %q does not name the type %s", r.Msg, typ)
	}
	if r.After != "'known'" {
		t.Errorf("after the failed state_set the key holds %s, want 'known' (unchanged)", r.After)
	}
}

func TestStateTypeErrors(t *testing.T) {
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 2})
	for _, c := range typeErrorCases {
		t.Run(c.name, func(t *testing.T) {
			var r typeErrorResult
			getJSON(t, srv.URL+"/typeerror?case="+c.name, &r)
			checkTypeError(t, c.typ, r)
		})
	}
}

// stateAPICases are the st_state.CASES checks and the repr() each must
// return, in a worker and outside one alike.
var stateAPICases = []struct{ name, want string }{
	// state_decr, and incr with negative deltas; absent keys start at 0.
	{"decr", "[-1, -6, 4, 6, 6]"},
	// delete says whether the key existed, for str and tuple keys.
	{"delete", "[True, False, None, False, True, False]"},
	// get_multi keeps the keys' types and gives None for the missing ones.
	{"get_multi", "{'gm:a': 1, b'gm:b': 'two', ('gm', 3): [3], 'gm:missing': None, 404404: None, ('gm', 'missing'): None}"},
	// keys(prefix) lists the matching str keys, sorted; a non-str prefix is refused.
	{"keys_prefix", "[['kp:user:1', 'kp:user:2'], [], 'TypeError']"},
	// keys() lists keys of every type in their original type.
	{"keys_all", `[('bytes', "b'ka:b'"), ('int', '-777777'), ('int', '777777'), ('str', "'\\x00ka'"), ('str', "'ka:s'"), ('tuple', "('ka', ('nested', 2))"), ('tuple', "('ka', 1, b'x')")]`},
	// keys("") is a prefix like any other: str keys only.
	{"keys_empty_prefix", `[('str', "'ke:s'")]`},
	// A str key starting with NUL is a str key for keys(prefix) too.
	{"keys_nul_prefix", `['\x00kn']`},
	// The short names exist in hornbeam and hornbeam_erlang and are the same functions.
	{"aliases", "[True, True, [2, 5, 4, 2, 2, 2, True, False]]"},
	// incr on a non-int value: TypeError; out of int64: OverflowError; bad
	// deltas refused; the value unchanged every time.
	{"incr_errors", "[('ie:str', 'TypeError', True), ('ie:float', 'TypeError', True), ('ie:big', 'TypeError', True), ('ie:list', 'TypeError', True), ('ie:max', 'OverflowError', True), ('ie:min', 'OverflowError', True), ('ie:fdelta', 'TypeError', True), ('ie:bdelta', 'TypeError', True), ('ie:hugedelta', 'ValueError', True)]"},
	// Keys must be str, bytes, int or tuples of those (not bool, float, subclasses).
	{"bad_keys", `[('1.5', 'TypeError'), ('None', 'TypeError'), ('True', 'TypeError'), ('[1]', 'TypeError'), ("('a', 1.5)", 'TypeError'), ("('a', [1])", 'TypeError'), ("('a', True)", 'TypeError'), ('frozenset({1})', 'TypeError'), ("bytearray(b'k')", 'TypeError'), ("'k'", 'TypeError')]`},
	// ttl <= 0 expires at once; a bad ttl is a TypeError and stores nothing.
	{"ttl_edges", "[None, None, 'v', 'v', 'TypeError', 'TypeError', None]"},
}

func TestStateAPI(t *testing.T) {
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 2})
	for _, c := range stateAPICases {
		t.Run(c.name, func(t *testing.T) {
			var r pyReply
			getJSON(t, srv.URL+"/api?case="+c.name, &r)
			if r.Repr != c.want {
				t.Errorf("in a worker:\n got %s\nwant %s", r.Repr, c.want)
			}
		})
	}
}

func TestStateTTL(t *testing.T) {
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 2})
	cases := []struct {
		name     string
		set      func(key string) // stores key with a 0.3 s TTL
		now      string           // repr of the value right after set
		goNow    any              // the same, read from Go
		expires  bool
		minDelay time.Duration // it must not expire before this
	}{
		{"state_set", func(key string) { fetch(t, srv.URL+"/set?value=v&ttl=0.3&key="+key) }, "'v'", "v", true, 300 * time.Millisecond},
		{"incr keeps the ttl", func(key string) {
			var r struct {
				AfterIncr int64 `json:"after_incr"`
			}
			getJSON(t, srv.URL+"/ttl_incr?ttl=0.3&key="+key, &r)
			if r.AfterIncr != 6 {
				t.Errorf("state_incr on 5 gave %d", r.AfterIncr)
			}
		}, "6", int64(6), true, 300 * time.Millisecond},
		{"StateSet from Go", func(key string) {
			if err := srv.StateSet(key, "go", 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}, "'go'", "go", true, 300 * time.Millisecond},
		{"set without ttl drops it", func(key string) { fetch(t, srv.URL+"/ttl_reset?ttl=0.3&key="+key) }, "'new'", "new", false, 0},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := fmt.Sprintf("ttl:%d", i)
			t0 := time.Now()
			c.set(key)
			if r := pyGet(t, srv, key); r.Repr != c.now {
				t.Fatalf("right after setting, Python sees %s, want %s", r.Repr, c.now)
			}
			if v, ok := goGet(t, srv, key); !ok || !reflect.DeepEqual(v, c.goNow) {
				t.Fatalf("right after setting, Go sees %#v, %v; want %#v", v, ok, c.goNow)
			}
			if !c.expires {
				time.Sleep(600 * time.Millisecond)
				if r := pyGet(t, srv, key); r.Repr != c.now {
					t.Errorf("after 0.6 s Python sees %s, want %s still", r.Repr, c.now)
				}
				return
			}
			waitFor(t, 2*time.Second, key+" to expire for Python", func() bool { return pyGet(t, srv, key).Repr == "None" })
			if d := time.Since(t0); d < c.minDelay {
				t.Errorf("expired after %s, before its ttl", d)
			}
			if v, ok := goGet(t, srv, key); ok {
				t.Errorf("expired for Python, but Go still sees %#v", v)
			}
			for _, k := range srv.State().Keys("ttl:") {
				if k == key {
					t.Errorf("the expired key is still listed by Keys")
				}
			}
		})
	}
}

func TestStateAtomicIncr(t *testing.T) {
	const workers, n = 8, 10000
	srv := start(t, "st_state:application", hornbeam.Options{Workers: workers, Timeout: 5 * time.Minute})
	var mu sync.Mutex
	pids := map[int]bool{}
	lasts := map[int64]bool{}
	parallel(workers, func(int) {
		var r pyReply
		getJSON(t, srv.URL+fmt.Sprintf("/incr?key=atomic&n=%d", n), &r)
		mu.Lock()
		defer mu.Unlock()
		pids[r.PID] = true
		if lasts[r.Last] {
			t.Errorf("two requests ended on the same count %d", r.Last)
		}
		lasts[r.Last] = true
	})
	if v, _ := goGet(t, srv, "atomic"); v != int64(workers*n) {
		t.Errorf("from Go: %d workers x %d state_incr = %#v, want %d", workers, n, v, workers*n)
	}
	if r := pyGet(t, srv, "atomic"); r.Repr != strconv.Itoa(workers*n) || r.Type != "int" {
		t.Errorf("from Python: %s (%s), want %d", r.Repr, r.Type, workers*n)
	}
	if !lasts[workers*n] {
		t.Errorf("no request saw the final count %d: %v", workers*n, lasts)
	}
	if len(pids) < 2 {
		t.Errorf("the increments ran in only %d worker(s): %v", len(pids), pids)
	}
}

// outsideScript runs in a plain python3, without a server: the hornbeam
// functions then use the in-process store.
const outsideScript = `
import json, time
import hornbeam, hornbeam_erlang
from hornbeam_erlang import state_get, state_set, state_incr
out = {}
state_set("k", {"a": (1, b"x")})
out["get"] = repr(hornbeam.state_get("k"))
out["incr"] = [state_incr("n"), hornbeam.incr("n", 5), hornbeam_erlang.decr("n"), hornbeam.state_get("n")]
state_set("t", "v", ttl=0.2)
out["ttl_now"] = repr(state_get("t"))
time.sleep(0.4)
out["ttl_later"] = repr(state_get("t"))
try:
    state_set("k", [1, object()])
    out["typeerror"] = "no error"
except TypeError as e:
    out["typeerror"] = str(e)
out["after_typeerror"] = repr(state_get("k"))
out["stats"] = hornbeam.pool_stats()

import st_state
out["cases"] = {n: repr(f()) for n, f in st_state.CASES.items()}
out["type_errors"] = {n: st_state.type_error_case(n) for n in st_state.TYPE_ERRORS}
st_state.roundtrip_set()
out["roundtrip"] = st_state.roundtrip_check()
print(json.dumps(out))
`

func TestStateOutsideWorker(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		t.Skip("Debian's /usr/bin/python3 is not installed")
	}
	cmd := exec.Command(python, "-c", outsideScript)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pythonDir()+string(os.PathListSeparator)+appsDir(t))
	b, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%v:\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var out struct {
		Get            string                     `json:"get"`
		Incr           []int                      `json:"incr"`
		TTLNow         string                     `json:"ttl_now"`
		TTLLater       string                     `json:"ttl_later"`
		TypeError      string                     `json:"typeerror"`
		AfterTypeError string                     `json:"after_typeerror"`
		Stats          map[string]any             `json:"stats"`
		Cases          map[string]string          `json:"cases"`
		TypeErrors     map[string]typeErrorResult `json:"type_errors"`
		Roundtrip      []json.RawMessage          `json:"roundtrip"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%v in output:\n%s", err, b)
	}
	if out.Get != "{'a': (1, b'x')}" {
		t.Errorf("get = %s", out.Get)
	}
	if !slices.Equal(out.Incr, []int{1, 6, 5, 5}) {
		t.Errorf("incr, incr 5, decr, get = %v, want [1 6 5 5]", out.Incr)
	}
	if out.TTLNow != "'v'" || out.TTLLater != "None" {
		t.Errorf("ttl=0.2: at once %s, after 0.4 s %s; want 'v', None", out.TTLNow, out.TTLLater)
	}
	if !strings.Contains(out.TypeError, "cannot store a object") || out.AfterTypeError != "{'a': (1, b'x')}" {
		t.Errorf("storing [1, object()]: %q, then the key holds %s", out.TypeError, out.AfterTypeError)
	}
	if out.Stats["local"] != true {
		t.Errorf("pool_stats() = %v, want the in-process store's {'local': True, ...}", out.Stats)
	}
	// The in-process store behaves like the server's: same table as TestStateAPI.
	for _, c := range stateAPICases {
		t.Run("api/"+c.name, func(t *testing.T) {
			if got := out.Cases[c.name]; got != c.want {
				t.Errorf("outside a worker:\n got %s\nwant %s", got, c.want)
			}
		})
	}
	for _, c := range typeErrorCases {
		t.Run("typeerror/"+c.name, func(t *testing.T) { checkTypeError(t, c.typ, out.TypeErrors[c.name]) })
	}
	if len(out.Roundtrip) != 2 || string(out.Roundtrip[0]) != "[]" {
		t.Errorf("type round trip in the in-process store: %s", out.Roundtrip)
	}
}

func TestStateGoAPI(t *testing.T) {
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 2})
	big100 := new(big.Int).Lsh(big.NewInt(1), 100)

	t.Run("Go to Python", func(t *testing.T) {
		cases := []struct {
			name     string
			v        any
			typ, rep string
		}{
			{"str", "hello", "str", "'hello'"},
			{"unicode", "héllo 日本", "str", "'héllo 日本'"},
			{"int", 42, "int", "42"},
			{"int64", int64(-7), "int", "-7"},
			{"bigint", big100, "int", "1267650600228229401496703205376"},
			{"float", 2.5, "float", "2.5"},
			{"bool", true, "bool", "True"},
			{"bytes", []byte{0, 255}, "bytes", `b'\x00\xff'`},
			{"list", []any{1, "a", nil}, "list", "[1, 'a', None]"},
			{"tuple", pymarshal.Tuple{1, "a"}, "tuple", "(1, 'a')"},
			{"set", pymarshal.Set{int64(3)}, "set", "{3}"},
			{"map", map[string]any{"s": "x", "n": 1, "l": []any{1, "a"}, "b": []byte("z"), "none": nil},
				"dict", "{'b': b'z', 'l': [1, 'a'], 'n': 1, 'none': None, 's': 'x'}"},
			{"dict", pymarshal.Dict{{Key: int64(1), Value: "one"}, {Key: pymarshal.Tuple{"a"}, Value: 2.0}},
				"dict", "{1: 'one', ('a',): 2.0}"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				key := "from_go:" + c.name
				if err := srv.StateSet(key, c.v, 0); err != nil {
					t.Fatalf("StateSet(%#v): %v", c.v, err)
				}
				if r := pyGet(t, srv, key); r.Type != c.typ || r.Repr != c.rep {
					t.Errorf("Python reads %s (%s), want %s (%s)", r.Repr, r.Type, c.rep, c.typ)
				}
			})
		}
	})

	t.Run("Python to Go", func(t *testing.T) {
		fetch(t, srv.URL+"/py_values")
		cases := []struct {
			key  string
			want any
		}{
			{"py:int", int64(42)},
			{"py:str", "héllo"},
			{"py:bytes", []byte{0, 255}},
			{"py:float", 1.5},
			{"py:none", nil},
			{"py:bool", true},
			{"py:nested", pymarshal.Dict{
				{Key: "a", Value: pymarshal.List{int64(1), pymarshal.Tuple{int64(2), "x"}}},
				{Key: "s", Value: pymarshal.Set{int64(3)}},
			}},
		}
		for _, c := range cases {
			if v, ok := goGet(t, srv, c.key); !ok || !reflect.DeepEqual(v, c.want) {
				t.Errorf("StateGet(%q) = %#v, %v; want %#v", c.key, v, ok, c.want)
			}
		}
		if v, _ := goGet(t, srv, "py:big"); func() bool { b, ok := v.(*big.Int); return !ok || b.Cmp(big100) != 0 }() {
			t.Errorf("StateGet(py:big) = %#v, want 2**100", v)
		}
	})

	t.Run("one counter", func(t *testing.T) {
		steps := []struct {
			op   string // "go" (StateIncr by delta) or "py" (state_incr)
			d    int64
			want int64
		}{{"go", 5, 5}, {"py", 1, 6}, {"go", 10, 16}, {"py", 1, 17}, {"go", -20, -3}}
		for _, s := range steps {
			var got int64
			if s.op == "go" {
				var err error
				if got, err = srv.StateIncr("shared", s.d); err != nil {
					t.Fatal(err)
				}
			} else {
				var r pyReply
				getJSON(t, srv.URL+"/incr?key=shared", &r)
				got = r.Last
			}
			if got != s.want {
				t.Fatalf("%s incr by %d: %d, want %d", s.op, s.d, got, s.want)
			}
		}
		if r := pyGet(t, srv, "shared"); r.Repr != "-3" || r.Type != "int" {
			t.Errorf("Python reads %s (%s), want -3", r.Repr, r.Type)
		}
		if _, err := srv.StateIncr("from_go:str", 1); !errors.Is(err, state.ErrNotInteger) {
			t.Errorf("StateIncr on a str value: %v, want ErrNotInteger", err)
		}
		if r := pyGet(t, srv, "from_go:str"); r.Repr != "'hello'" {
			t.Errorf("after the failed StateIncr the value is %s", r.Repr)
		}
	})
}

func TestStatePoolStats(t *testing.T) {
	const workers = 3
	srv := start(t, "st_state:application", hornbeam.Options{Workers: workers})
	srv.StateSet("ps:a", "x", 0)
	srv.StateIncr("ps:b", 1)
	var r struct {
		PID   int `json:"pid"`
		Stats struct {
			Workers []struct {
				PID      *int    `json:"pid"`
				State    *string `json:"state"`
				Requests *int    `json:"requests"`
			} `json:"workers"`
			StateKeys *int `json:"state_keys"`
		} `json:"stats"`
	}
	if !getJSON(t, srv.URL+"/pool_stats", &r) {
		return
	}
	if len(r.Stats.Workers) != workers {
		t.Fatalf("pool_stats() lists %d workers, want %d", len(r.Stats.Workers), workers)
	}
	self := false
	for _, w := range r.Stats.Workers {
		if w.PID == nil || *w.PID <= 0 || w.State == nil || w.Requests == nil {
			t.Errorf("worker entry without pid, state or requests")
			continue
		}
		if *w.PID == r.PID {
			self = true
			if *w.State != "busy" {
				t.Errorf("the worker calling pool_stats() is %q, want busy", *w.State)
			}
		}
	}
	if !self {
		t.Errorf("the calling worker %d is not in pool_stats()", r.PID)
	}
	if r.Stats.StateKeys == nil || *r.Stats.StateKeys != 2 {
		t.Errorf("pool_stats()['state_keys'] = %v, want 2", r.Stats.StateKeys)
	}
}

// metricLine is a Prometheus sample line: name, optional labels, value.
var metricLine = regexp.MustCompile(`^([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? ([0-9.e+-]+|\+Inf|-Inf|NaN)$`)

func TestStateStatsEndpoint(t *testing.T) {
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 2, StatsBind: "127.0.0.1:0"})
	statsURL := "http://" + srv.StatsAddr().String()
	srv.StateSet("stats:k", "some value", 0)
	const ok200 = 5
	for range ok200 {
		if status, _ := get(t, srv.URL+"/get?key=x"); status != 200 {
			t.Fatalf("GET /get: %d", status)
		}
	}
	if status, _ := get(t, srv.URL+"/nope"); status != 404 {
		t.Fatalf("GET /nope: %d", status)
	}

	type worker struct {
		PID               int     `json:"pid"`
		State             string  `json:"state"`
		Requests          *int    `json:"requests"`
		RSSBytes          int64   `json:"rss_bytes"`
		Restarts          *int    `json:"restarts"`
		Current           string  `json:"current"`
		CurrentAgeSeconds float64 `json:"current_age_seconds"`
	}
	type stats struct {
		Workers    []worker          `json:"workers"`
		QueueDepth *int              `json:"queue_depth"`
		Status     map[string]uint64 `json:"status"`
		Requests   uint64            `json:"requests"`
		Latency    struct {
			Buckets []struct {
				LE    float64 `json:"le"`
				Count uint64  `json:"count"`
			} `json:"buckets"`
			Count uint64 `json:"count"`
		} `json:"latency"`
		StateKeys  *int   `json:"state_keys"`
		StateBytes *int64 `json:"state_bytes"`
	}
	// The last response can reach this client before the server has
	// counted it (an embedded worker reports a request as it ends, and its
	// response is flushed first): poll briefly for the count.
	var st stats
	deadline := time.Now().Add(2 * time.Second)
	for getJSON(t, statsURL+"/stats", &st) && st.Requests < ok200+1 && time.Now().Before(deadline) {
		st = stats{}
		time.Sleep(time.Millisecond)
	}
	if len(st.Workers) != 2 {
		t.Errorf("/stats lists %d workers, want 2", len(st.Workers))
	}
	served := 0
	for _, w := range st.Workers {
		if w.PID <= 0 || (w.State != "idle" && w.State != "busy") || w.Requests == nil || w.RSSBytes <= 0 || w.Restarts == nil {
			t.Errorf("bad worker entry %+v", w)
			continue
		}
		served += *w.Requests
	}
	if served != ok200+1 {
		t.Errorf("workers served %d requests, want %d", served, ok200+1)
	}
	if st.QueueDepth == nil || *st.QueueDepth != 0 {
		t.Errorf("queue_depth = %v, want 0", st.QueueDepth)
	}
	if st.Status["2xx"] != ok200 || st.Status["4xx"] != 1 || st.Requests != ok200+1 {
		t.Errorf("status = %v, requests = %d; want 2xx %d, 4xx 1", st.Status, st.Requests, ok200)
	}
	if len(st.Latency.Buckets) == 0 || st.Latency.Count != ok200+1 {
		t.Errorf("latency has %d buckets, count %d; want count %d", len(st.Latency.Buckets), st.Latency.Count, ok200+1)
	}
	for i := 1; i < len(st.Latency.Buckets); i++ {
		if b, a := st.Latency.Buckets[i], st.Latency.Buckets[i-1]; b.LE <= a.LE || b.Count < a.Count || b.Count > st.Latency.Count {
			t.Errorf("latency buckets not cumulative: %+v", st.Latency.Buckets)
		}
	}
	if st.StateKeys == nil || *st.StateKeys != 1 || st.StateBytes == nil || *st.StateBytes < int64(len("stats:k")+len("some value")) {
		t.Errorf("state_keys = %v, state_bytes = %v; want 1 and at least the key and value", st.StateKeys, st.StateBytes)
	}

	// A request in flight shows its worker busy, with what it runs and for how long.
	done := make(chan struct{})
	go func() {
		defer close(done)
		fetch(t, srv.URL+"/sleep?s=1.5")
	}()
	waitFor(t, 3*time.Second, "/stats to show a worker busy with GET /sleep", func() bool {
		var st stats
		getJSON(t, statsURL+"/stats", &st)
		for _, w := range st.Workers {
			if w.State == "busy" && w.Current == "GET /sleep" && w.CurrentAgeSeconds > 0 {
				return true
			}
		}
		return false
	})
	<-done
	waitFor(t, 2*time.Second, "the sleep request to be counted", func() bool { return srv.Stats().Status["2xx"] == ok200+1 })

	status, body, h := fetch(t, statsURL+"/metrics")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d, %s", status, h.Get("Content-Type"))
	}
	for _, want := range []string{
		"# TYPE hornbeam_requests_total counter\n",
		fmt.Sprintf("\nhornbeam_requests_total{class=\"2xx\"} %d\n", ok200+1),
		"\nhornbeam_requests_total{class=\"4xx\"} 1\n",
		fmt.Sprintf("\nhornbeam_request_duration_seconds_bucket{le=\"+Inf\"} %d\n", ok200+2),
		fmt.Sprintf("\nhornbeam_request_duration_seconds_count %d\n", ok200+2),
		"\nhornbeam_worker_rss_bytes{",
		"\nhornbeam_state_keys 1\n",
		"\nhornbeam_workers 2\n",
	} {
		contains(t, body, want, "/metrics")
	}
	// Every line is a comment or a well-formed sample of a declared family,
	// and the histogram's buckets are cumulative.
	types := map[string]string{}
	var lastBucket float64 = -1
	for i, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if strings.HasPrefix(line, "# ") {
			f := strings.Fields(line)
			if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") {
				t.Errorf("/metrics line %d: bad comment %q", i+1, line)
			}
			if f[1] == "TYPE" && len(f) == 4 {
				types[f[2]] = f[3]
			}
			continue
		}
		m := metricLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("/metrics line %d is not a valid sample: %q", i+1, line)
			continue
		}
		name := m[1]
		family := name
		if types[name] == "" {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if f, ok := strings.CutSuffix(name, suf); ok && types[f] == "histogram" {
					family = f
				}
			}
		}
		if types[family] == "" {
			t.Errorf("/metrics line %d: %s has no # TYPE before it", i+1, name)
		}
		if strings.HasSuffix(name, "_bucket") {
			v, _ := strconv.ParseFloat(m[4], 64)
			if v < lastBucket {
				t.Errorf("/metrics line %d: bucket count %v below the previous %v", i+1, v, lastBucket)
			}
			lastBucket = v
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// The store's two bounds through a real server: one value over
// --state-max-value-bytes is a ValueError that names the flag and writes
// nothing; with --state-max-bytes the store stays under its budget by
// evicting.
func TestStateBounds(t *testing.T) {
	s := start(t, "st_state", hornbeam.Options{Workers: 1, StateMaxValueBytes: 10000, StateMaxBytes: 64 * 20000})
	var r struct {
		Stored bool
		Error  string
		After  string
	}
	getJSON(t, s.URL+"/big?key=small&n=5000", &r)
	if !r.Stored {
		t.Errorf("a 5000-byte value under a 10000-byte limit: %+v", r)
	}
	r = struct {
		Stored bool
		Error  string
		After  string
	}{}
	getJSON(t, s.URL+"/big?key=huge&n=50000", &r)
	if r.Stored || !strings.Contains(r.Error, "ValueError") || !strings.Contains(r.Error, "--state-max-value-bytes") || r.After != "None" {
		t.Errorf("a value over the limit: %+v, want a ValueError naming --state-max-value-bytes and nothing stored", r)
	}
	var f struct{ Keys int }
	getJSON(t, s.URL+"/fill?n=3000", &f) // ~3.4 MB of entries into a 1.3 MB budget
	st := s.Stats()
	if st.StateBytes > 64*20000 {
		t.Errorf("state holds %d bytes over a %d budget", st.StateBytes, 64*20000)
	}
	if f.Keys >= 3000 || f.Keys == 0 {
		t.Errorf("%d of 3000 keys left: want some evicted, some kept", f.Keys)
	}
}

// The stats address also serves the Go profiler.
func TestStatsPprof(t *testing.T) {
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 1, StatsBind: "127.0.0.1:0"})
	base := "http://" + srv.StatsAddr().String()
	cases := []struct{ path, want string }{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile: total"},
		{"/debug/pprof/cmdline", ""},
		{"/debug/pprof/profile?seconds=1", ""},
	}
	for _, c := range cases {
		status, body := get(t, base+c.path)
		if status != 200 || !strings.Contains(body, c.want) || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes, want 200 with %q", c.path, status, len(body), c.want)
		}
	}
}

// A worker keeps what state_get returned and serves it from memory until
// the key changes anywhere (another worker, Go, expiry) or its TTL runs
// out; what the app gets is always current and never shared.
func TestStateGetCache(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the change table is Linux only")
	}
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 1})
	cached := func(key string) string { return pyCached(t, srv, key) }
	for _, key := range []string{"plain", "café"} {
		t.Run(key, func(t *testing.T) {
			srv.StateSet(key, "v1", 0)
			if r := pyGet(t, srv, key); r.Repr != "'v1'" {
				t.Fatalf("first get: %s", r.Repr)
			}
			if c := cached(key); c != "True" {
				t.Fatalf("after a get, cached = %s, want True", c)
			}
			srv.StateSet(key, "v2", 0) // from Go: no worker is told but the table
			if r := pyGet(t, srv, key); r.Repr != "'v2'" {
				t.Errorf("after a Go set: %s, want 'v2'", r.Repr)
			}
			srv.StateIncr(key+"#n", 1)
			srv.State().Delete(key)
			if r := pyGet(t, srv, key); r.Repr != "None" {
				t.Errorf("after a delete: %s, want None", r.Repr)
			}
			srv.StateIncr(key, 7)
			if r := pyGet(t, srv, key); r.Repr != "7" {
				t.Errorf("after an incr: %s, want 7", r.Repr)
			}
		})
	}
	t.Run("ttl", func(t *testing.T) {
		getJSON(t, srv.URL+"/set?key=short&value=x&ttl=0.3", new(pyReply))
		if r := pyGet(t, srv, "short"); r.Repr != "'x'" {
			t.Fatalf("before expiry: %s", r.Repr)
		}
		time.Sleep(400 * time.Millisecond)
		if r := pyGet(t, srv, "short"); r.Repr != "None" {
			t.Errorf("after the TTL: %s, want None", r.Repr)
		}
	})
	t.Run("key sent encoded", func(t *testing.T) {
		// A str key starting with NUL travels as marshal bytes, as non-str
		// keys do (a Go caller cannot name it).
		const key = "\x00starts with NUL"
		for _, v := range []string{"a", "b"} {
			getJSON(t, srv.URL+"/set?key="+url.QueryEscape(key)+"&value="+v, new(pyReply))
			if r := pyGet(t, srv, key); r.Repr != "'"+v+"'" {
				t.Errorf("after setting %q: %s", v, r.Repr)
			}
			if c := cached(key); c != "True" {
				t.Errorf("after a get, cached = %s, want True", c)
			}
		}
	})
	t.Run("get_multi", func(t *testing.T) {
		srv.StateSet("m1", "a", 0)
		multi := func() pyReply {
			var r pyReply
			getJSON(t, srv.URL+"/multi?keys=m1,m2", &r)
			return r
		}
		if r := multi(); r.Repr != "[('m1', 'a'), ('m2', None)]" || r.Last != 0 {
			t.Errorf("get_multi: %s with %d round trips on the second call, want [('m1', 'a'), ('m2', None)] with 0", r.Repr, r.Last)
		}
		srv.StateSet("m2", "b", 0)
		srv.StateSet("m1", "c", 0)
		if r := multi(); r.Repr != "[('m1', 'c'), ('m2', 'b')]" || r.Last != 0 {
			t.Errorf("get_multi after Go sets: %s with %d round trips, want [('m1', 'c'), ('m2', 'b')] with 0", r.Repr, r.Last)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		var r pyReply
		getJSON(t, srv.URL+"/cache_bound", &r)
		if kept, err := strconv.Atoi(r.Repr); err != nil || kept <= 0 || kept > 8<<20 {
			t.Errorf("after reading 12 MB of values the worker keeps %s bytes, want 1..8 MiB", r.Repr)
		}
	})
	t.Run("not shared", func(t *testing.T) {
		var r pyReply
		getJSON(t, srv.URL+"/mutate?key=list", &r)
		if r.Repr != "[1, 2]" {
			t.Errorf("get after the app changed what get returned: %s", r.Repr)
		}
	})
}

// pyCached asks the worker whether it serves key's state_get from memory:
// "True" or "False" (see /cached in st_state.py).
func pyCached(t *testing.T, srv *testServer, key string) string {
	t.Helper()
	var r pyReply
	getJSON(t, srv.URL+"/cached?key="+url.QueryEscape(key), &r)
	return r.Repr
}

// Across workers: every get sees the set before it, whichever worker did
// either.
func TestStateGetCacheAcrossWorkers(t *testing.T) {
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 3})
	for i := range 60 {
		v := strconv.Itoa(i)
		getJSON(t, srv.URL+"/set?key=shared&value="+v, new(pyReply))
		for range 3 {
			if r := pyGet(t, srv, "shared"); r.Repr != "'"+v+"'" {
				t.Fatalf("round %d: worker %d got %s, want '%s'", i, r.PID, r.Repr, v)
			}
		}
	}
}

// With --state-max-bytes the store evicts by recency, which reads from a
// worker's memory would not count: workers do not cache then.
func TestStateGetNoCacheWithLRU(t *testing.T) {
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 1, StateMaxBytes: 1 << 20})
	srv.StateSet("k", "v", 0)
	pyGet(t, srv, "k")
	if c := pyCached(t, srv, "k"); c != "False" {
		t.Errorf("with a memory bound, cached = %s, want False", c)
	}
}

// A process the app forks from a worker gets a clear error from state calls
// (it would share the worker's state socket), and the worker goes on.
func TestStateInForkedChild(t *testing.T) {
	srv := start(t, "st_state:application", hornbeam.Options{Workers: 1})
	for i := range 2 {
		var r pyReply
		getJSON(t, srv.URL+"/fork_state", &r)
		if !strings.HasPrefix(r.Repr, "RuntimeError: hornbeam state is not available in a process forked from a worker") {
			t.Errorf("state_get in a forked child: %q", r.Repr)
		}
		if r.Last != int64(i+1) {
			t.Errorf("state_incr in the worker after the fork: %d, want %d", r.Last, i+1)
		}
	}
}
