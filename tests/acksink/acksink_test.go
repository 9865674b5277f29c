package acksink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

func TestSinkAcknowledgesAndCounts(t *testing.T) {
	s, err := Start("127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		// Bodies from memory: the SDK's body-close race would otherwise send
		// the 500 records twice now and then (see testutil.BufferedBody).
		HTTPClient: testutil.BufferedBody{C: awshttp.NewBuildableClient()}})
	if !s.LastAck().IsZero() {
		t.Fatalf("last ack %v before any record", s.LastAck())
	}
	before := time.Now()
	var entries []ktypes.PutRecordsRequestEntry
	for i := 0; i < 500; i++ {
		entries = append(entries, ktypes.PutRecordsRequestEntry{Data: []byte(fmt.Sprintf("r%03d", i)), PartitionKey: aws.String("k")})
	}
	out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("x"), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 500 || aws.ToInt32(out.FailedRecordCount) != 0 || s.Records() != 500 || s.Bytes() != 2000 {
		t.Fatalf("records %d failed %d counted %d bytes %d", len(out.Records), aws.ToInt32(out.FailedRecordCount), s.Records(), s.Bytes())
	}
	afterPut := time.Now()
	if la := s.LastAck(); la.Before(before) || la.After(afterPut) {
		t.Fatalf("last ack %v, want between %v and %v", la, before, afterPut)
	}
	ls, err := c.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("x")})
	if err != nil || len(ls.Shards) != 3 {
		t.Fatalf("list shards: %v %d", err, len(ls.Shards))
	}
	if got := aws.ToString(ls.Shards[2].HashKeyRange.EndingHashKey); got != "340282366920938463463374607431768211455" {
		t.Fatalf("last shard ends at %s", got)
	}
	sum, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("x")})
	if err != nil || aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount) != 3 {
		t.Fatalf("describe: %v", err)
	}
	resp, err := http.Post(s.URL()+"/", "text/plain", strings.NewReader("a\nb\nc"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("plain post: %v", err)
	}
	if s.Records() != 503 {
		t.Fatalf("after plain post: %d records", s.Records())
	}
	// Describing the stream is no acknowledgement; the plain post is.
	if !s.LastAck().After(afterPut) {
		t.Fatalf("last ack %v not moved by the plain post (put answered before %v)", s.LastAck(), afterPut)
	}
	cr, err := http.Get(s.URL() + "/count")
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Body.Close()
	var count struct {
		Records, Bytes int64
		LastUnixNano   int64 `json:"last_unix_nano"`
	}
	if err := json.NewDecoder(cr.Body).Decode(&count); err != nil {
		t.Fatal(err)
	}
	if count.Records != 503 || count.LastUnixNano != s.LastAck().UnixNano() {
		t.Fatalf("/count %+v, want 503 records, last ack %d", count, s.LastAck().UnixNano())
	}
}

