package hornbeam

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/hornbeam-go/hornbeam/pymarshal"
	"github.com/hornbeam-go/hornbeam/state"
)

// The state operations a worker may call, as sent by
// python/hornbeam/_state.py: a marshal tuple (op, args...). Keys arrive as
// str or bytes; values as an int (a counter) or bytes (marshal data of any
// other value). The reply is (True, result) or (False, error type, message).
// The operations: get, getv and get_multi_v (get and get_multi for a worker
// that keeps the results: see versions_linux.go), get_multi, set, delete,
// incr, keys, stats, and publish (hornbeam.publish: no state, but every
// worker has this socket).

// stateCall answers one StateCall payload.
func (s *Server) stateCall(payload []byte) []byte {
	res, err := s.stateOp(payload)
	var out []byte
	if err != nil {
		kind := "ValueError"
		switch {
		case errors.Is(err, state.ErrNotInteger), errors.Is(err, errBadArgs):
			kind = "TypeError"
		case errors.Is(err, state.ErrOverflow):
			kind = "OverflowError"
		}
		out, _ = pymarshal.Marshal(pymarshal.Tuple{false, kind, err.Error()})
		return out
	}
	out, err = pymarshal.Marshal(pymarshal.Tuple{true, res})
	if err != nil {
		out, _ = pymarshal.Marshal(pymarshal.Tuple{false, "RuntimeError", "hornbeam: cannot encode the state reply: " + err.Error()})
	}
	return out
}

var errBadArgs = errors.New("bad arguments")

func stateKey(v any) (string, error) {
	switch k := v.(type) {
	case string:
		return k, nil
	case []byte:
		return string(k), nil
	}
	return "", fmt.Errorf("%w: a key must be str or bytes on the wire, got %T", errBadArgs, v)
}

// pyValue is the wire form of a stored value: int for counters, bytes
// (marshal data) for the rest.
func pyValue(v state.Value) any {
	if v.IsInt {
		return v.Int
	}
	return v.Raw
}

func (s *Server) stateOp(payload []byte) (any, error) {
	v, err := pymarshal.Unmarshal(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadArgs, err)
	}
	t, ok := v.(pymarshal.Tuple)
	if !ok || len(t) == 0 {
		return nil, fmt.Errorf("%w: a state call is a tuple (op, args...)", errBadArgs)
	}
	op, _ := t[0].(string)
	args := t[1:]
	argc := stateArgc
	if n, known := argc[op]; !known || len(args) != n {
		return nil, fmt.Errorf("%w: unknown state operation %q with %d arguments", errBadArgs, op, len(args))
	}
	st := s.store
	switch op {
	case "stats":
		return s.statsForPython(), nil
	case "publish": // (topic, text, data): to the subscribers in every worker
		topic, ok1 := args[0].(string)
		text, ok2 := args[1].(bool)
		data, ok3 := args[2].([]byte)
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("%w: publish takes (topic str, text bool, data bytes)", errBadArgs)
		}
		n, err := s.pool.Publish(topic, text, data)
		return int64(n), err
	case "keys":
		if args[0] == nil {
			return wireKeys(st.Keys(""), nil), nil
		}
		prefix, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("%w: the key prefix must be a str", errBadArgs)
		}
		keys := st.Keys(prefix)
		if strings.HasPrefix(prefix, "\x00") {
			// str keys starting with NUL travel encoded, as non-str keys do.
			keys = st.Keys("\x00")
		}
		return wireKeys(keys, &prefix), nil
	case "get_multi", "get_multi_v":
		list, ok := args[0].(pymarshal.List)
		if !ok {
			return nil, fmt.Errorf("%w: %s takes a list of keys", errBadArgs, op)
		}
		keys := make([]string, len(list))
		for i, kv := range list {
			if keys[i], err = stateKey(kv); err != nil {
				return nil, err
			}
		}
		if op == "get_multi_v" {
			out := make(pymarshal.List, len(keys))
			for i, k := range keys {
				out[i] = s.getv(k)
			}
			return out, nil
		}
		vals, found := st.GetMulti(keys)
		out := make(pymarshal.List, len(keys))
		for i := range keys {
			if found[i] {
				out[i] = pyValue(vals[i])
			}
		}
		return out, nil
	}
	key, err := stateKey(args[0])
	if err != nil {
		return nil, err
	}
	switch op {
	case "get":
		if v, ok := st.Get(key); ok {
			return pyValue(v), nil
		}
		return nil, nil
	case "getv":
		return s.getv(key), nil
	case "delete":
		return st.Delete(key), nil
	case "incr":
		d, ok := args[1].(int64)
		if !ok {
			return nil, fmt.Errorf("%w: the increment must be an int", errBadArgs)
		}
		n, err := st.Incr(key, d)
		if err != nil {
			return nil, fmt.Errorf("state_incr(%q): %w", key, err)
		}
		return n, nil
	default: // set
		var val state.Value
		switch x := args[1].(type) {
		case int64:
			val = state.IntValue(x)
		case []byte:
			val = state.RawValue(x)
		default:
			return nil, fmt.Errorf("%w: a value must be int or marshal bytes on the wire, got %T", errBadArgs, x)
		}
		var ttl time.Duration
		switch x := args[2].(type) {
		case nil:
		case float64:
			if x <= 0 || math.IsNaN(x) {
				ttl = time.Nanosecond // already expired
			} else if x < math.MaxInt64/float64(time.Second) {
				ttl = time.Duration(x * float64(time.Second))
			}
		default:
			return nil, fmt.Errorf("%w: ttl must be a float or None", errBadArgs)
		}
		return nil, st.Set(key, val, ttl)
	}
}

