package pymarshal

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
)

// equal compares two decoded values. Floats are equal when their bits are
// equal or both are NaN; *big.Int by value; []byte by content (nil equals
// empty); container types must match exactly (a List never equals a Tuple).
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case *big.Int:
		y, ok := b.(*big.Int)
		return ok && x.Cmp(y) == 0
	case float64:
		y, ok := b.(float64)
		return ok && (math.Float64bits(x) == math.Float64bits(y) || math.IsNaN(x) && math.IsNaN(y))
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case List:
		y, ok := b.(List)
		return ok && equalSlices(x, y)
	case Tuple:
		y, ok := b.(Tuple)
		return ok && equalSlices(x, y)
	case Set:
		y, ok := b.(Set)
		return ok && equalSlices(x, y)
	case FrozenSet:
		y, ok := b.(FrozenSet)
		return ok && equalSlices(x, y)
	case Dict:
		y, ok := b.(Dict)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i].Key, y[i].Key) || !equal(x[i].Value, y[i].Value) {
				return false
			}
		}
		return true
	}
	panic(fmt.Sprintf("equal: unexpected type %T", a))
}

func equalSlices(x, y []any) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !equal(x[i], y[i]) {
			return false
		}
	}
	return true
}

// show formats a decoded value for test failure messages.
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return fmt.Sprintf("%q", x)
	case []byte:
		return fmt.Sprintf("b%q", x)
	case *big.Int:
		return x.String()
	case float64:
		return fmt.Sprintf("%v(%#x)", x, math.Float64bits(x))
	case List:
		return "List" + showSlice(x)
	case Tuple:
		return "Tuple" + showSlice(x)
	case Set:
		return "Set" + showSlice(x)
	case FrozenSet:
		return "FrozenSet" + showSlice(x)
	case Dict:
		var b bytes.Buffer
		b.WriteString("Dict{")
		for i, it := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(show(it.Key) + ": " + show(it.Value))
		}
		b.WriteString("}")
		return b.String()
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func showSlice(x []any) string {
	var b bytes.Buffer
	b.WriteString("{")
	for i, el := range x {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(show(el))
	}
	b.WriteString("}")
	return b.String()
}

func bigInt(s string) *big.Int {
	x, ok := new(big.Int).SetString(s, 0)
	if !ok {
		panic("bad big int " + s)
	}
	return x
}

func pow2(n uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), n) }

func neg(x *big.Int) *big.Int { return new(big.Int).Neg(x) }

func add(x *big.Int, d int64) *big.Int { return new(big.Int).Add(x, big.NewInt(d)) }
