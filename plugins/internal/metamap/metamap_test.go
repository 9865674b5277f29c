package metamap

import (
	"maps"
	"runtime"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func template() map[string]any {
	t := make(map[string]any, 14)
	for _, k := range []string{"dms_phase", "dms_schema", "dms_table", "s3_bucket", "s3_key", "s3_etag", "s3_last_modified"} {
		t[k] = k + "-value"
	}
	t["dms_line"], t["dms_offset"], t["dms_position"] = int64(0), int64(0), ""
	return t
}

// On the Benthos version in go.mod the layout is found; a message given a
// map reads, writes, copies and walks it as one built key by key.
func TestSetBehavesLikeMetaSetMut(t *testing.T) {
	if !Supported {
		t.Fatal("the Benthos message layout was not recognised: Set would fall back on every message")
	}
	tmpl := template()
	m := service.NewMessage([]byte("row"))
	md := maps.Clone(tmpl)
	md["dms_line"] = int64(7)
	if !Set(m, md) {
		t.Fatal("Set refused a new message")
	}
	if v, ok := m.MetaGetMut("dms_line"); !ok || v != int64(7) {
		t.Fatalf("dms_line = %v %v", v, ok)
	}
	if v, ok := m.MetaGet("s3_key"); !ok || v != "s3_key-value" {
		t.Fatalf("s3_key = %q %v", v, ok)
	}
	// A copy shares the map until its first write, which must not reach
	// the original or the template.
	c := m.Copy()
	c.MetaSetMut("dms_line", int64(8))
	c.MetaSetMut("extra", "x")
	if v, _ := m.MetaGetMut("dms_line"); v != int64(7) {
		t.Fatalf("a copy's write reached the original: %v", v)
	}
	if _, ok := m.MetaGetMut("extra"); ok {
		t.Fatal("a copy's new key reached the original")
	}
	// Writes to the message go to its own map, never to the template.
	m.MetaSetMut("dms_partition_key", "k")
	m.MetaDelete("s3_etag")
	if _, ok := tmpl["dms_partition_key"]; ok || tmpl["s3_etag"] == nil || tmpl["dms_line"] != int64(0) {
		t.Fatalf("the template changed: %v", tmpl)
	}
	n := 0
	_ = m.MetaWalkMut(func(k string, v any) error { n++; return nil })
	if n != 10 { // 10 keys, one deleted, one added
		t.Fatalf("walked %d keys, want 10", n)
	}
}

// The maps a message is given survive garbage collection with the message.
func TestSetUnderGC(t *testing.T) {
	tmpl := template()
	msgs := make([]*service.Message, 2000)
	for i := range msgs {
		msgs[i] = service.NewMessage(nil)
		md := maps.Clone(tmpl)
		md["dms_line"] = int64(i)
		Set(msgs[i], md)
		if i%200 == 0 {
			runtime.GC()
		}
	}
	runtime.GC()
	for i, m := range msgs {
		if v, _ := m.MetaGetMut("dms_line"); v != int64(i) {
			t.Fatalf("message %d: dms_line = %v", i, v)
		}
	}
}

func BenchmarkMessageMeta(b *testing.B) {
	tmpl := template()
	b.Run("template-copy", func(b *testing.B) {
		tm := service.NewMessage(nil)
		for k, v := range tmpl {
			tm.MetaSetMut(k, v)
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			m := tm.Copy()
			m.MetaSetMut("dms_line", int64(i))
			m.MetaSetMut("dms_offset", int64(i))
			m.MetaSetMut("dms_position", "p")
			m.MetaSetMut("dms_partition_key", "k")
			m.MetaSetMut("dms_operation", "load")
		}
	})
	b.Run("clone-set", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			m := service.NewMessage(nil)
			md := maps.Clone(tmpl)
			md["dms_line"] = int64(i)
			md["dms_offset"] = int64(i)
			md["dms_position"] = "p"
			Set(m, md)
			m.MetaSetMut("dms_partition_key", "k")
			m.MetaSetMut("dms_operation", "load")
		}
	})
}