// putRecordsBody is a PutRecords body as the AWS SDK sends it (compact JSON,
// base64 data), one record per data slice.
func putRecordsBody(t testing.TB, keys []string, data [][]byte, indent bool) []byte {
	var req putRecords
	for i := range data {
		req.Records = append(req.Records, struct {
			Data         []byte `json:"Data"`
			PartitionKey string `json:"PartitionKey"`
		}{data[i], keys[i%len(keys)]})
	}
	req.StreamName = "s"
	var b []byte
	var err error
	if indent {
		b, err = json.MarshalIndent(req, "", "  ")
	} else {
		b, err = json.Marshal(req)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCountPutRecordsMatchesFullDecode(t *testing.T) {
	// Data of every padding length, and partition keys that contain what the
	// scan looks for.
	var data [][]byte
	for n := 0; n < 40; n++ {
		data = append(data, []byte(strings.Repeat("x", n)))
	}
	keys := []string{`k`, `"Data":"`, `a"b`, `\"Data\":\"zz`, `é"Data":"=`}
	for _, indent := range []bool{false, true} {
		body := putRecordsBody(t, keys, data, indent)
		n, bytes, err := countPutRecords(body)
		wn, wbytes, werr := decodePutRecords(body)
		if err != nil || werr != nil || n != wn || bytes != wbytes {
			t.Fatalf("indent %v: scan %d records %d bytes (%v), decode %d records %d bytes (%v)", indent, n, bytes, err, wn, wbytes, werr)
		}
		if n != 40 || bytes != 39*40/2 {
			t.Fatalf("indent %v: %d records %d bytes, want 40 and 780", indent, n, bytes)
		}
	}
	if _, _, err := countPutRecords([]byte(`{"Records":[{"Data":"abc`)); err == nil {
		t.Fatal("a truncated body was accepted")
	}
	if _, _, err := countPutRecords([]byte(`not json`)); err == nil {
		t.Fatal("a body that is not JSON was accepted")
	}
}

// BenchmarkCountPutRecords: the scan against a full JSON decode of the same
// 500-record body (the sink's cost per request), reported as a ratio.
func BenchmarkCountPutRecords(b *testing.B) {
	var data [][]byte
	for i := 0; i < 500; i++ {
		data = append(data, []byte(strings.Repeat("d", 300)))
	}
	body := putRecordsBody(b, []string{"2026-01-01T00:00:00Z"}, data, false)
	// The baseline, timed by hand (testing.Benchmark cannot run inside a
	// benchmark): full decodes for at least 200 ms.
	var decodes int
	start := time.Now()
	for time.Since(start) < 200*time.Millisecond {
		_, _, _ = decodePutRecords(body)
		decodes++
	}
	decodeNs := float64(time.Since(start).Nanoseconds()) / float64(decodes)
	b.ResetTimer()
	for b.Loop() {
		_, _, _ = countPutRecords(body)
	}
	scanNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(decodeNs/scanNs, "x_faster_than_decode")
	b.ReportMetric(decodeNs/500, "decode_ns/record")
	b.ReportMetric(scanNs/500, "scan_ns/record")
}

// TestSinkTakesCBOR: a PutRecords body in CBOR (protocol: cbor) is counted
// like its JSON twin, definite or indefinite lengths, and answered in CBOR
// with one success entry per record; a broken body is refused.
func TestSinkTakesCBOR(t *testing.T) {
	s, err := Start("127.0.0.1:0", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := cbor.List{}
	for i := 0; i < 300; i++ {
		recs = append(recs, cbor.Map{"Data": cbor.Slice(fmt.Sprintf("r%03d\x00\xff", i)), "PartitionKey": cbor.String("k"),
			"ExplicitHashKey": cbor.String("1")})
	}
	definite := cbor.Encode(cbor.Map{"Records": recs, "StreamName": cbor.String("x")})
	// The same with an indefinite-length outer map.
	indef := append(append([]byte{0xbf}, definite[1:]...), 0xff)
	for i, body := range [][]byte{definite, indef} {
		resp, err := postCBOR(s.URL(), body)
		if err != nil {
			t.Fatal(err)
		}
		ans, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != cborContentType {
			t.Fatalf("body %d: %s %q", i, resp.Status, resp.Header.Get("Content-Type"))
		}
		v, err := cbor.Decode(ans)
		if err != nil {
			t.Fatalf("answer: %v", err)
		}
		m := v.(cbor.Map)
		if m["FailedRecordCount"] != cbor.Uint(0) || len(m["Records"].(cbor.List)) != 300 {
			t.Fatalf("answer %v", m["FailedRecordCount"])
		}
		e := m["Records"].(cbor.List)[299].(cbor.Map)
		if e["ShardId"] != cbor.String("shardId-000000000000") || e["SequenceNumber"] != cbor.String(fmt.Sprint((i+1)*300)) {
			t.Fatalf("last entry %v", e)
		}
	}
	if s.Records() != 600 || s.Bytes() != 600*6 {
		t.Fatalf("counted %d records, %d bytes", s.Records(), s.Bytes())
	}
	resp, err := postCBOR(s.URL(), definite[:len(definite)-3])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || s.Records() != 600 {
		t.Fatalf("cut body: %s, %d records counted", resp.Status, s.Records())
	}
}

func postCBOR(url string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", cborContentType)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecords")
	return http.DefaultClient.Do(req)
}
