package kinesis

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/encoding/cbor"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// toCBOR converts a value decoded from JSON (UseNumber) into smithy-go's
// CBOR model, which encodes with definite lengths.
func toCBOR(v any) cbor.Value {
	switch x := v.(type) {
	case map[string]any:
		m := cbor.Map{}
		for k, e := range x {
			m[k] = toCBOR(e)
		}
		return m
	case []any:
		l := cbor.List{}
		for _, e := range x {
			l = append(l, toCBOR(e))
		}
		return l
	case string:
		return cbor.String(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			if i < 0 {
				return cbor.NegInt(uint64(-i)) // smithy-go: NegInt(n) is -n
			}
			return cbor.Uint(uint64(i))
		}
		f, _ := x.Float64()
		return cbor.Float64(f)
	case bool:
		return cbor.Bool(x)
	case nil:
		return &cbor.Nil{}
	}
	panic(fmt.Sprintf("%T", v))
}

func jsonToCBOR(t testing.TB, s string) []byte {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return cbor.Encode(toCBOR(v))
}

// indefinite re-encodes a definite-length CBOR item with indefinite lengths
// everywhere (maps, arrays, and strings split into two chunks), the form a
// streaming encoder such as the one of the AWS SDK for Java writes.
func indefinite(t testing.TB, v cbor.Value) []byte {
	t.Helper()
	var out []byte
	var enc func(v cbor.Value)
	str := func(major byte, s []byte) {
		out = append(out, major<<5|31)
		h := len(s) / 2
		out = append(cborHead(out, major, uint64(h)), s[:h]...)
		out = append(cborHead(out, major, uint64(len(s)-h)), s[h:]...)
		out = append(out, 0xff)
	}
	enc = func(v cbor.Value) {
		switch x := v.(type) {
		case cbor.Map:
			out = append(out, cborMap<<5|31)
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				str(cborText, []byte(k))
				enc(x[k])
			}
			out = append(out, 0xff)
		case cbor.List:
			out = append(out, cborArray<<5|31)
			for _, e := range x {
				enc(e)
			}
			out = append(out, 0xff)
		case cbor.String:
			str(cborText, []byte(x))
		case cbor.Slice:
			str(cborBytes, x)
		default:
			out = append(out, cbor.Encode(v)...)
		}
	}
	enc(v)
	return out
}

// TestPutRecordsCBORBodyHoldsTheRecords decodes the CBOR body with smithy-go's
// decoder (not ours) and compares it with the records, and with the JSON
// body of the same records: same members, data as raw bytes.
func TestPutRecordsCBORBodyHoldsTheRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hk := "170141183460469231731687303715884105728"
	var recs []*record
	for i, n := range []int{0, 1, 23, 24, 255, 256, 65535, 65536, 1 << 20} {
		d := make([]byte, n)
		for j := range d {
			d[j] = byte(rng.Uint32())
		}
		r := &record{key: fmt.Sprintf("key-%d-é-😀", i), data: d}
		if i%3 == 1 {
			r.hashKey = &hk
		}
		recs = append(recs, r)
	}
	for _, stream := range []streamRef{{name: "dms-target"}, {arn: "arn:aws:kinesis:us-east-1:123456789012:stream/dms-target"}} {
		body := appendPutRecordsCBOR([]byte("junk"), recs, stream)[4:]
		v, err := cbor.Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		var jv map[string]any
		if err := json.Unmarshal(appendPutRecordsBody(nil, recs, stream), &jv); err != nil {
			t.Fatal(err)
		}
		m := v.(cbor.Map)
		if len(m) != len(jv) {
			t.Fatalf("members: CBOR %d, JSON %d", len(m), len(jv))
		}
		if stream.arn != "" && m["StreamARN"] != cbor.String(stream.arn) || stream.arn == "" && m["StreamName"] != cbor.String(stream.name) {
			t.Fatalf("stream member: %v", m)
		}
		got := m["Records"].(cbor.List)
		jrecs := jv["Records"].([]any)
		if len(got) != len(recs) || len(jrecs) != len(recs) {
			t.Fatalf("%d records in CBOR, %d in JSON, %d sent", len(got), len(jrecs), len(recs))
		}
		for i, r := range recs {
			g := got[i].(cbor.Map)
			if len(g) != len(jrecs[i].(map[string]any)) {
				t.Fatalf("record %d: members %v", i, g)
			}
			if !bytes.Equal(g["Data"].(cbor.Slice), r.data) || g["PartitionKey"] != cbor.String(r.key) {
				t.Fatalf("record %d differs", i)
			}
			if r.hashKey != nil && g["ExplicitHashKey"] != cbor.String(*r.hashKey) {
				t.Fatalf("record %d: hash key %v", i, g["ExplicitHashKey"])
			}
		}
	}
}

