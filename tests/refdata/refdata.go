// Package refdata generates the reference data set of the AWS Big Data Blog
// architecture "Streaming data from Amazon S3 to Amazon Kinesis Data Streams
// using AWS DMS": table schema01.table01 (ingest_time TIMESTAMP pk not null,
// doi STRING(30), id INT8, value NUMERIC(5,2), data_sig STRING(10)), full-load
// files schema01/table01/full_000..full_004 (about 5 MiB each, the last
// smaller) and CDC files cdcfile/cdc_000..cdc_003 (about 4.8 MiB each, mixed
// I/U/D on keys that exist), plus a manifest of the records a DMS-compatible
// pipeline must deliver.
//
// The output is deterministic for a given Options value: the same seed gives
// byte-identical files, so benchmarks and end-to-end tests compare like with
// like.
package refdata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// Definition is the reference table definition (shared/data/table-definition.json).
const Definition = `{
  "TableCount": "1",
  "Tables": [
    {
      "TableName": "table01",
      "TablePath": "schema01/table01/",
      "TableOwner": "schema01",
      "TableColumns": [
        { "ColumnName": "ingest_time", "ColumnType": "TIMESTAMP", "ColumnNullable": "false", "ColumnIsPk": "true" },
        { "ColumnName": "doi", "ColumnType": "STRING", "ColumnLength": "30" },
        { "ColumnName": "id", "ColumnType": "INT8" },
        { "ColumnName": "value", "ColumnType": "NUMERIC", "ColumnPrecision": "5", "ColumnScale": "2" },
        { "ColumnName": "data_sig", "ColumnType": "STRING", "ColumnLength": "10" }
      ],
      "TableColumnsTotal": "5"
    }
  ]
}
`

// Options size the data set.
type Options struct {
	FullFiles         int    // number of full-load files (5)
	FullFileBytes     int    // target size of each but the last (5 MiB)
	LastFullFileBytes int    // target size of the last (3.1 MiB)
	CDCFiles          int    // number of CDC files (4)
	CDCFileBytes      int    // target size of each (4.8 MiB)
	Seed              uint64 // random seed (1)
}

// Default is the published layout: 5.0, 5.0, 5.0, 5.0 and 3.1 MiB of full
// load, 4 x 4.8 MiB of CDC.
func Default() Options {
	return Options{FullFiles: 5, FullFileBytes: 5 << 20, LastFullFileBytes: 31 << 20 / 10, CDCFiles: 4, CDCFileBytes: 48 << 20 / 10, Seed: 1}
}

// Scaled is Default with every file size multiplied by f (0 < f).
func Scaled(f float64) Options {
	o := Default()
	o.FullFileBytes = int(float64(o.FullFileBytes) * f)
	o.LastFullFileBytes = int(float64(o.LastFullFileBytes) * f)
	o.CDCFileBytes = int(float64(o.CDCFileBytes) * f)
	return o
}

// Expected is one record the pipeline must deliver, in processing order.
type Expected struct {
	File      string         `json:"file"`
	Line      int            `json:"line"`
	Operation string         `json:"operation"` // load, insert, update, delete
	Schema    string         `json:"schema"`
	Table     string         `json:"table"`
	Key       string         `json:"key"` // the primary key as rendered in data (ingest_time)
	Data      map[string]any `json:"data"`
}

// File is one generated object.
type File struct {
	Key  string // relative to the bucket folder
	Body []byte
}

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type row struct {
	ts    int64 // seconds after base: the primary key
	doi   string
	id    int64
	value string
	sig   string
}

func (r row) csv(b *bytes.Buffer) {
	b.WriteString(base.Add(time.Duration(r.ts) * time.Second).Format("2006-01-02 15:04:05"))
	b.WriteByte(',')
	b.WriteString(r.doi)
	b.WriteByte(',')
	b.WriteString(strconv.FormatInt(r.id, 10))
	b.WriteByte(',')
	b.WriteString(r.value)
	b.WriteByte(',')
	b.WriteString(r.sig)
}

