// Package box makes interface values (Benthos metadata values are `any`) of
// strings and int64s without a heap allocation per value: the values are
// stored in chunks allocated once per many values, and each interface points
// into its chunk, exactly as the compiler's own conversion points at a fresh
// copy. A stored value is never written again, so the interfaces behave as
// ordinary ones (type switches, assertions, equality, fmt); a chunk lives as
// long as any interface into it.
package box

import "unsafe"

// chunk is how many values one allocation holds.
const chunk = 512

// Boxer hands out interface values. The zero value is ready; a Boxer is not
// safe for concurrent use.
type Boxer struct {
	strs []string
	ints []int64
}

// eface is the memory layout of an interface{} value.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	stringType = typeOf("")
	int64Type  = typeOf(int64(0))
)

// String returns s as an interface value.
func (b *Boxer) String(s string) any {
	if len(b.strs) == cap(b.strs) {
		b.strs = make([]string, 0, chunk)
	}
	b.strs = append(b.strs, s)
	e := eface{typ: stringType, data: unsafe.Pointer(&b.strs[len(b.strs)-1])}
	return *(*any)(unsafe.Pointer(&e))
}

// Int64 returns v as an interface value.
func (b *Boxer) Int64(v int64) any {
	if len(b.ints) == cap(b.ints) {
		b.ints = make([]int64, 0, chunk)
	}
	b.ints = append(b.ints, v)
	e := eface{typ: int64Type, data: unsafe.Pointer(&b.ints[len(b.ints)-1])}
	return *(*any)(unsafe.Pointer(&e))
}