// putAnswer is a PutRecords answer in JSON, with failures, nulls and
// members the decoder does not know (nested, tagged, floats).
const putAnswer = `{"FailedRecordCount":2,"EncryptionType":"KMS","Unknown":{"a":[1,-2,3.5,true,null,{"b":"c"}]},"Records":[
 {"SequenceNumber":"49655413416893413618734283470530461329034127937126023170","ShardId":"shardId-000000000001"},
 {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-000000000001 in stream s."},
 {"ShardId":"shardId-000000000000","SequenceNumber":"2","Extra":[{"x":1}],"ErrorCode":null},
 {"ErrorCode":"InternalFailure","ErrorMessage":"été"}]}`

// TestDecodeCBORAnswersLikeJSON: the same answer in JSON, in definite CBOR
// and in indefinite CBOR (chunked strings) decodes to the same output.
func TestDecodeCBORAnswersLikeJSON(t *testing.T) {
	want := new(putCall)
	if err := want.decode([]byte(putAnswer)); err != nil {
		t.Fatal(err)
	}
	def := jsonToCBOR(t, putAnswer)
	v, _ := cbor.Decode(def)
	tagged := v.(cbor.Map)
	tagged["Unknown"] = &cbor.Tag{ID: 1, Value: cbor.Float32(1.5)}
	for name, body := range map[string][]byte{
		"definite":   def,
		"indefinite": indefinite(t, v),
		"tagged":     cbor.Encode(tagged),
	} {
		pc := new(putCall)
		if err := pc.decodeCBOR(body); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, w := dumpOut(&pc.out), dumpOut(&want.out); got != w || pc.out.EncryptionType != want.out.EncryptionType {
			t.Fatalf("%s:\n got %s\nwant %s", name, got, w)
		}
	}
}

