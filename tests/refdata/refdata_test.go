package refdata

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// render builds the DMS record a correct pipeline delivers for e.
func render(t *testing.T, e Expected) Delivered {
	t.Helper()
	rec := map[string]any{"data": e.Data, "metadata": map[string]any{
		"record-type": "data", "operation": e.Operation, "schema-name": e.Schema, "table-name": e.Table}}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	pk := e.Key
	if e.Operation != "load" {
		pk = e.Schema + "." + e.Table
	}
	return Delivered{PartitionKey: pk, Data: b}
}

func TestGenerateIsDeterministicAndShaped(t *testing.T) {
	o := Scaled(0.01)
	f1, m1 := Generate(o)
	f2, m2 := Generate(o)
	if len(f1) != 9 || len(f1) != len(f2) || len(m1) != len(m2) {
		t.Fatalf("files %d/%d, manifest %d/%d", len(f1), len(f2), len(m1), len(m2))
	}
	for i := range f1 {
		if f1[i].Key != f2[i].Key || !bytes.Equal(f1[i].Body, f2[i].Body) {
			t.Fatalf("file %s differs between two runs with the same seed", f1[i].Key)
		}
	}
	if f1[0].Key != "schema01/table01/full_000" || f1[5].Key != "cdcfile/cdc_000" {
		t.Fatalf("layout: %s, %s", f1[0].Key, f1[5].Key)
	}
	rows := 0
	for _, f := range f1 {
		rows += bytes.Count(f.Body, []byte("\n"))
	}
	if rows != len(m1) {
		t.Fatalf("%d rows in files, %d manifest entries", rows, len(m1))
	}
	ops := map[string]int{}
	for _, e := range m1 {
		ops[e.Operation]++
	}
	for _, op := range []string{"load", "insert", "update", "delete"} {
		if ops[op] == 0 {
			t.Errorf("no %s records", op)
		}
	}
	cdc := string(f1[5].Body)
	if !strings.HasPrefix(cdc, "I,table01,schema01,") && !strings.HasPrefix(cdc, "U,table01,schema01,") && !strings.HasPrefix(cdc, "D,table01,schema01,") {
		t.Fatalf("CDC row layout: %.60s", cdc)
	}
}

func TestCompareFindsWhatAConsumerWouldCheck(t *testing.T) {
	_, m := Generate(Scaled(0.002))
	var good []Delivered
	for _, e := range m {
		good = append(good, render(t, e))
	}
	if rep := Compare(m, good); !rep.OK() || rep.Unique != len(m) || rep.Duplicates != 0 {
		t.Fatalf("exact delivery judged wrong: %s", rep)
	}
	// A duplicate of an earlier record is counted, not a fault.
	dup := append(append([]Delivered{}, good...), good[len(good)-1])
	if rep := Compare(m, dup); !rep.OK() || rep.Duplicates != 1 {
		t.Fatalf("duplicate: %s", rep)
	}
	// A missing record is reported.
	if rep := Compare(m, good[1:]); rep.OK() || len(rep.Missing) != 1 || rep.Missing[0].Line != 1 {
		t.Fatalf("missing: %s", rep)
	}
	// Two CDC records of the same partition key swapped is an order fault.
	var cdcIdx []int
	for i, e := range m {
		if e.Operation != "load" {
			cdcIdx = append(cdcIdx, i)
		}
	}
	swapped := append([]Delivered{}, good...)
	a, b := cdcIdx[0], cdcIdx[1]
	swapped[a], swapped[b] = swapped[b], swapped[a]
	if rep := Compare(m, swapped); rep.OK() || len(rep.OrderFaults) != 1 {
		t.Fatalf("swap: %s", rep)
	}
	// A changed value is unexpected (and its original missing).
	bad := append([]Delivered{}, good...)
	bad[0].Data = bytes.Replace(bad[0].Data, []byte(`"doi":"`), []byte(`"doi":"X`), 1)
	if rep := Compare(m, bad); rep.OK() || len(rep.Unexpected) != 1 || len(rep.Missing) != 1 {
		t.Fatalf("changed value: %s", rep)
	}
	// Numbers compare by value: 5.10 equals 5.1.
	e := m[0]
	e.Data = map[string]any{"value": json.Number("5.10")}
	d := render(t, e)
	d.Data = bytes.Replace(d.Data, []byte("5.10"), []byte("5.1"), 1)
	if rep := Compare([]Expected{e}, []Delivered{d}); !rep.OK() {
		t.Fatalf("5.1 vs 5.10: %s", rep)
	}
}

func TestGeneratedRowsFitTheDefinition(t *testing.T) {
	_, m := Generate(Scaled(0.02))
	for _, e := range m {
		if doi := e.Data["doi"].(string); len(doi) > 30 {
			t.Fatalf("%s line %d: doi %q is longer than STRING(30)", e.File, e.Line, doi)
		}
		if sig := e.Data["data_sig"].(string); len(sig) > 10 {
			t.Fatalf("%s line %d: data_sig %q is longer than STRING(10)", e.File, e.Line, sig)
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	_, m := Generate(Scaled(0.001))
	path := t.TempDir() + "/manifest.jsonl"
	if err := WriteManifest(path, m); err != nil {
		t.Fatal(err)
	}
	back, err := ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(m) {
		t.Fatalf("read %d records, wrote %d", len(back), len(m))
	}
	for i := range m {
		if expectedSignature(back[i]) != expectedSignature(m[i]) || back[i].File != m[i].File || back[i].Line != m[i].Line {
			t.Fatalf("record %d differs after a round trip: %+v vs %+v", i, back[i], m[i])
		}
	}
	// Big INT8 ids survive exactly (json.Number, not float64).
	for _, e := range back {
		if id := e.Data["id"].(json.Number).String(); len(id) >= 17 {
			return
		}
	}
	t.Fatal("no 17+ digit id in the sample: the exactness check proved nothing")
}
