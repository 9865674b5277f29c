package box

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
)

// Boxed values behave as ordinary interface values, survive garbage
// collections (the chunks stay alive through the interfaces), and cost no
// allocation per value beyond one per chunk.
func TestBoxedValues(t *testing.T) {
	var b Boxer
	var vals []any
	for i := 0; i < 3*chunk+7; i++ {
		vals = append(vals, b.String("pos "+strconv.Itoa(i)), b.Int64(int64(i)*1e12))
	}
	b = Boxer{} // the boxer forgets its chunks: only the interfaces hold them
	runtime.GC()
	runtime.GC()
	for i := 0; i < 3*chunk+7; i++ {
		s, ok := vals[2*i].(string)
		if !ok || s != "pos "+strconv.Itoa(i) || vals[2*i] != any("pos "+strconv.Itoa(i)) {
			t.Fatalf("string %d: %#v", i, vals[2*i])
		}
		switch v := vals[2*i+1].(type) {
		case int64:
			if v != int64(i)*1e12 || fmt.Sprint(vals[2*i+1]) != strconv.FormatInt(int64(i)*1e12, 10) {
				t.Fatalf("int %d: %v", i, v)
			}
		default:
			t.Fatalf("int %d has type %T", i, v)
		}
	}
	allocs := testing.AllocsPerRun(10, func() {
		var b Boxer
		for i := 0; i < chunk; i++ {
			_ = b.Int64(int64(i) << 20)
			_ = b.String("x")
		}
	})
	if allocs > 2 {
		t.Fatalf("%.0f allocations for %d values of each kind, want one chunk each", allocs, chunk)
	}
}