// TestDecodeCBORRejectsMalformedAnswers: every cut of a valid answer, a
// trailing byte, wrong member types and bad heads are errors, never a
// partial result taken for success.
func TestDecodeCBORRejectsMalformedAnswers(t *testing.T) {
	body := jsonToCBOR(t, putAnswer)
	for n := 0; n < len(body); n++ {
		if err := new(putCall).decodeCBOR(body[:n]); err == nil {
			t.Fatalf("answer cut at %d of %d bytes decoded", n, len(body))
		}
	}
	bad := map[string][]byte{
		"trailing byte":        append(append([]byte(nil), body...), 0),
		"no Records":           jsonToCBOR(t, `{"FailedRecordCount":0}`),
		"not a map":            jsonToCBOR(t, `[]`),
		"count as text":        jsonToCBOR(t, `{"FailedRecordCount":"1","Records":[]}`),
		"negative count":       jsonToCBOR(t, `{"FailedRecordCount":-1,"Records":[]}`),
		"shard id as number":   jsonToCBOR(t, `{"Records":[{"ShardId":1}]}`),
		"records as map":       jsonToCBOR(t, `{"Records":{}}`),
		"reserved head":        {0xa1, 0x67, 'R', 'e', 'c', 'o', 'r', 'd', 's', 0x1c},
		"stray break":          {0xa1, 0x67, 'R', 'e', 'c', 'o', 'r', 'd', 's', 0xff},
		"invalid UTF-8 text":   {0xa1, 0x67, 'R', 'e', 'c', 'o', 'r', 'd', 's', 0x81, 0xa1, 0x67, 'S', 'h', 'a', 'r', 'd', 'I', 'd', 0x61, 0xff},
		"huge array length":    {0xa1, 0x67, 'R', 'e', 'c', 'o', 'r', 'd', 's', 0x9b, 0xff, 0, 0, 0, 0, 0, 0, 0},
		"deep nesting skipped": append(append([]byte{0xa2, 0x61, 'x'}, bytes.Repeat([]byte{0x81}, 100)...), 0x00, 0x67, 'R', 'e', 'c', 'o', 'r', 'd', 's', 0x80),
	}
	for name, b := range bad {
		if err := new(putCall).decodeCBOR(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	pc := new(putCall)
	if err := pc.decodeCBOR(jsonToCBOR(t, `{"Records":null,"FailedRecordCount":0}`)); err != nil || len(pc.out.Records) != 0 {
		t.Fatalf("null records: %v", err)
	}
}

// TestCBORToJSON: error answers are transcoded member for member.
func TestCBORToJSON(t *testing.T) {
	in := `{"__type":"ResourceNotFoundException","message":"Stream s under account 1 not found.","n":[0,-1,23,24,-25,4294967296,-4294967297,1.5,true,false,null]}`
	for name, body := range map[string][]byte{"definite": jsonToCBOR(t, in), "indefinite": indefinite(t, mustDecode(t, jsonToCBOR(t, in)))} {
		got, err := cborToJSON(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%s: %s: %v", name, got, err)
		}
		_ = json.Unmarshal([]byte(in), &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s:\n got %s\nwant %s", name, got, in)
		}
	}
	if got, err := cborToJSON(cbor.Encode(cbor.Map{"b": cbor.Slice{0, 1, 255}, "t": &cbor.Tag{ID: 1, Value: cbor.Uint(7)}, "u": &cbor.Undefined{}})); err != nil ||
		string(got) != `{"b":"AAH/","t":7,"u":null}` && string(got) != `{"b":"AAH/","u":null,"t":7}` && !json.Valid(got) {
		t.Fatalf("%s, %v", got, err)
	}
	if _, err := cborToJSON([]byte{0xa1, 0x01, 0x02}); err == nil {
		t.Fatal("a map with an integer key transcoded")
	}
}

func mustDecode(t testing.TB, b []byte) cbor.Value {
	t.Helper()
	v, err := cbor.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCBORErrorsClassifyLikeJSON: the error answers of
// TestFastErrorsClassifyLikeSDK, sent in CBOR to a client in protocol: cbor,
// give the error (text, code, type, class) the SDK gives for the JSON answer.
// Answers that are not CBOR (an empty 413, an HTML 502) are read as such.
func TestCBORErrorsClassifyLikeJSON(t *testing.T) {
	var cur atomic.Pointer[errReply]
	var asCBOR atomic.Bool
	srv, got := captureServer(t, func(w http.ResponseWriter, _ []byte) {
		r := cur.Load()
		for k, v := range r.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("X-Amzn-Requestid", "req-123")
		body := []byte(r.body)
		if asCBOR.Load() && strings.HasPrefix(r.body, "{") {
			body = jsonToCBOR(t, r.body)
			w.Header().Set("Content-Type", cborContentType)
		}
		w.WriteHeader(r.status)
		_, _ = w.Write(body)
	})
	sdk := sdkTestClient(srv.URL, nil)
	fast := newFastClient(sdk, streamRef{name: "s"})
	fast.cbor = true
	recs := []*record{{key: "k", data: []byte("v")}}
	ctx := context.Background()
	for _, c := range errorAnswerCases() {
		t.Run(c.name, func(t *testing.T) {
			cur.Store(&c.r)
			asCBOR.Store(false)
			_, sErr := sdk.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: sdkEntries(recs)})
			asCBOR.Store(true)
			_, fErr := fast.putRecordsFast(ctx, new(putCall), recs)
			if sErr == nil || fErr == nil {
				t.Fatalf("SDK %v, cbor %v", sErr, fErr)
			}
			checkSameError(t, c, sErr, fErr)
		})
	}
	reqs := got()
	last := reqs[len(reqs)-1]
	if ct := last.header.Get("Content-Type"); ct != cborContentType {
		t.Fatalf("cbor request sent as %q", ct)
	}
	if _, err := cbor.Decode(last.body); err != nil {
		t.Fatalf("cbor request body: %v", err)
	}
}

// TestCBORConfig: cbor is refused with sdk_client (it needs the own path),
// and an unknown protocol is refused; both name the field.
func TestCBORConfig(t *testing.T) {
	for yaml, want := range map[string]string{
		"stream: s\nprotocol: cbor\nsdk_client: true\n": "protocol: cbor needs the output's own PutRecords path",
		"stream: s\nprotocol: xml\n":                    "protocol",
	} {
		pc, err := outputSpec().ParseYAML(yaml, nil)
		if err == nil {
			_, err = parseOutputConfig(pc)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v", yaml, err)
		}
	}
}

// TestCBORIntoKinesisMock writes through the output with protocol: cbor
// into kinesis-mock (an independent Kinesis implementation that takes
// CBOR; kinesalite truncates CBOR answers over 16 KiB), full 500-record
// requests and binary data, and reads every record back: same bytes, per-key
// order, routed to the shard the output computed.
func TestCBORIntoKinesisMock(t *testing.T) {
	ep := mustEnv(t, "KINESIS_MOCK_ENDPOINT")
	c := clientAt(t, ep)
	stream := newStreamAt(t, c, 2)
	o := newKinesaliteOutput(t, fmt.Sprintf(`
stream: %s
region: %s
endpoint: %s
credentials: {id: %s, secret: %s}
protocol: cbor
shard_rate: {records_per_second: 0, bytes_per_second: 0}
backoff: {initial_interval: 20ms, max_interval: 500ms, max_elapsed_time: 30s}
`, stream, mustEnv(t, "AWS_REGION"), ep, mustEnv(t, "AWS_ACCESS_KEY_ID"), mustEnv(t, "AWS_SECRET_ACCESS_KEY")))
	if !o.client.(*fastClient).cbor {
		t.Fatal("the output's client does not send CBOR")
	}
	keys := keysN(40)
	next := map[string]int{}
	var batches []service.MessageBatch
	for i := 0; i < 3; i++ {
		b := makeBatch(keys, 1000, 180, next)
		// Binary data: every byte value, after the test record's prefix.
		for j, m := range b {
			d, _ := m.AsBytes()
			tail := make([]byte, 8)
			binary.BigEndian.PutUint64(tail, uint64(i*1000+j)*0x9e3779b97f4a7c15)
			m.SetBytes(append(append([]byte(nil), d...), tail...))
		}
		if err := o.WriteBatch(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	recs := readStreamAt(t, c, stream)
	checkSentOnce(t, recs, batches...)
	if dup := checkOrder(t, byKey(recs), next, true); dup != 0 {
		t.Fatalf("%d copies without any fault", dup)
	}
	m := o.smap.Load()
	for _, r := range recs {
		if got := m.route(hashPartitionKey(r.key)); got != r.shard {
			t.Fatalf("key %s: routed to %s, stored in %s", r.key, got, r.shard)
		}
	}
	if n := o.st.requests.Load(); n < 6 {
		t.Fatalf("%d requests for 3000 records over 2 shards", n)
	}

	// A deleted stream answers ResourceNotFoundException in CBOR: the same
	// typed error as in JSON.
	if _, err := c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(stream)}); err != nil {
		t.Fatal(err)
	}
	fc := o.client.(*fastClient)
	// kinesis-mock keeps the stream DELETING for 500 ms (ResourceInUseException).
	var nfErr error
	var api smithy.APIError
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, nfErr = fc.putRecordsFast(context.Background(), new(putCall), []*record{{key: "k", data: []byte("v")}})
		if errors.As(nfErr, &api) && api.ErrorCode() == "ResourceNotFoundException" {
			break
		}
	}
	if !errors.As(nfErr, &api) || api.ErrorCode() != "ResourceNotFoundException" || classify(context.Background(), nfErr) != errConnection {
		t.Fatalf("after DeleteStream: %v", nfErr)
	}
	var typed *types.ResourceNotFoundException
	if !errors.As(nfErr, &typed) {
		t.Fatalf("not the SDK's typed error: %T", api)
	}
}

