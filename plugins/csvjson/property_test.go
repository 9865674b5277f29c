package csvjson

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// prop is one generated value: the CSV text written and the JSON expected
// back (as decoded with UseNumber; nil when the column is NULL).
type prop struct {
	csv    string
	quote  bool // write the field quoted (rfc4180)
	null   bool
	expect any
	check  func(got any) bool
}

func genProp(t *rapid.T, col string, nullMarker bool) prop {
	if col != "i8" && rapid.IntRange(0, 9).Draw(t, col+"_null") == 0 {
		if nullMarker {
			return prop{csv: `\N`, null: true}
		}
		return prop{csv: "", null: true}
	}
	num := func(s string) prop { return prop{csv: s, expect: json.Number(s)} }
	switch col {
	case "i8":
		return num(strconv.FormatInt(rapid.Int64().Draw(t, col), 10))
	case "i4":
		return num(strconv.FormatInt(int64(rapid.Int32().Draw(t, col)), 10))
	case "u8":
		return num(strconv.FormatUint(rapid.Uint64().Draw(t, col), 10))
	case "num":
		neg := rapid.Bool().Draw(t, "neg")
		ip := rapid.StringMatching(`[0-9]{1,32}`).Draw(t, "int")
		fp := rapid.StringMatching(`[0-9]{0,6}`).Draw(t, "frac")
		in := ip
		if fp != "" {
			in += "." + fp
		}
		want := strings.TrimLeft(ip, "0")
		if want == "" {
			want = "0"
		}
		want += "." + fp + strings.Repeat("0", 6-len(fp))
		if strings.Trim(want, "0.") != "" && neg {
			in, want = "-"+in, "-"+want
		} else if neg {
			in = "-" + in
		}
		return prop{csv: in, expect: json.Number(want)}
	case "r8":
		f := rapid.Float64().Filter(func(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }).Draw(t, col)
		return prop{csv: strconv.FormatFloat(f, 'g', -1, 64), check: func(got any) bool {
			n, ok := got.(json.Number)
			g, err := strconv.ParseFloat(string(n), 64)
			return ok && err == nil && g == f
		}}
	case "r4":
		f := rapid.Float32().Filter(func(f float32) bool { return !math.IsInf(float64(f), 0) && !math.IsNaN(float64(f)) }).Draw(t, col)
		return prop{csv: strconv.FormatFloat(float64(f), 'g', -1, 32), check: func(got any) bool {
			n, ok := got.(json.Number)
			g, err := strconv.ParseFloat(string(n), 32)
			return ok && err == nil && float32(g) == f
		}}
	case "b":
		v := rapid.Bool().Draw(t, col)
		spell := map[bool][]string{true: {"true", "T", "1", "yes", "Y"}, false: {"false", "F", "0", "no", "N"}}[v]
		return prop{csv: rapid.SampledFrom(spell).Draw(t, "spelling"), expect: v}
	case "d":
		d := time.Date(rapid.IntRange(1, 9999).Draw(t, "y"), time.January, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rapid.IntRange(0, 364).Draw(t, "yd"))
		return prop{csv: d.Format("2006-01-02"), expect: d.Format("2006-01-02")}
	case "ts":
		d := time.Date(rapid.IntRange(1, 9999).Draw(t, "ty"), time.Month(rapid.IntRange(1, 12).Draw(t, "tm")), rapid.IntRange(1, 28).Draw(t, "td"),
			rapid.IntRange(0, 23).Draw(t, "th"), rapid.IntRange(0, 59).Draw(t, "tmin"), rapid.IntRange(0, 59).Draw(t, "ts"), rapid.IntRange(0, 999999999).Draw(t, "tn"), time.UTC)
		sep := rapid.SampledFrom([]string{" ", "T"}).Draw(t, "sep")
		in := d.Format("2006-01-02" + sep + "15:04:05.999999999")
		want := d.Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z")
		if d.Nanosecond()/1000 == 0 {
			want = d.Format("2006-01-02T15:04:05Z")
		}
		return prop{csv: in, expect: want}
	case "s":
		s := rapid.StringOfN(rapid.OneOf(rapid.Rune(), rapid.SampledFrom([]rune{',', '"', '\n', '\r', '\\', '\u2028', 0})), 0, 60, 200).Draw(t, col)
		quote := s == "" || strings.ContainsAny(s, ",\"\r\n") || s == `\N` || rapid.Bool().Draw(t, "q")
		return prop{csv: s, quote: quote, expect: s}
	case "bin":
		b := rapid.SliceOfN(rapid.Byte(), 0, 16).Draw(t, col)
		in := hex.EncodeToString(b)
		if rapid.Bool().Draw(t, "upper") {
			in = strings.ToUpper(in)
		}
		if len(b) == 0 && !nullMarker {
			return prop{csv: "", null: true} // an empty field is NULL without a marker
		}
		return prop{csv: in, expect: "0x" + strings.ToUpper(hex.EncodeToString(b))}
	}
	panic(col)
}

// Random typed values -> CSV row -> processor -> parsed JSON -> equal values.
func TestPropertyRoundTrip(t *testing.T) {
	cols := []string{"i8", "i4", "u8", "num", "r8", "r4", "b", "d", "ts", "s", "bin"}
	procs := map[bool]*Processor{
		false: newTestProc(t, "table_definition: ./testdata/property.json\nmessage_format: json-unformatted\ninclude_null_and_empty: true\n"),
		true:  newTestProc(t, "table_definition: ./testdata/property.json\nmessage_format: json\ninclude_null_and_empty: true\ncsv_null_value: '\\N'\n"),
	}
	rapid.Check(t, func(t *rapid.T) {
		marker := rapid.Bool().Draw(t, "marker")
		var props []prop
		var fields []string
		for _, c := range cols {
			p := genProp(t, c, marker)
			props = append(props, p)
			f := p.csv
			if p.quote {
				f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
			}
			fields = append(fields, f)
		}
		line := strings.Join(fields, ",")
		res, err := procs[marker].ProcessBatch(context.Background(), mkBatch(fullLoad("p", "prop", "k", 1, line)))
		if err != nil || len(res) != 1 || len(res[0]) != 1 {
			t.Fatalf("ProcessBatch: %v", err)
		}
		out := res[0]
		if err := out[0].GetError(); err != nil {
			t.Fatalf("row %q: %v", line, err)
		}
		b, _ := out[0].AsBytes()
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var doc struct {
			Data map[string]any `json:"data"`
		}
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, b)
		}
		for i, c := range cols {
			got, present := doc.Data[c]
			p := props[i]
			switch {
			case !present:
				t.Fatalf("column %s missing in %s", c, b)
			case p.null:
				if got != nil {
					t.Fatalf("column %s: want null for %q, got %v", c, p.csv, got)
				}
			case p.check != nil:
				if !p.check(got) {
					t.Fatalf("column %s: %q rendered as %v", c, p.csv, got)
				}
			case fmt.Sprint(got) != fmt.Sprint(p.expect):
				t.Fatalf("column %s: %q rendered as %#v, want %#v\nrow %q\n%s", c, p.csv, got, p.expect, line, b)
			}
		}
	})
}
