// Package metamap gives a Benthos message a whole metadata map at once.
//
// Benthos builds a message's metadata one key at a time (MetaSetMut), and a
// copy of a message clones the map key by key at its first write. For the
// input's ten keys per row that is most of what making a message costs:
// the map is grown past Go's eight-slot small map and every key is hashed
// again. Set instead installs a map the caller made, typically with
// maps.Clone of a per-file template (one copy of the map's memory) and then
// the few per-row values written in place.
//
// The message type does not export its metadata, so Set writes the field
// through offsets that init finds by reflection, checking every field's
// name and type on the way (service.Message.part -> message.Part.data ->
// messageData.metadata and readOnlyMeta). When the Benthos version in the
// build lays them out differently, Supported is false and Set returns
// false: the caller then sets the keys one by one, as before. The tests
// pin the behaviour on the Benthos version in go.mod.
package metamap

import (
	"reflect"
	"unsafe"

	"github.com/redpanda-data/benthos/v4/public/service"
)

var (
	// Supported reports whether Set can install maps in this build.
	Supported                        bool
	partOff, dataOff, metaOff, roOff uintptr
)

func init() {
	Supported = locate()
}

func field(t reflect.Type, name string, kind reflect.Kind) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	f, ok := t.FieldByName(name)
	if !ok || len(f.Index) != 1 || f.Type.Kind() != kind {
		return reflect.StructField{}, false
	}
	return f, true
}

func locate() bool {
	part, ok := field(reflect.TypeOf(service.Message{}), "part", reflect.Pointer)
	if !ok || part.Type.Elem().Name() != "Part" {
		return false
	}
	data, ok := field(part.Type.Elem(), "data", reflect.Pointer)
	if !ok || data.Type.Elem().Name() != "messageData" {
		return false
	}
	meta, ok := field(data.Type.Elem(), "metadata", reflect.Map)
	if !ok || meta.Type != reflect.TypeOf(map[string]any(nil)) {
		return false
	}
	ro, ok := field(data.Type.Elem(), "readOnlyMeta", reflect.Bool)
	if !ok {
		return false
	}
	partOff, dataOff, metaOff, roOff = part.Offset, data.Offset, meta.Offset, ro.Offset
	return true
}

// Set makes md the metadata of m, replacing what m had, and reports whether
// it could (see Supported). m must be a message the caller owns (not yet
// handed to Benthos), and md a map nothing else holds: the message owns it
// from now on and writes to it in place.
func Set(m *service.Message, md map[string]any) bool {
	if !Supported || m == nil {
		return false
	}
	p := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(m), partOff))
	if p == nil {
		return false
	}
	d := *(*unsafe.Pointer)(unsafe.Add(p, dataOff))
	if d == nil {
		return false
	}
	*(*map[string]any)(unsafe.Add(d, metaOff)) = md
	*(*bool)(unsafe.Add(d, roOff)) = false
	return true
}