// The body of a CBOR request is a quarter smaller than the JSON one for the
// DMS records of the reference table (what the documentation says).
func TestCBORBodyIsSmaller(t *testing.T) {
	data := []byte(`{"data":{"ingest_time":"2024-01-01T00:00:00Z","doi":"10.1000/xyz123","id":123456,"value":123.45,"data_sig":"abcdef0123"},"metadata":{"timestamp":"2024-01-01T00:00:00.000000Z","record-type":"data","operation":"load","partition-key-type":"primary-key","schema-name":"schema01","table-name":"table01"}}` + "\n")
	var recs []*record
	for i := 0; i < 500; i++ {
		recs = append(recs, &record{key: fmt.Sprintf("2024-01-01T00:%02d:%02dZ", i/60, i%60), data: data})
	}
	j := len(appendPutRecordsBody(nil, recs, streamRef{name: "s"}))
	c := len(appendPutRecordsCBOR(nil, recs, streamRef{name: "s"}))
	if r := float64(c) / float64(j); r > 0.8 || r < 0.7 {
		t.Fatalf("CBOR body %d bytes, JSON %d: ratio %.2f", c, j, r)
	}
	_ = io.Discard
}

// TestDecodeCBORChunkedStrings: an indefinite string is its chunks joined;
// a chunk of another type or itself indefinite is refused.
func TestDecodeCBORChunkedStrings(t *testing.T) {
	ok := []byte{0xa2, 0x6e, 'E', 'n', 'c', 'r', 'y', 'p', 't', 'i', 'o', 'n', 'T', 'y', 'p', 'e', 0x7f, 0x61, 'K', 0x62, 'M', 'S', 0xff,
		0x67, 'R', 'e', 'c', 'o', 'r', 'd', 's', 0x80}
	pc := new(putCall)
	if err := pc.decodeCBOR(ok); err != nil || pc.out.EncryptionType != "KMS" {
		t.Fatalf("%v %q", err, pc.out.EncryptionType)
	}
	for _, chunk := range [][]byte{{0x41, 'K'}, {0x7f, 0x61, 'K', 0xff}} {
		bad := append(append([]byte{0xa2, 0x6e, 'E', 'n', 'c', 'r', 'y', 'p', 't', 'i', 'o', 'n', 'T', 'y', 'p', 'e', 0x7f}, chunk...),
			0xff, 0x67, 'R', 'e', 'c', 'o', 'r', 'd', 's', 0x80)
		if err := new(putCall).decodeCBOR(bad); err == nil {
			t.Errorf("chunk % x accepted", chunk)
		}
	}
}

// TestCBORBrokenAnswerSaysSetJSON: a complete but malformed CBOR answer
// (kinesalite's, cut at 16 KiB) is a retried unknown outcome, like any
// broken answer, and its error says how to end it.
func TestCBORBrokenAnswerSaysSetJSON(t *testing.T) {
	answer := jsonToCBOR(t, `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]}`)
	srv, _ := captureServer(t, func(w http.ResponseWriter, _ []byte) {
		w.Header().Set("Content-Type", cborContentType)
		_, _ = w.Write(answer[:len(answer)-5])
	})
	fast := newFastClient(sdkTestClient(srv.URL, nil), streamRef{name: "s"})
	fast.cbor = true
	_, err := fast.putRecordsFast(context.Background(), new(putCall), []*record{{key: "k", data: []byte("v")}})
	if err == nil || classify(context.Background(), err) != errRetryUnknown || !strings.Contains(err.Error(), "set protocol: json") {
		t.Fatalf("%v", err)
	}
}
