package csvjson

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Benchmarks: rows/s on one core and allocations per row of dms_csv_to_json,
// next to the same conversion written as a Benthos `mapping` processor (the
// real processor, built from YAML), measured in the same run. Message
// creation is excluded from both (see runRows); processing includes
// SetBytes and the metadata each sets. Both run with the binary's GC
// setting (see shippedGOGC). Run with:
//
//	go test ./plugins/csvjson -run '^$' -bench . -benchtime 2000000x -cpu 1
//	GOGC=100 go test ... (Go's default GC setting instead)

const benchBatch = 500

func refRow(i int) row {
	return fullLoad("schema01", "table01", "schema01/table01/full_000", int64(i+1),
		fmt.Sprintf("2023-10-01 %02d:%02d:%02d.%06d,10.1000/%d,%d,%d.%02d,sig%07d", i/3600%24, i/60%60, i%60, i%1000000, i%100000, 1000000+i, i%999, i%100, i%10000000))
}

func mixedRowN(i int) row {
	return fullLoad("app", "mixed", "app/mixed/LOAD001.csv", int64(i+1), fmt.Sprintf(
		`%d,eu-%d,%d,%d,%d,%d,%d,%d.%04d,%d.5,%d.25,%s,2024-02-%02d,12:34:%02d.123,2024-02-29 23:59:%02d.123456,02/29/2024 23:59:59.123456789,"Name %d, ""quoted""",plain note %d,DEADBEEF%02X,00FF%04X,wide é %d`,
		i, i%9, i%127, i%30000, i, i%255, uint64(i)*7919, i, i%10000, i%1000, i, []string{"true", "f", "Y", "0"}[i%4], i%28+1, i%60, i%60, i, i, i%256, i%65536, i%100))
}

const refMapping = `
let row = content().string().parse_csv(parse_header_row: false).index(0)
root.data.ingest_time = $row.index(0).ts_parse("2006-01-02 15:04:05.999999999").ts_format("2006-01-02T15:04:05Z", "UTC")
root.data.doi = $row.index(1)
root.data.id = $row.index(2).int64()
root.data.value = $row.index(3).number()
root.data.data_sig = $row.index(4)
root.metadata.timestamp = now().ts_format("2006-01-02T15:04:05.000000Z", "UTC")
root.metadata."record-type" = "data"
root.metadata.operation = "load"
root.metadata."partition-key-type" = "primary-key"
root.metadata."schema-name" = @dms_schema
root.metadata."table-name" = @dms_table
meta dms_partition_key = root.data.ingest_time
meta dms_operation = "load"
`

const mixedMapping = `
let row = content().string().parse_csv(parse_header_row: false).index(0)
root.data.id = $row.index(0).int64()
root.data.region = $row.index(1)
root.data.i1 = $row.index(2).int64()
root.data.i2 = $row.index(3).int64()
root.data.i4 = $row.index(4).int64()
root.data.u1 = $row.index(5).int64()
root.data.u8 = $row.index(6).uint64()
root.data.amount = $row.index(7).number()
root.data.r4 = $row.index(8).number()
root.data.r8 = $row.index(9).number()
root.data.flag = ["true", "t", "y", "yes", "1"].contains($row.index(10).lowercase())
root.data.born = $row.index(11)
root.data.at = $row.index(12).slice(0, 12)
root.data.created = $row.index(13).ts_parse("2006-01-02 15:04:05.999999999").ts_format("2006-01-02T15:04:05.000000Z", "UTC")
root.data.updated = $row.index(14).ts_parse("01/02/2006 15:04:05.999999999").ts_format("2006-01-02T15:04:05.000000000Z", "UTC")
root.data.name = $row.index(15)
root.data.note = $row.index(16)
root.data.sig = "0x" + $row.index(17).uppercase()
root.data.blob = "0x" + $row.index(18).uppercase()
root.data.wname = $row.index(19)
root.metadata.timestamp = now().ts_format("2006-01-02T15:04:05.000000Z", "UTC")
root.metadata."record-type" = "data"
root.metadata.operation = "load"
root.metadata."partition-key-type" = "primary-key"
root.metadata."schema-name" = @dms_schema
root.metadata."table-name" = @dms_table
meta dms_partition_key = "%v.%v".format(root.data.id, root.data.region)
meta dms_operation = "load"
`

type batchFn func(context.Context, service.MessageBatch) ([]service.MessageBatch, error)

func mappingProcessor(tb testing.TB, mapping string) batchFn {
	spec := service.NewConfigSpec().Field(service.NewProcessorField("p"))
	conf, err := spec.ParseYAML("p:\n  mapping: |\n"+indentLines(mapping, "    "), nil)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := conf.FieldProcessor("p")
	if err != nil {
		tb.Fatal(err)
	}
	return p.ProcessBatch
}

func indentLines(s, pfx string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString(pfx + l + "\n")
	}
	return b.String()
}