// getv is get for a worker that keeps the result (versions_linux.go):
// (value or None, the key's change counter, seconds to live or None). The
// counter is read before the value, so a change made in between makes the
// kept copy stale at once, never the reverse.
func (s *Server) getv(key string) pymarshal.Tuple {
	var ver uint32
	if s.versions != nil {
		ver = s.versions.load(key)
	}
	var (
		v   state.Value
		exp time.Time
		ok  bool
	)
	if s.ownStore != nil {
		v, exp, ok = s.ownStore.GetExpiry(key)
	} else {
		v, ok = s.store.Get(key)
	}
	var val, ttl any
	if ok {
		val = pyValue(v)
	}
	if !exp.IsZero() {
		ttl = time.Until(exp).Seconds()
	}
	return pymarshal.Tuple{val, int64(ver), ttl}
}

// stateArgc is the number of arguments of each state operation.
var stateArgc = map[string]int{"get": 1, "getv": 1, "get_multi": 1, "get_multi_v": 1, "set": 3, "delete": 1, "incr": 2, "keys": 1, "stats": 0, "publish": 3}

// wireKeys turns store keys into their wire form: str for plain keys,
// bytes for encoded ones. With a prefix, only str keys starting with it are
// kept (encoded str keys are decoded to check).
func wireKeys(keys []string, prefix *string) pymarshal.List {
	out := make(pymarshal.List, 0, len(keys))
	for _, k := range keys {
		encoded := len(k) > 0 && k[0] == 0
		if prefix != nil {
			if encoded {
				v, err := pymarshal.Unmarshal([]byte(k[1:]))
				if str, ok := v.(string); err != nil || !ok || !strings.HasPrefix(str, *prefix) {
					continue
				}
			} else if !strings.HasPrefix(k, *prefix) {
				continue
			}
		}
		if encoded {
			out = append(out, []byte(k))
		} else {
			out = append(out, k)
		}
	}
	return out
}

// StateGet returns the value stored under key, decoded: int64 for
// counters, and for values set by Python the Go form package pymarshal
// gives them (string, []byte, float64, pymarshal.List, pymarshal.Dict...).
func (s *Server) StateGet(key string) (any, bool, error) {
	v, ok := s.store.Get(key)
	if !ok {
		return nil, false, nil
	}
	if v.IsInt {
		return v.Int, true, nil
	}
	d, err := pymarshal.Unmarshal(v.Raw)
	if err != nil {
		return nil, true, fmt.Errorf("state value of %q: %w", key, err)
	}
	return d, true, nil
}

// StateSet stores v under key for Python to read (ttl <= 0: no expiry).
// Integers become counters; other values must be of a type pymarshal
// encodes.
func (s *Server) StateSet(key string, v any, ttl time.Duration) error {
	switch n := v.(type) {
	case int:
		return s.store.Set(key, state.IntValue(int64(n)), ttl)
	case int64:
		return s.store.Set(key, state.IntValue(n), ttl)
	}
	b, err := pymarshal.Marshal(v)
	if err != nil {
		return fmt.Errorf("state value for %q: %w", key, err)
	}
	return s.store.Set(key, state.RawValue(b), ttl)
}

// StateIncr adds delta to the counter under key (0 when absent), atomically
// with every worker, and returns the new value.
func (s *Server) StateIncr(key string, delta int64) (int64, error) {
	return s.store.Incr(key, delta)
}

// State returns the server's store, for raw access.
func (s *Server) State() state.Store { return s.store }

// versionsFile is the state change table for the workers, or nil.
func (s *Server) versionsFile() *os.File {
	if s.versions == nil {
		return nil
	}
	return s.versions.file
}
