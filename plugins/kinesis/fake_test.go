package kinesis

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// fakeKinesis is an in-process Kinesis speaking the real JSON 1.1 wire
// protocol for PutRecords, ListShards and DescribeStreamSummary, with MD5
// routing, closed and open shards, and programmable faults. It exists for
// fault injection; the real-protocol checks run against kinesalite.
type fakeKinesis struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	stream   string
	shards   []*fakeShard
	calls    int
	requests []fakeRequest // every PutRecords received (before faults)
	// recordFault, if set, returns an error code for one entry of a
	// PutRecords call (call is 1-based), or "" to accept it.
	recordFault func(call int, e fakeEntry) string
	// requestFault, if set, may answer the whole call: an HTTP status and
	// an error type, or status 0 to go on. apply tells whether the
	// records are stored before answering (an ambiguous failure).
	requestFault func(call int) (status int, errType string, apply bool)
	// onPut runs after each PutRecords was handled (not under mu).
	onPut func(call int)
	// latency delays each PutRecords (set it under mu while requests run).
	latency time.Duration
	// hold, while set (under mu), keeps each PutRecords unanswered until
	// it is closed: a Kinesis that stops answering. A held request is
	// carried out on release even if its client gave up (counted in
	// abandoned), as Kinesis does.
	hold      chan struct{}
	abandoned int
	// inflight tracks concurrent PutRecords per shard of the first entry.
	inflight    map[string]int
	maxInflight int
	lastARN     string
}

type fakeShard struct {
	id         string
	start, end *big.Int
	closed     bool
	records    []fakeEntry
}

type fakeEntry struct {
	Data            []byte
	PartitionKey    string
	ExplicitHashKey string
}

type fakeRequest struct {
	entries []fakeEntry
	bytes   int
}

var maxHash = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

func newFakeKinesis(t testing.TB, stream string, nShards int) *fakeKinesis {
	f := &fakeKinesis{t: t, stream: stream, inflight: map[string]int{}}
	step := new(big.Int).Div(new(big.Int).Add(maxHash, big.NewInt(1)), big.NewInt(int64(nShards)))
	for i := 0; i < nShards; i++ {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == nShards-1 {
			end = new(big.Int).Set(maxHash)
		}
		f.shards = append(f.shards, &fakeShard{id: fmt.Sprintf("shardId-%012d", i), start: start, end: end})
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKinesis) hashOf(e fakeEntry) *big.Int {
	if e.ExplicitHashKey != "" {
		v, _ := new(big.Int).SetString(e.ExplicitHashKey, 10)
		return v
	}
	sum := md5.Sum([]byte(e.PartitionKey))
	return new(big.Int).SetBytes(sum[:])
}

// shardFor returns the open shard owning e. Caller holds mu.
func (f *fakeKinesis) shardFor(e fakeEntry) *fakeShard {
	h := f.hashOf(e)
	for _, s := range f.shards {
		if !s.closed && s.start.Cmp(h) <= 0 && s.end.Cmp(h) >= 0 {
			return s
		}
	}
	f.t.Errorf("fake: no open shard for hash %s", h)
	return f.shards[0]
}

// stored returns all records in write order per partition key.
func (f *fakeKinesis) byKey() map[string][][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][][]byte{}
	for _, s := range f.shards {
		for _, e := range s.records {
			out[e.PartitionKey] = append(out[e.PartitionKey], e.Data)
		}
	}
	return out
}

func (f *fakeKinesis) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.shards {
		n += len(s.records)
	}
	return n
}

// idle reports whether no PutRecords is being handled.
func (f *fakeKinesis) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.inflight {
		if n > 0 {
			return false
		}
	}
	return true
}