// runRows processes n rows through fn in batches of benchBatch messages.
// The messages are made once (8 batches, cycled) and their bodies reset
// before each pass, so the timing holds the processor and what it does to
// the messages (SetBytes, metadata), plus reading the output bytes as an
// output would, and not the making of messages.
func runRows(b *testing.B, n int, gen func(int) row, fn batchFn) (wall, cpu time.Duration) {
	const nb = 8
	var batches [nb]service.MessageBatch
	var raws [nb][][]byte
	for k := range batches {
		rows := make([]row, benchBatch)
		for j := range rows {
			rows[j] = gen(k*benchBatch + j)
			raws[k] = append(raws[k], []byte(rows[j].body))
		}
		batches[k] = mkBatch(rows...)
	}
	start, cpu0 := time.Now(), cpuTime()
	for done, k := 0, 0; done < n; done, k = done+benchBatch, (k+1)%nb {
		batch := batches[k]
		if m := n - done; m < benchBatch {
			batch = batch[:m]
		}
		for j, m := range batch {
			m.SetBytes(raws[k][j])
		}
		out, err := fn(context.Background(), batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, ob := range out {
			for _, m := range ob {
				if m.GetError() != nil {
					b.Fatalf("row failed: %v", m.GetError())
				}
				if _, err := m.AsBytes(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	return time.Since(start), cpuTime() - cpu0
}

// cpuTime is the CPU time the process has used. The machine running the
// benchmarks is shared, so rates are reported per CPU-second (what one core
// does) next to wall-clock rates.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pairedRatio measures the processor (fn) against the mapping in rounds,
// each round running one then the other on about 0.1 s of rows, alternating
// which goes first, and returns the median over the rounds of the mapping's
// rate (rows per CPU-second) and of the ratio of the two rates within a
// round. Each run starts after a collection (runtime.GC), so that neither
// is charged for collecting the other's garbage: the mapping allocates
// about 14 KB per row. The machine is shared and its speed moves within seconds: a ratio
// of two measurements taken side by side moves far less than one of a
// processor run and a baseline taken at another moment, and the median
// keeps one disturbed round from deciding it.
func pairedRatio(b *testing.B, gen func(int) row, fn, mapping batchFn) (base, ratio float64) {
	const rounds = 7
	const procRows, mapRows = 100000, 4000
	runRows(b, 2000, gen, mapping) // warm-up
	bases := make([]float64, 0, rounds)
	ratios := make([]float64, 0, rounds)
	for r := 0; r < rounds; r++ {
		proc := func() (c time.Duration) {
			runtime.GC()
			_, c = runRows(b, procRows, gen, fn)
			return c
		}
		mapp := func() (c time.Duration) {
			runtime.GC()
			_, c = runRows(b, mapRows, gen, mapping)
			return c
		}
		var cp, cm time.Duration
		if r%2 == 0 {
			cp, cm = proc(), mapp()
		} else {
			cm, cp = mapp(), proc()
		}
		pr, mr := procRows/cp.Seconds(), mapRows/cm.Seconds()
		bases = append(bases, mr)
		ratios = append(ratios, pr/mr)
	}
	return median(bases), median(ratios)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// shippedGOGC is the garbage-collector setting of the dmsbridge binary
// (defaultGOGC in cmd/dmsbridge/main.go: GOGC=400 unless GOGC is set). The
// benchmarks run the processor and the mapping baseline alike with the
// setting the binary ships with; GOGC in the environment overrides it, as it
// does for the binary (GOGC=100 measures Go's default).
const shippedGOGC = 400

func withShippedGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(shippedGOGC)
	return func() { debug.SetGCPercent(old) }
}

func benchTable(b *testing.B, conf string, gen func(int) row, mapping string) {
	defer withShippedGC()()
	b.Run("dms_csv_to_json", func(b *testing.B) {
		p := newTestProc(b, conf+"max_workers: 1\n")
		runRows(b, 2000, gen, p.ProcessBatch)
		base, ratio := pairedRatio(b, gen, p.ProcessBatch, mappingProcessor(b, mapping))
		b.ReportAllocs()
		b.ResetTimer()
		d, c := runRows(b, b.N, gen, p.ProcessBatch)
		rate := float64(b.N) / c.Seconds()
		b.ReportMetric(float64(b.N)/d.Seconds(), "rows/s")
		b.ReportMetric(rate, "rows/cpu-s")
		b.ReportMetric(base, "mapping_rows/cpu-s")
		b.ReportMetric(ratio, "x_mapping")
	})
	b.Run("mapping", func(b *testing.B) {
		fn := mappingProcessor(b, mapping)
		runRows(b, 2000, gen, fn)
		b.ReportAllocs()
		b.ResetTimer()
		d, c := runRows(b, b.N, gen, fn)
		b.ReportMetric(float64(b.N)/d.Seconds(), "rows/s")
		b.ReportMetric(float64(b.N)/c.Seconds(), "rows/cpu-s")
	})
}

// BenchmarkReferenceTable: table01 of the reference architecture
// (ingest_time TIMESTAMP pk, doi STRING(30), id INT8, value NUMERIC(5,2),
// data_sig STRING(10)).
func BenchmarkReferenceTable(b *testing.B) {
	benchTable(b, "table_definition: ./testdata/reference.json\nmessage_format: json-unformatted\n", refRow, refMapping)
}

// BenchmarkMixed20: a 20-column table with every DMS type, quoted fields
// and doubled quotes.
func BenchmarkMixed20(b *testing.B) {
	benchTable(b, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\n", mixedRowN, mixedMapping)
}

// The rows the benchmarks use are valid and convert as expected.
func TestBenchmarkRowsConvert(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/reference.json\nmessage_format: json-unformatted\n")
	for i := 0; i < 3000; i += 7 {
		m := process(t, p, refRow(i))[0]
		mustOK(t, m)
	}
	p = newTestProc(t, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\n")
	for i := 0; i < 3000; i += 7 {
		m := process(t, p, mixedRowN(i))[0]
		mustOK(t, m)
	}
	for _, mp := range []string{refMapping, mixedMapping} {
		fn := mappingProcessor(t, mp)
		gen := refRow
		if mp == mixedMapping {
			gen = mixedRowN
		}
		out, err := fn(context.Background(), mkBatch(gen(5)))
		if err != nil || out[0][0].GetError() != nil {
			t.Fatalf("baseline mapping fails: %v %v", err, out[0][0].GetError())
		}
	}
}
