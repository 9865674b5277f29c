// Package acksink is an immediately-acknowledging Kinesis endpoint for
// benchmarks: it answers PutRecords (and PutRecord) with success for every
// entry without storing anything, describes a stream of a configurable number
// of shards (ListShards, DescribeStreamSummary, DescribeStream), and also
// accepts plain HTTP POSTs (one record per line) so that a baseline pipeline
// built from Benthos core components (http_client output) can be measured
// against the same sink. It counts records and bytes; GET /count returns
// {"records":N,"bytes":N,"last_unix_nano":T}, T being when the sink last
// answered a request that carried records (0 before the first): the moment
// the last record was acknowledged, which a benchmark polling the count
// would otherwise only see at its next poll.
package acksink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// Sink is a running endpoint.
type Sink struct {
	Shards  int
	records atomic.Int64
	bytes   atomic.Int64
	seq     atomic.Int64
	last    atomic.Int64 // unix nanoseconds of the last answer to records
	srv     *http.Server
	ln      net.Listener
}

// Start listens on addr ("127.0.0.1:0" for any port).
func Start(addr string, shards int) (*Sink, error) {
	if shards < 1 {
		shards = 1
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Sink{Shards: shards, ln: ln}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the endpoint's base URL.
func (s *Sink) URL() string { return "http://" + s.ln.Addr().String() }

// Records is the number of records acknowledged so far.
func (s *Sink) Records() int64 { return s.records.Load() }

// Bytes is the number of data bytes acknowledged so far.
func (s *Sink) Bytes() int64 { return s.bytes.Load() }

// LastAck is when the sink last answered a request carrying records (the
// zero time before the first).
func (s *Sink) LastAck() time.Time {
	if n := s.last.Load(); n > 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// acked counts a request's records, and stamps the time just before the
// answer is written.
func (s *Sink) acked(records, bytes int64) {
	s.records.Add(records)
	s.bytes.Add(bytes)
	s.last.Store(time.Now().UnixNano())
}

// Close stops the server.
func (s *Sink) Close() error { return s.srv.Close() }

type putRecords struct {
	Records []struct {
		Data         []byte `json:"Data"`
		PartitionKey string `json:"PartitionKey"`
	} `json:"Records"`
	StreamName string `json:"StreamName"`
}

var dataField = []byte(`"Data":"`)

// countPutRecords returns the number of records of a PutRecords body and the
// sum of their decoded data sizes. The body the AWS SDKs send (compact JSON,
// base64 data, which holds no quote or escape) is scanned for its "Data"
// fields without decoding anything, so that the sink costs next to nothing
// next to the pipeline it measures (a quote inside a partition key is escaped,
// so a key cannot fake a field). Any other body (whitespace, no Data field)
// is decoded in full.
func countPutRecords(body []byte) (records int, dataBytes int64, err error) {
	rest := body
	for {
		i := bytes.Index(rest, dataField)
		if i < 0 {
			break
		}
		rest = rest[i+len(dataField):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return decodePutRecords(body)
		}
		b64 := rest[:j]
		n := len(b64) / 4 * 3
		if len(b64) > 0 && b64[len(b64)-1] == '=' {
			n--
			if len(b64) > 1 && b64[len(b64)-2] == '=' {
				n--
			}
		}
		records++
		dataBytes += int64(n)
		rest = rest[j+1:]
	}
	if records == 0 {
		return decodePutRecords(body)
	}
	return records, dataBytes, nil
}

// decodePutRecords decodes a PutRecords body in full.
func decodePutRecords(body []byte) (records int, dataBytes int64, err error) {
	var req putRecords
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, 0, err
	}
	for _, rec := range req.Records {
		dataBytes += int64(len(rec.Data))
	}
	return len(req.Records), dataBytes, nil
}

func (s *Sink) shardsJSON() []map[string]any {
	out := make([]map[string]any, s.Shards)
	max := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(max, big.NewInt(int64(s.Shards)))
	for i := 0; i < s.Shards; i++ {
		lo := new(big.Int).Mul(step, big.NewInt(int64(i)))
		hi := new(big.Int).Sub(new(big.Int).Mul(step, big.NewInt(int64(i+1))), big.NewInt(1))
		if i == s.Shards-1 {
			hi = new(big.Int).Sub(max, big.NewInt(1))
		}
		out[i] = map[string]any{
			"ShardId":             fmt.Sprintf("shardId-%012d", i),
			"HashKeyRange":        map[string]string{"StartingHashKey": lo.String(), "EndingHashKey": hi.String()},
			"SequenceNumberRange": map[string]string{"StartingSequenceNumber": "1"},
		}
	}
	return out
}

// bufs holds the request and response buffers between requests: the sink
// shares the machine with the pipeline it measures, so it makes next to no
// garbage (reading each body with io.ReadAll made the sink's garbage
// collection about 40 % of its CPU).
var bufs = sync.Pool{New: func() any { return new([]byte) }}

// readBody reads the request body into b (reused), sized by Content-Length
// when the client sends one.
func readBody(r *http.Request, b []byte) ([]byte, error) {
	b = b[:0]
	if r.ContentLength > int64(cap(b)) {
		b = make([]byte, 0, r.ContentLength)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/count" {
		_ = json.NewEncoder(w).Encode(map[string]int64{"records": s.Records(), "bytes": s.Bytes(), "last_unix_nano": s.last.Load()})
		return
	}
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	body, err := readBody(r, *bp)
	*bp = body
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	if target == "" {
		// Plain HTTP: one record per line (a batch from http_client).
		n := int64(bytes.Count(body, []byte("\n")))
		if len(body) > 0 && body[len(body)-1] != '\n' {
			n++
		}
		s.acked(n, int64(len(body)))
		w.WriteHeader(http.StatusOK)
		return
	}
	if target == "Kinesis_20131202.PutRecords" && r.Header.Get("Content-Type") == cborContentType {
		// The same answer in CBOR (protocol: cbor).
		w.Header().Set("Content-Type", cborContentType)
		records, n, err := countPutRecordsCBOR(body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("SerializationException"), "message": cbor.String(err.Error())}))
			return
		}
		op := bufs.Get().(*[]byte)
		defer bufs.Put(op)
		*op = appendCBORAnswer((*op)[:0], s.seq.Add(int64(records))-int64(records), records)
		s.acked(int64(records), n)
		w.Header().Set("Content-Length", strconv.Itoa(len(*op)))
		_, _ = w.Write(*op)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if target == "Kinesis_20131202.PutRecords" {
		records, n, err := countPutRecords(body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"__type":"SerializationException","message":%q}`, err.Error())
			return
		}
		op := bufs.Get().(*[]byte)
		defer bufs.Put(op)
		out := append((*op)[:0], `{"FailedRecordCount":0,"Records":[`...)
		seq := s.seq.Add(int64(records)) - int64(records)
		for i := 0; i < records; i++ {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, `{"SequenceNumber":"`...)
			out = strconv.AppendInt(out, seq+int64(i)+1, 10)
			out = append(out, `","ShardId":"shardId-000000000000"}`...)
		}
		out = append(out, `]}`...)
		*op = out
		s.acked(int64(records), n)
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		_, _ = w.Write(out)
		return
	}
	name := "sink"
	var probe struct{ StreamName string }
	_ = json.Unmarshal(body, &probe)
	if probe.StreamName != "" {
		name = probe.StreamName
	}
	arn := "arn:aws:kinesis:us-east-1:000000000000:stream/" + name
	switch target {
	case "Kinesis_20131202.PutRecord":
		var req struct{ Data []byte }
		_ = json.Unmarshal(body, &req)
		s.acked(1, int64(len(req.Data)))
		_, _ = fmt.Fprintf(w, `{"SequenceNumber":"%d","ShardId":"shardId-000000000000"}`, s.seq.Add(1))
	case "Kinesis_20131202.ListShards":
		_ = json.NewEncoder(w).Encode(map[string]any{"Shards": s.shardsJSON()})
	case "Kinesis_20131202.DescribeStreamSummary":
		_ = json.NewEncoder(w).Encode(map[string]any{"StreamDescriptionSummary": map[string]any{
			"StreamName": name, "StreamARN": arn, "StreamStatus": "ACTIVE", "OpenShardCount": s.Shards,
			"RetentionPeriodHours": 24, "StreamCreationTimestamp": 1.7e9, "EnhancedMonitoring": []any{},
			"StreamModeDetails": map[string]string{"StreamMode": "PROVISIONED"},
		}})
	case "Kinesis_20131202.DescribeStream":
		_ = json.NewEncoder(w).Encode(map[string]any{"StreamDescription": map[string]any{
			"StreamName": name, "StreamARN": arn, "StreamStatus": "ACTIVE", "Shards": s.shardsJSON(),
			"HasMoreShards": false, "RetentionPeriodHours": 24, "StreamCreationTimestamp": 1.7e9, "EnhancedMonitoring": []any{},
		}})
	default:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"__type":"UnknownOperationException","message":"acksink does not implement %s"}`, target)
	}
}