func (f *fakeKinesis) writeErr(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func (f *fakeKinesis) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	target := r.Header.Get("X-Amz-Target")
	var req struct {
		StreamName string
		StreamARN  string
		NextToken  string
		Records    []struct {
			Data            string
			PartitionKey    string
			ExplicitHashKey string
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		f.writeErr(w, 400, "SerializationException", err.Error())
		return
	}
	name := req.StreamName
	if req.StreamARN != "" {
		f.mu.Lock()
		f.lastARN = req.StreamARN
		f.mu.Unlock()
		name = req.StreamARN[strings.LastIndex(req.StreamARN, "/")+1:]
	}
	if name != f.stream && req.NextToken == "" {
		f.writeErr(w, 400, "ResourceNotFoundException", "Stream "+name+" under account 000000000000 not found.")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch target {
	case "Kinesis_20131202.DescribeStreamSummary":
		f.mu.Lock()
		open := 0
		for _, s := range f.shards {
			if !s.closed {
				open++
			}
		}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"StreamDescriptionSummary": map[string]any{
			"StreamName": f.stream, "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/" + f.stream,
			"StreamStatus": "ACTIVE", "OpenShardCount": open, "RetentionPeriodHours": 24,
			"StreamCreationTimestamp": 1.7e9, "EnhancedMonitoring": []any{},
		}})
	case "Kinesis_20131202.ListShards":
		f.mu.Lock()
		var shards []map[string]any
		for _, s := range f.shards {
			rng := map[string]any{"StartingSequenceNumber": "1"}
			if s.closed {
				rng["EndingSequenceNumber"] = "9"
			}
			shards = append(shards, map[string]any{"ShardId": s.id,
				"HashKeyRange":        map[string]string{"StartingHashKey": s.start.String(), "EndingHashKey": s.end.String()},
				"SequenceNumberRange": rng})
		}
		f.mu.Unlock()
		// Two pages, to exercise NextToken.
		if req.NextToken == "" && len(shards) > 1 {
			_ = json.NewEncoder(w).Encode(map[string]any{"Shards": shards[:1], "NextToken": "page2"})
			return
		}
		if req.NextToken == "page2" {
			shards = shards[1:]
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"Shards": shards})
	case "Kinesis_20131202.PutRecords":
		f.putRecords(r.Context(), w, req.Records)
	default:
		f.writeErr(w, 400, "UnknownOperationException", target)
	}
}

func (f *fakeKinesis) putRecords(ctx context.Context, w http.ResponseWriter, in []struct {
	Data            string
	PartitionKey    string
	ExplicitHashKey string
}) {
	entries := make([]fakeEntry, len(in))
	size := 0
	for i, r := range in {
		d, err := base64.StdEncoding.DecodeString(r.Data)
		if err != nil {
			f.writeErr(w, 400, "SerializationException", err.Error())
			return
		}
		entries[i] = fakeEntry{Data: d, PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey}
		size += len(d) + len(r.PartitionKey)
	}
	if len(entries) > 500 {
		f.writeErr(w, 400, "ValidationException", "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to 500")
		return
	}
	if size > 5<<20 {
		f.writeErr(w, 400, "InvalidArgumentException", "Records size exceeds 5 MB limit")
		return
	}
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.requests = append(f.requests, fakeRequest{entries: entries, bytes: size})
	var sh string
	if len(entries) > 0 {
		sh = f.shardFor(entries[0]).id
	}
	f.inflight[sh]++
	if f.inflight[sh] > f.maxInflight {
		f.maxInflight = f.inflight[sh]
	}
	latency, hold := f.latency, f.hold
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight[sh]--
		f.mu.Unlock()
		if f.onPut != nil {
			f.onPut(call)
		}
	}()
	if latency > 0 {
		time.Sleep(latency)
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			f.mu.Lock()
			f.abandoned++
			f.mu.Unlock()
			<-hold
		}
	}
	status, typ, apply := 0, "", false
	if f.requestFault != nil {
		status, typ, apply = f.requestFault(call)
	}
	f.mu.Lock()
	type res struct {
		SequenceNumber string `json:",omitempty"`
		ShardId        string `json:",omitempty"`
		ErrorCode      string `json:",omitempty"`
		ErrorMessage   string `json:",omitempty"`
	}
	out := make([]res, len(entries))
	failed := 0
	for i, e := range entries {
		s := f.shardFor(e)
		code := ""
		if status == 0 && f.recordFault != nil {
			code = f.recordFault(call, e)
		}
		if code != "" {
			failed++
			out[i] = res{ErrorCode: code, ErrorMessage: "fake " + code + " on " + s.id}
			continue
		}
		if status != 0 && !apply {
			continue
		}
		s.records = append(s.records, e)
		out[i] = res{SequenceNumber: strconv.Itoa(len(s.records)), ShardId: s.id}
	}
	f.mu.Unlock()
	if status != 0 {
		f.writeErr(w, status, typ, "fake request fault")
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"FailedRecordCount": failed, "Records": out})
}

// client returns an SDK client for the fake, as the output builds one.
func (f *fakeKinesis) client() kinesisAPI {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.srv.URL),
		Credentials:  aws.NewCredentialsCache(staticCreds{}),
		Retryer:      aws.NopRetryer{},
	})
}

type staticCreds struct{}

func (staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "testkey", SecretAccessKey: "testsecret", Source: "test"}, nil
}
