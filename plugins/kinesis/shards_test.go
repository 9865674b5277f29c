package kinesis

import (
	"crypto/md5"
	"math/big"
	"strings"
	"testing"
)

func TestHashPartitionKeyIsBigEndianMD5(t *testing.T) {
	for _, k := range []string{"a", "public.tags.138756", "Test.Customers", "ключ", strings.Repeat("x", 256)} {
		sum := md5.Sum([]byte(k))
		want := new(big.Int).SetBytes(sum[:]).String()
		if got := hashPartitionKey(k).String(); got != want {
			t.Errorf("hash(%q) = %s, want %s", k, got, want)
		}
	}
}

func TestParseHashKey(t *testing.T) {
	ok := map[string]string{
		"0":                    "0",
		"1":                    "1",
		"18446744073709551615": "18446744073709551615", // 2^64-1
		"18446744073709551616": "18446744073709551616", // 2^64
		"340282366920938463463374607431768211455": "340282366920938463463374607431768211455", // 2^128-1
		"170141183460469231731687303715884105728": "170141183460469231731687303715884105728",
	}
	for in, want := range ok {
		v, err := parseHashKey(in)
		if err != nil {
			t.Errorf("parseHashKey(%q): %v", in, err)
			continue
		}
		if v.String() != want {
			t.Errorf("parseHashKey(%q) = %s", in, v)
		}
	}
	for _, in := range []string{"", "01", "-1", "1.5", "12a", " 1",
		"340282366920938463463374607431768211456",  // 2^128
		"999999999999999999999999999999999999999",  // 39 digits, too big
		"1000000000000000000000000000000000000000", // 40 digits
	} {
		if _, err := parseHashKey(in); err == nil {
			t.Errorf("parseHashKey(%q) accepted", in)
		}
	}
}

func TestShardMapRoutes(t *testing.T) {
	h := func(s string) u128 {
		v, err := parseHashKey(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	m, err := newShardMap([]shardRange{
		{id: "b", start: h("170141183460469231731687303715884105728"), end: h("340282366920938463463374607431768211455")},
		{id: "a", start: h("0"), end: h("170141183460469231731687303715884105727")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"0": "a", "170141183460469231731687303715884105727": "a",
		"170141183460469231731687303715884105728": "b", "340282366920938463463374607431768211455": "b",
	}
	for k, want := range cases {
		if got := m.route(h(k)); got != want {
			t.Errorf("route(%s) = %s, want %s", k, got, want)
		}
	}
	// A gap (half-done reshard) routes to the unknown shard.
	gap, _ := newShardMap([]shardRange{{id: "a", start: h("0"), end: h("10")}, {id: "b", start: h("20"), end: h("30")}})
	if got := gap.route(h("15")); got != unknownShard {
		t.Errorf("gap routed to %s", got)
	}
	if got := gap.route(h("31")); got != unknownShard {
		t.Errorf("past the end routed to %s", got)
	}
	if _, err := newShardMap([]shardRange{{id: "a", start: h("0"), end: h("10")}, {id: "b", start: h("10"), end: h("30")}}); err == nil {
		t.Error("overlapping ranges accepted")
	}
}

func TestParseStream(t *testing.T) {
	r, err := parseStream("dms-target_1.x")
	if err != nil || r.name != "dms-target_1.x" || r.arn != "" {
		t.Fatalf("name: %+v %v", r, err)
	}
	arn := "arn:aws:kinesis:eu-west-1:123456789012:stream/dms-target"
	r, err = parseStream(arn)
	if err != nil || r.name != "dms-target" || r.arn != arn || r.region() != "eu-west-1" {
		t.Fatalf("arn: %+v %v", r, err)
	}
	r, err = parseStream("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s")
	if err != nil || r.region() != "cn-north-1" {
		t.Fatalf("china arn: %+v %v", r, err)
	}
	for in, wantErr := range map[string]string{
		"":                                    "must not be empty",
		"has space":                           "not a valid stream name",
		"a/b":                                 "not a valid stream name",
		"arn:aws:s3:::bucket":                 "must look like",
		"arn:aws:kinesis:us-east-1:1:table/x": "must end with stream/<name>",
		"arn:aws:kinesis:us-east-1:1:stream/": "must end with stream/<name>",
		"arn:aws:kinesis::123:stream/x":       "must look like",
		strings.Repeat("n", 129):              "not a valid stream name",
	} {
		_, err := parseStream(in)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("parseStream(%q) = %v, want error containing %q", in, err, wantErr)
		}
	}
}
