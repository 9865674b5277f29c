package refdata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
)

// Delivered is one record as a consumer read it from the stream.
type Delivered struct {
	PartitionKey string
	Data         []byte
}

// Report is what Compare found.
type Report struct {
	Expected    int // records in the manifest
	Delivered   int // records read
	Unique      int // distinct manifest records delivered
	Duplicates  int // deliveries beyond the first of a manifest record
	Missing     []Expected
	Unexpected  []string // records that match no manifest entry
	OrderFaults []string // per-key order violations
}

// OK is true when nothing is missing, nothing unexpected and per-key order held.
func (r Report) OK() bool {
	return len(r.Missing) == 0 && len(r.Unexpected) == 0 && len(r.OrderFaults) == 0
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "expected %d, delivered %d, unique %d, duplicates %d, missing %d, unexpected %d, order faults %d",
		r.Expected, r.Delivered, r.Unique, r.Duplicates, len(r.Missing), len(r.Unexpected), len(r.OrderFaults))
	for i, m := range r.Missing {
		if i == 5 {
			b.WriteString("\n  ...")
			break
		}
		fmt.Fprintf(&b, "\n  missing %s line %d %s %s", m.File, m.Line, m.Operation, m.Key)
	}
	for i, u := range r.Unexpected {
		if i == 5 {
			b.WriteString("\n  ...")
			break
		}
		fmt.Fprintf(&b, "\n  unexpected %s", u)
	}
	for i, o := range r.OrderFaults {
		if i == 5 {
			b.WriteString("\n  ...")
			break
		}
		fmt.Fprintf(&b, "\n  order: %s", o)
	}
	return b.String()
}

type dmsRecord struct {
	Data     map[string]json.RawMessage `json:"data"`
	Metadata map[string]any             `json:"metadata"`
}

// signature identifies a record by operation, table and typed data values
// (numbers compared by value, so 5.10 and 5.1 are equal).
func signature(op, schema, table string, data map[string]json.RawMessage) (string, error) {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(op + "|" + schema + "." + table)
	for _, k := range keys {
		v := bytes.TrimSpace(data[k])
		b.WriteString("|" + k + "=")
		if len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
			r, ok := new(big.Rat).SetString(string(v))
			if !ok {
				return "", fmt.Errorf("column %s: %s is not a number", k, v)
			}
			b.WriteString("n:" + r.RatString())
			continue
		}
		b.Write(v)
	}
	return b.String(), nil
}

func expectedSignature(e Expected) string {
	raw := map[string]json.RawMessage{}
	for k, v := range e.Data {
		j, _ := json.Marshal(v)
		raw[k] = j
	}
	s, _ := signature(e.Operation, e.Schema, e.Table, raw)
	return s
}

// Compare checks delivered records against the manifest: every manifest
// record delivered at least once, nothing else delivered, and for every
// partition key the first deliveries in manifest order (a duplicate may repeat
// an earlier record). Kinesis orders records per partition key only, so that
// is the order checked; deliveries must be given in the order a consumer read
// them (e.g. shard by shard in sequence order).
func Compare(manifest []Expected, delivered []Delivered) Report {
	rep := Report{Expected: len(manifest), Delivered: len(delivered)}
	// Index the manifest: signature -> positions (a signature may repeat only
	// if a row is updated to identical values, which the generator avoids).
	bySig := map[string][]int{}
	for i, e := range manifest {
		s := expectedSignature(e)
		bySig[s] = append(bySig[s], i)
	}
	seen := make([]int, len(manifest))
	// Highest manifest index delivered so far, per primary key.
	lastByKey := map[string]int{}
	for _, d := range delivered {
		var rec dmsRecord
		if err := json.Unmarshal(d.Data, &rec); err != nil {
			rep.Unexpected = append(rep.Unexpected, fmt.Sprintf("not JSON (%v): %.120s", err, d.Data))
			continue
		}
		op, _ := rec.Metadata["operation"].(string)
		if rt, _ := rec.Metadata["record-type"].(string); rt == "control" {
			continue
		}
		schema, _ := rec.Metadata["schema-name"].(string)
		table, _ := rec.Metadata["table-name"].(string)
		sig, err := signature(op, schema, table, rec.Data)
		if err != nil {
			rep.Unexpected = append(rep.Unexpected, fmt.Sprintf("%v: %.120s", err, d.Data))
			continue
		}
		idxs := bySig[sig]
		if len(idxs) == 0 {
			rep.Unexpected = append(rep.Unexpected, fmt.Sprintf("%.160s", d.Data))
			continue
		}
		idx := idxs[0]
		for _, i := range idxs {
			if seen[i] == 0 {
				idx = i
				break
			}
		}
		seen[idx]++
		if seen[idx] > 1 {
			rep.Duplicates++
			continue
		}
		key := d.PartitionKey
		if last, ok := lastByKey[key]; ok && last > idx {
			rep.OrderFaults = append(rep.OrderFaults, fmt.Sprintf("partition key %s: %s line %d (%s) delivered after %s line %d (%s)",
				key, manifest[idx].File, manifest[idx].Line, manifest[idx].Operation,
				manifest[last].File, manifest[last].Line, manifest[last].Operation))
		}
		if idx > lastByKey[key] || !hasKey(lastByKey, key) {
			lastByKey[key] = idx
		}
	}
	for i, n := range seen {
		if n == 0 {
			rep.Missing = append(rep.Missing, manifest[i])
		} else {
			rep.Unique++
		}
	}
	return rep
}

func hasKey(m map[string]int, k string) bool { _, ok := m[k]; return ok }