func (r row) key() string {
	return base.Add(time.Duration(r.ts) * time.Second).Format("2006-01-02T15:04:05Z")
}

func (r row) data() map[string]any {
	return map[string]any{
		"ingest_time": r.key(),
		"doi":         r.doi,
		"id":          json.Number(strconv.FormatInt(r.id, 10)),
		"value":       json.Number(r.value),
		"data_sig":    r.sig,
	}
}

const hexdigits = "0123456789abcdef"

func randRow(rng *rand.Rand, ts int64) row {
	n := 4 + rng.IntN(19) // doi suffix length: doi is 12..30 bytes, within STRING(30)
	suffix := make([]byte, n)
	for i := range suffix {
		suffix[i] = "abcdefghijklmnopqrstuvwxyz0123456789./-"[rng.IntN(39)]
	}
	sig := make([]byte, 10)
	for i := range sig {
		sig[i] = hexdigits[rng.IntN(16)]
	}
	// ids span the whole INT8 range, so digits beyond a double's 53 bits are exercised.
	id := int64(rng.Uint64())
	cents := rng.IntN(199999) - 99999 // -999.99 .. 999.99
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return row{
		ts:    ts,
		doi:   fmt.Sprintf("10.%04d/%s", rng.IntN(10000), suffix),
		id:    id,
		value: fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100),
		sig:   string(sig),
	}
}

// Generate builds the data set: files in processing order, and the manifest.
func Generate(o Options) ([]File, []Expected) {
	rng := rand.New(rand.NewPCG(o.Seed, 0x646d73))
	var files []File
	var manifest []Expected
	var live []row // rows that exist, in key order of creation
	liveIdx := map[int64]int{}
	var next int64

	for f := 0; f < o.FullFiles; f++ {
		target := o.FullFileBytes
		if f == o.FullFiles-1 {
			target = o.LastFullFileBytes
		}
		key := fmt.Sprintf("schema01/table01/full_%03d", f)
		var b bytes.Buffer
		line := 0
		for b.Len() < target {
			r := randRow(rng, next)
			next++
			r.csv(&b)
			b.WriteByte('\n')
			line++
			liveIdx[r.ts] = len(live)
			live = append(live, r)
			manifest = append(manifest, Expected{File: key, Line: line, Operation: "load", Schema: "schema01", Table: "table01", Key: r.key(), Data: r.data()})
		}
		files = append(files, File{Key: key, Body: b.Bytes()})
	}

	deleted := map[int64]bool{}
	pickLive := func() (row, bool) {
		for tries := 0; tries < 16 && len(live) > 0; tries++ {
			r := live[rng.IntN(len(live))]
			if !deleted[r.ts] {
				return r, true
			}
		}
		return row{}, false
	}
	for f := 0; f < o.CDCFiles; f++ {
		key := fmt.Sprintf("cdcfile/cdc_%03d", f)
		var b bytes.Buffer
		line := 0
		for b.Len() < o.CDCFileBytes {
			var op, word string
			var r row
			switch p := rng.IntN(10); {
			case p < 4: // update an existing row
				old, ok := pickLive()
				if !ok {
					continue
				}
				r = randRow(rng, old.ts)
				r.doi = old.doi
				live[liveIdx[r.ts]] = r
				op, word = "update", "U"
			case p < 6: // delete an existing row
				old, ok := pickLive()
				if !ok {
					continue
				}
				r = old
				deleted[r.ts] = true
				op, word = "delete", "D"
			default: // insert a new row
				r = randRow(rng, next)
				next++
				liveIdx[r.ts] = len(live)
				live = append(live, r)
				op, word = "insert", "I"
			}
			b.WriteString(word)
			b.WriteString(",table01,schema01,")
			r.csv(&b)
			b.WriteByte('\n')
			line++
			manifest = append(manifest, Expected{File: key, Line: line, Operation: op, Schema: "schema01", Table: "table01", Key: r.key(), Data: r.data()})
		}
		files = append(files, File{Key: key, Body: b.Bytes()})
	}
	return files, manifest
}
