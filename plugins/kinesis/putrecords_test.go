package kinesis

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// captured is one request as the server received it.
type captured struct {
	method, path, host string
	header             http.Header
	body               []byte
}

// captureServer records every request and answers with answer(body).
func captureServer(t *testing.T, answer func(w http.ResponseWriter, body []byte)) (*httptest.Server, func() []captured) {
	t.Helper()
	var mu sync.Mutex
	var reqs []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading request: %v", err)
			return
		}
		mu.Lock()
		reqs = append(reqs, captured{method: r.Method, path: r.URL.RequestURI(), host: r.Host, header: r.Header.Clone(), body: body})
		mu.Unlock()
		answer(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []captured {
		mu.Lock()
		defer mu.Unlock()
		return append([]captured(nil), reqs...)
	}
}

func sdkTestClient(url string, creds aws.CredentialsProvider) *kinesis.Client {
	if creds == nil {
		creds = aws.NewCredentialsCache(staticCreds{})
	}
	return kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, Retryer: aws.NopRetryer{},
	})
}

// trickyRecords has partition keys and data that exercise every escaping
// rule: quotes, backslashes, control characters, DEL, HTML characters,
// U+2028/2029, astral characters, invalid UTF-8, and explicit hash keys.
func trickyRecords() []*record {
	keys := []string{
		"public.orders.1", `quote"back\slash`, "nl\ncr\rtab\tnul\x00bell\x07", "del\x7f<>&'", "line\u2028para\u2029",
		"日本語キー", "emoji😀key", "bad\xffutf8\xc3", "\x1f", strings.Repeat("k", 256),
	}
	var recs []*record
	for i, k := range keys {
		r := &record{key: k, data: []byte(fmt.Sprintf(`{"i":%d,"bin":"%s"}`, i, string([]byte{0, 1, 0xfe, 0xff})))}
		if i%3 == 1 {
			h := fmt.Sprint(uint64(i) * 123456789012345)
			r.hashKey = &h
		}
		recs = append(recs, r)
	}
	recs = append(recs, &record{key: "empty-data", data: []byte{}})
	return recs
}

func sdkEntries(recs []*record) []types.PutRecordsRequestEntry {
	var es []types.PutRecordsRequestEntry
	for _, r := range recs {
		es = append(es, types.PutRecordsRequestEntry{Data: r.data, PartitionKey: aws.String(r.key), ExplicitHashKey: r.hashKey})
	}
	return es
}

// resign signs a copy of a captured request (only its signed headers, its
// body) with the SDK signer at time at and returns the Authorization.
func resign(t *testing.T, c captured, url string, at time.Time) string {
	t.Helper()
	req, err := http.NewRequest(c.method, url+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = c.host
	auth := c.header.Get("Authorization")
	_, signed, ok := strings.Cut(auth, "SignedHeaders=")
	if !ok {
		t.Fatalf("no SignedHeaders in %q", auth)
	}
	signed, _, _ = strings.Cut(signed, ",")
	for _, h := range strings.Split(signed, ";") {
		if h == "host" || h == "x-amz-date" {
			continue
		}
		req.Header[http.CanonicalHeaderKey(h)] = c.header.Values(h)
	}
	sum := sha256.Sum256(c.body)
	creds, _ := staticCreds{}.Retrieve(context.Background())
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return req.Header.Get("Authorization")
}

// TestFastRequestMatchesSDK sends the same records through the SDK and the
// fast path to one server and compares what arrived: the body byte for byte,
// the protocol headers, and the signatures (each verified against its own
// X-Amz-Date, then both re-signed at one fixed time). The answers, decoded
// by each path, must be equal too.
func TestFastRequestMatchesSDK(t *testing.T) {
	answer := `{"EncryptionType":"KMS","FailedRecordCount":2,"Records":[` +
		`{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000000"},` +
		`{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-000000000001 in stream s under account 123456789012.\n\"quoted\" \u00e9"},` +
		` { "ShardId" : "shardId-000000000001" , "SequenceNumber" : "2", "Extra": {"a":[1,2,{"b":null}]} },` +
		`{"ErrorCode":"InternalFailure","ErrorMessage":null}`
	for i := 4; i < len(trickyRecords()); i++ {
		answer += fmt.Sprintf(`,{"SequenceNumber":"%d","ShardId":"shardId-00000000000%d"}`, 1000+i, i%4)
	}
	answer += `]}`
	srv, got := captureServer(t, func(w http.ResponseWriter, _ []byte) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, answer)
	})
	for _, stream := range []string{"dms-target", "arn:aws:kinesis:us-east-1:123456789012:stream/dms-target"} {
		t.Run(stream, func(t *testing.T) {
			ref, err := parseStream(stream)
			if err != nil {
				t.Fatal(err)
			}
			recs := trickyRecords()
			sdk := sdkTestClient(srv.URL, nil)
			in := &kinesis.PutRecordsInput{Records: sdkEntries(recs)}
			if ref.arn != "" {
				in.StreamARN = aws.String(ref.arn)
			} else {
				in.StreamName = aws.String(ref.name)
			}
			n0 := len(got())
			sdkOut, err := sdk.PutRecords(context.Background(), in)
			if err != nil {
				t.Fatalf("SDK: %v", err)
			}
			fast := newFastClient(sdk, ref)
			fastOut, err := fast.putRecordsFast(context.Background(), new(putCall), recs)
			if err != nil {
				t.Fatalf("fast: %v", err)
			}
			reqs := got()[n0:]
			if len(reqs) != 2 {
				t.Fatalf("%d requests", len(reqs))
			}
			s, f := reqs[0], reqs[1]
			if !bytes.Equal(s.body, f.body) {
				t.Fatalf("bodies differ:\nSDK  %s\nfast %s", s.body, f.body)
			}
			// And the body means what the records say.
			var doc struct {
				Records []struct {
					Data            []byte
					PartitionKey    string
					ExplicitHashKey *string
				}
				StreamName, StreamARN string
			}
			if err := json.Unmarshal(f.body, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.StreamName+doc.StreamARN != stream || len(doc.Records) != len(recs) {
				t.Fatalf("stream %q/%q, %d records", doc.StreamName, doc.StreamARN, len(doc.Records))
			}
			for i, r := range doc.Records {
				wantKey := strings.ToValidUTF8(recs[i].key, "\ufffd")
				if !bytes.Equal(r.Data, recs[i].data) || r.PartitionKey != wantKey || !reflect.DeepEqual(r.ExplicitHashKey, recs[i].hashKey) {
					t.Errorf("record %d decodes to %q %q %v", i, r.Data, r.PartitionKey, r.ExplicitHashKey)
				}
			}
			if s.method != "POST" || f.method != "POST" || s.path != "/" || f.path != "/" || s.host != f.host {
				t.Fatalf("SDK %s %s %s, fast %s %s %s", s.method, s.host, s.path, f.method, f.host, f.path)
			}
			for _, h := range []string{"Content-Type", "X-Amz-Target", "Content-Length"} {
				if s.header.Get(h) != f.header.Get(h) || f.header.Get(h) == "" {
					t.Errorf("%s: SDK %q, fast %q", h, s.header.Get(h), f.header.Get(h))
				}
			}
			if f.header.Get("X-Amz-Target") != "Kinesis_20131202.PutRecords" || f.header.Get("Content-Type") != "application/x-amz-json-1.1" {
				t.Errorf("fast headers %v", f.header)
			}
			for name, c := range map[string]captured{"SDK": s, "fast": f} {
				at, err := time.Parse("20060102T150405Z", c.header.Get("X-Amz-Date"))
				if err != nil {
					t.Fatalf("%s X-Amz-Date: %v", name, err)
				}
				if want := resign(t, c, srv.URL, at); c.header.Get("Authorization") != want {
					t.Errorf("%s signature does not verify:\n got %s\nwant %s", name, c.header.Get("Authorization"), want)
				}
			}
			if !reflect.DeepEqual(sdkOut.Records, fastOut.Records) || *sdkOut.FailedRecordCount != *fastOut.FailedRecordCount ||
				sdkOut.EncryptionType != fastOut.EncryptionType {
				t.Fatalf("decoded answers differ:\nSDK  %s\nfast %s", dumpOut(sdkOut), dumpOut(fastOut))
			}
			if *fastOut.Records[1].ErrorMessage != "Rate exceeded for shard shardId-000000000001 in stream s under account 123456789012.\n\"quoted\" é" {
				t.Fatalf("escaped message %q", *fastOut.Records[1].ErrorMessage)
			}
		})
	}
}

func dumpOut(o *kinesis.PutRecordsOutput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "failed=%v enc=%s", aws.ToInt32(o.FailedRecordCount), o.EncryptionType)
	for _, r := range o.Records {
		fmt.Fprintf(&b, " {%v %v %v %v}", aws.ToString(r.SequenceNumber), aws.ToString(r.ShardId), aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
	}
	return b.String()
}

// TestFastSignedHeadersMatchSDK: both paths sign the same protocol headers
// (the SDK adds its own amz-sdk-* bookkeeping headers, which the server
// ignores), and re-signed over those headers at one fixed time they give the
// same Authorization.
func TestFastSignedHeadersMatchSDK(t *testing.T) {
	srv, got := captureServer(t, func(w http.ResponseWriter, _ []byte) {
		_, _ = io.WriteString(w, `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]}`)
	})
	recs := []*record{{key: "k", data: []byte("v")}}
	sdk := sdkTestClient(srv.URL, nil)
	if _, err := sdk.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: sdkEntries(recs)}); err != nil {
		t.Fatal(err)
	}
	if _, err := newFastClient(sdk, streamRef{name: "s"}).putRecordsFast(context.Background(), new(putCall), recs); err != nil {
		t.Fatal(err)
	}
	reqs := got()
	protocol := func(c captured) captured {
		c.header = http.Header{}
		for _, h := range []string{"Content-Type", "X-Amz-Target", "Content-Length"} {
			c.header.Set(h, reqs[0].header.Get(h))
		}
		c.header.Set("Authorization", "SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-target,")
		return c
	}
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, b := resign(t, protocol(reqs[0]), srv.URL, fixed), resign(t, protocol(reqs[1]), srv.URL, fixed)
	if a != b {
		t.Fatalf("re-signed at a fixed time:\nSDK  %s\nfast %s", a, b)
	}
	signedBy := func(c captured) map[string]bool {
		_, s, _ := strings.Cut(c.header.Get("Authorization"), "SignedHeaders=")
		s, _, _ = strings.Cut(s, ",")
		m := map[string]bool{}
		for _, h := range strings.Split(s, ";") {
			if !strings.HasPrefix(h, "amz-sdk-") {
				m[h] = true
			}
		}
		return m
	}
	if sa, sb := signedBy(reqs[0]), signedBy(reqs[1]); !reflect.DeepEqual(sa, sb) {
		t.Fatalf("signed headers: SDK %v, fast %v", sa, sb)
	}
}

// errReply is an error answer of a Kinesis endpoint.
type errReply struct {
	status int
	header map[string]string
	body   string
}

// errorAnswerCases are error answers and the class and code the output
// must give them, on every request path.
func errorAnswerCases() []errorAnswerCase {
	return []errorAnswerCase{
		{"throttled", errReply{400, nil, `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded"}`}, errThrottle, "ProvisionedThroughputExceededException"},
		{"kms throttled", errReply{400, nil, `{"__type":"KMSThrottlingException","message":"slow down"}`}, errThrottle, "KMSThrottlingException"},
		{"not found", errReply{400, nil, `{"__type":"ResourceNotFoundException","message":"Stream s under account 1 not found."}`}, errConnection, "ResourceNotFoundException"},
		{"prefixed code", errReply{400, nil, `{"__type":"com.amazonaws.kinesis.v20131202#ResourceNotFoundException","Message":"gone"}`}, errConnection, "ResourceNotFoundException"},
		{"header code", errReply{400, map[string]string{"X-Amzn-ErrorType": "ExpiredTokenException:http://internal.amazon.com/"}, `{"message":"expired"}`}, errConnection, "ExpiredTokenException"},
		{"validation", errReply{400, nil, `{"__type":"ValidationException","message":"1 validation error detected"}`}, errInvalid, "ValidationException"},
		{"invalid argument", errReply{400, nil, `{"__type":"InvalidArgumentException","message":"Records size exceeds 5 MB limit"}`}, errInvalid, "InvalidArgumentException"},
		{"expired token", errReply{400, nil, `{"__type":"ExpiredTokenException","message":"The security token included in the request is expired"}`}, errConnection, "ExpiredTokenException"},
		{"unrecognized client", errReply{400, nil, `{"__type":"UnrecognizedClientException","message":"bad key"}`}, errConnection, "UnrecognizedClientException"},
		{"bad signature", errReply{403, nil, `{"__type":"InvalidSignatureException","message":"The request signature we calculated does not match"}`}, errConnection, "InvalidSignatureException"},
		{"access denied", errReply{400, nil, `{"__type":"AccessDeniedException","message":"not authorized to perform: kinesis:PutRecords"}`}, errFatal, "AccessDeniedException"},
		{"kms disabled", errReply{400, nil, `{"__type":"KMSDisabledException","message":"key disabled"}`}, errFatal, "KMSDisabledException"},
		{"internal failure", errReply{500, nil, `{"__type":"InternalFailure"}`}, errRetryUnknown, "InternalFailure"},
		{"unavailable", errReply{503, nil, `{"__type":"ServiceUnavailable","message":"try later"}`}, errRetryUnknown, "ServiceUnavailable"},
		{"413 empty", errReply{413, nil, ``}, errInvalid, "UnknownError"},
		{"502 html", errReply{502, map[string]string{"Content-Type": "text/html"}, `<html>bad gateway</html>`}, errRetryUnknown, ""},
		{"429 empty", errReply{429, nil, ``}, errThrottle, "UnknownError"},
	}
}

type errorAnswerCase struct {
	name string
	r    errReply
	want errClass
	code string
}

// TestFastErrorsClassifyLikeSDK answers both paths with the same error
// responses: the errors must carry the same code, message and text and
// classify the same, and the class must be the expected one.
func TestFastErrorsClassifyLikeSDK(t *testing.T) {
	type reply = errReply
	cases := errorAnswerCases()
	var cur atomic.Pointer[reply]
	srv, _ := captureServer(t, func(w http.ResponseWriter, _ []byte) {
		r := cur.Load()
		for k, v := range r.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("X-Amzn-Requestid", "req-123")
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, r.body)
	})
	sdk := sdkTestClient(srv.URL, nil)
	fast := newFastClient(sdk, streamRef{name: "s"})
	recs := []*record{{key: "k", data: []byte("v")}}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cur.Store(&c.r)
			_, sErr := sdk.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: sdkEntries(recs)})
			_, fErr := fast.putRecordsFast(ctx, new(putCall), recs)
			if sErr == nil || fErr == nil {
				t.Fatalf("SDK %v, fast %v", sErr, fErr)
			}
			checkSameError(t, c, sErr, fErr)
		})
	}
}

// checkSameError fails unless the own path's error fErr classifies as c
// wants and carries the SDK's error sErr's text, code, message and type.
func checkSameError(t *testing.T, c errorAnswerCase, sErr, fErr error) {
	t.Helper()
	ctx := context.Background()
	if sc, fc := classify(ctx, sErr), classify(ctx, fErr); sc != c.want || fc != c.want {
		t.Fatalf("classes: SDK %d, fast %d, want %d (%v / %v)", sc, fc, c.want, sErr, fErr)
	}
	if sErr.Error() != fErr.Error() {
		t.Errorf("error text:\nSDK  %v\nfast %v", sErr, fErr)
	}
	var sa, fa smithy.APIError
	if errors.As(sErr, &sa) != errors.As(fErr, &fa) {
		t.Fatalf("API error: SDK %T, fast %T", sErr, fErr)
	}
	if sa != nil && (sa.ErrorCode() != fa.ErrorCode() || sa.ErrorMessage() != fa.ErrorMessage() || reflect.TypeOf(sa) != reflect.TypeOf(fa)) {
		t.Errorf("API errors: SDK %T %s %q, fast %T %s %q", sa, sa.ErrorCode(), sa.ErrorMessage(), fa, fa.ErrorCode(), fa.ErrorMessage())
	}
	if c.code != "" && (fa == nil || fa.ErrorCode() != c.code) {
		t.Errorf("fast code %v, want %s", fa, c.code)
	}
}

// TestFastBrokenAnswersAreRetriedUnknown: a connection closed without an
// answer, a truncated answer and an unparsable answer are request errors
// with an unknown outcome, on both paths.
func TestFastBrokenAnswersAreRetriedUnknown(t *testing.T) {
	var mode atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		switch mode.Load() {
		case 0: // drop the connection
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		case 1: // promise more than is sent
			w.Header().Set("Content-Length", "500")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1",`)
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		case 2:
			_, _ = io.WriteString(w, `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1"`)
		}
	}))
	t.Cleanup(srv.Close)
	sdk := sdkTestClient(srv.URL, nil)
	fast := newFastClient(sdk, streamRef{name: "s"})
	recs := []*record{{key: "k", data: []byte("v")}}
	ctx := context.Background()
	for m, name := range []string{"dropped", "truncated", "unparsable"} {
		mode.Store(int32(m))
		_, sErr := sdk.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: sdkEntries(recs)})
		_, fErr := fast.putRecordsFast(ctx, new(putCall), recs)
		if sErr == nil || fErr == nil {
			t.Fatalf("%s: SDK %v, fast %v", name, sErr, fErr)
		}
		if sc, fc := classify(ctx, sErr), classify(ctx, fErr); sc != errRetryUnknown || fc != errRetryUnknown {
			t.Fatalf("%s: classes SDK %d, fast %d (%v / %v)", name, sc, fc, sErr, fErr)
		}
		t.Logf("%s: fast %v", name, fErr)
	}
}

// TestFastEndpointIsTheSDKs: without endpoint the request goes where the SDK
// sends it: the regional endpoint of each partition, the account endpoint
// for an ARN, FIPS when configured.
func TestFastEndpointIsTheSDKs(t *testing.T) {
	cases := []struct {
		region, stream string
		fips           bool
		want           string
	}{
		{"us-east-1", "s", false, "https://kinesis.us-east-1.amazonaws.com/"},
		{"eu-west-3", "s", false, "https://kinesis.eu-west-3.amazonaws.com/"},
		{"cn-north-1", "s", false, "https://kinesis.cn-north-1.amazonaws.com.cn/"},
		{"us-gov-west-1", "s", false, ""},
		{"us-east-1", "s", true, ""},
		{"us-east-1", "arn:aws:kinesis:us-east-1:123456789012:stream/s", false, ""},
		{"cn-north-1", "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s", false, ""},
	}
	for _, c := range cases {
		var sdkURL string
		rec := recordingHTTP(func(r *http.Request) { sdkURL = r.URL.String() })
		ref, err := parseStream(c.stream)
		if err != nil {
			t.Fatal(err)
		}
		client := kinesis.New(kinesis.Options{
			Region: c.region, Credentials: aws.NewCredentialsCache(staticCreds{}), Retryer: aws.NopRetryer{}, HTTPClient: rec,
		}, func(o *kinesis.Options) {
			if c.fips {
				o.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
			}
		})
		in := &kinesis.PutRecordsInput{Records: sdkEntries([]*record{{key: "k", data: []byte("v")}})}
		if ref.arn != "" {
			in.StreamARN = aws.String(ref.arn)
		} else {
			in.StreamName = aws.String(ref.name)
		}
		_, _ = client.PutRecords(context.Background(), in)
		got, err := newFastClient(client, ref).endpoint(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if got != sdkURL || (c.want != "" && got != c.want) {
			t.Errorf("%s %s fips=%v: fast %s, SDK %s, want %s", c.region, c.stream, c.fips, got, sdkURL, c.want)
		}
		t.Logf("%s %s fips=%v: %s", c.region, c.stream, c.fips, got)
	}
}

type recordingHTTP func(*http.Request)

func (f recordingHTTP) Do(r *http.Request) (*http.Response, error) {
	f(r)
	return nil, errors.New("not sent")
}

// expiringCreds hands out a new key each time: valid for an hour, or
// already expired while the test sets expired (no wall-clock race).
type expiringCreds struct {
	n       atomic.Int32
	expired atomic.Bool
}

func (e *expiringCreds) Retrieve(context.Context) (aws.Credentials, error) {
	n := e.n.Add(1)
	exp := time.Now().Add(time.Hour)
	if e.expired.Load() {
		exp = time.Now().Add(-time.Minute)
	}
	return aws.Credentials{AccessKeyID: fmt.Sprintf("AKID%d", n), SecretAccessKey: "secret", SessionToken: fmt.Sprintf("token%d", n),
		CanExpire: true, Expires: exp}, nil
}

type failingCreds struct{}

func (failingCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, errors.New("no EC2 IMDS role found")
}

// TestFastCredentialsRefreshAndFailures: credentials come from the client's
// cache (reused while valid, fetched again once expired, session token sent),
// and a credentials failure reconnects like a signing failure.
func TestFastCredentialsRefreshAndFailures(t *testing.T) {
	srv, got := captureServer(t, func(w http.ResponseWriter, _ []byte) {
		_, _ = io.WriteString(w, `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]}`)
	})
	prov := &expiringCreds{}
	fast := newFastClient(sdkTestClient(srv.URL, prov), streamRef{name: "s"})
	recs := []*record{{key: "k", data: []byte("v")}}
	put := func() {
		if _, err := fast.putRecordsFast(context.Background(), new(putCall), recs); err != nil {
			t.Fatal(err)
		}
	}
	// Keys handed out expired are used once, then fetched again; a valid
	// key is reused.
	prov.expired.Store(true)
	put()
	put()
	prov.expired.Store(false)
	put()
	put()
	reqs := got()
	keys := []string{}
	for _, r := range reqs {
		_, cred, _ := strings.Cut(r.header.Get("Authorization"), "Credential=")
		id, _, _ := strings.Cut(cred, "/")
		keys = append(keys, id+" "+r.header.Get("X-Amz-Security-Token"))
	}
	if want := []string{"AKID1 token1", "AKID2 token2", "AKID3 token3", "AKID3 token3"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("credentials used %v, want %v", keys, want)
	}

	bad := newFastClient(sdkTestClient(srv.URL, failingCreds{}), streamRef{name: "s"})
	_, err := bad.putRecordsFast(context.Background(), new(putCall), recs)
	if err == nil || classify(context.Background(), err) != errConnection || !strings.Contains(err.Error(), "no EC2 IMDS role found") {
		t.Fatalf("credentials failure: %v (class %d)", err, classify(context.Background(), err))
	}
}

// TestFastPathAllocations: encoding, signing, sending and decoding a request
// allocates about as much for 500 records as for 10: nothing per record.
func TestFastPathAllocations(t *testing.T) {
	answers := map[int][]byte{}
	recs := make([]*record, 500)
	for _, n := range []int{10, 500} {
		var b strings.Builder
		b.WriteString(`{"FailedRecordCount":0,"Records":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"SequenceNumber":"4959033827149025660855969253836157109592157598913658%04d","ShardId":"shardId-000000000001"}`, i)
		}
		b.WriteString(`]}`)
		answers[n] = []byte(b.String())
	}
	for i := range recs {
		recs[i] = &record{key: fmt.Sprintf("public.orders.%d", i), data: bytes.Repeat([]byte("x"), 200)}
	}
	var cur atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write(answers[int(cur.Load())])
	}))
	t.Cleanup(srv.Close)
	fast := newFastClient(sdkTestClient(srv.URL, nil), streamRef{name: "s"})
	pc := new(putCall)
	allocs := map[int]float64{}
	for _, n := range []int{10, 500} {
		cur.Store(int32(n))
		allocs[n] = testing.AllocsPerRun(50, func() {
			out, err := fast.putRecordsFast(context.Background(), pc, recs[:n])
			if err != nil || len(out.Records) != n || *out.Records[n-1].ShardId != "shardId-000000000001" {
				t.Fatalf("%v %v", out, err)
			}
		})
	}
	// The HTTP exchange (client and in-process server) allocates per
	// request, and a little more for a larger body (buffer growth).
	if allocs[500]-allocs[10] > 20 {
		t.Fatalf("allocations per request: %v for 10 records, %v for 500", allocs[10], allocs[500])
	}
	t.Logf("allocations per request: %v for 10 records, %v for 500", allocs[10], allocs[500])
}

// TestDecodeRejectsMalformedAnswers: what the scanner refuses.
func TestDecodeRejectsMalformedAnswers(t *testing.T) {
	for _, body := range []string{``, `[]`, `{"FailedRecordCount":0}`, `{"Records":[{"ShardId":1}]}`, `{"Records":[}`,
		`{"Records":[{"ShardId":"a"}]} x`, `{"Records":[{"ShardId":"a\q"}]}`, `{"FailedRecordCount":"1","Records":[]}`,
		`{"Records":[{"ShardId":"` + "\xff" + `"}]}`} {
		if err := new(putCall).decode([]byte(body)); err == nil {
			t.Errorf("%q decoded", body)
		}
	}
	pc := new(putCall)
	if err := pc.decode([]byte(" {\n\"Records\" : null , \"FailedRecordCount\":0}\n")); err != nil || len(pc.out.Records) != 0 {
		t.Fatalf("null records: %v", err)
	}
}

// TestAppendBase64MatchesStdEncoding: every length from 0 to 300 and random
// bytes, appended after existing content.
func TestAppendBase64MatchesStdEncoding(t *testing.T) {
	src := make([]byte, 300)
	for i := range src {
		src[i] = byte(i*131 + i*i*7 + 3)
	}
	for n := 0; n <= len(src); n++ {
		got := appendBase64([]byte("prefix"), src[:n])
		want := base64.StdEncoding.AppendEncode([]byte("prefix"), src[:n])
		if !bytes.Equal(got, want) {
			t.Fatalf("length %d:\n got %s\nwant %s", n, got, want)
		}
	}
}

// TestDecodeEntriesOfAnyShape: the plain-entry shortcut and the generic
// scanner give the same result, escapes and reordered members included.
func TestDecodeEntriesOfAnyShape(t *testing.T) {
	body := `{"FailedRecordCount":1,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"},` +
		`{"SequenceNumber":"2","ShardId":"shard\u0049d-1"},{"ShardId":"s3","SequenceNumber":"3"},` +
		`{"SequenceNumber":"4","ShardId":"s4","Extra":1},{"ErrorCode":"InternalFailure","ErrorMessage":"x"}]}`
	pc := new(putCall)
	if err := pc.decode([]byte(body)); err != nil {
		t.Fatal(err)
	}
	var want struct {
		FailedRecordCount int32
		Records           []struct{ SequenceNumber, ShardId, ErrorCode, ErrorMessage string }
	}
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatal(err)
	}
	if *pc.out.FailedRecordCount != want.FailedRecordCount || len(pc.out.Records) != len(want.Records) {
		t.Fatalf("%s", dumpOut(&pc.out))
	}
	for i, w := range want.Records {
		g := pc.out.Records[i]
		if aws.ToString(g.SequenceNumber) != w.SequenceNumber || aws.ToString(g.ShardId) != w.ShardId ||
			aws.ToString(g.ErrorCode) != w.ErrorCode || aws.ToString(g.ErrorMessage) != w.ErrorMessage {
			t.Errorf("entry %d: %s", i, dumpOut(&pc.out))
		}
	}
}

// TestPartitionKeyFromMetadata: with partition_key ${! @name } string
// metadata is read directly, anything else goes through the interpolation
// (a number becomes its decimal text), exactly as before.
func TestPartitionKeyFromMetadata(t *testing.T) {
	stream := newStream(t, 2)
	o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, "partition_key: '${! @pk }'\n"))
	if o.conf.keyMeta != "pk" {
		t.Fatalf("keyMeta %q", o.conf.keyMeta)
	}
	var batch service.MessageBatch
	for i, v := range []any{"a.b.1", int64(42), "日本", []byte("raw")} {
		m := service.NewMessage([]byte(fmt.Sprint(i)))
		m.MetaSetMut("pk", v)
		batch = append(batch, m)
	}
	if err := o.WriteBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	recs := readStream(t, stream)
	got := map[string]string{}
	for _, r := range recs {
		got[string(r.data)] = r.key
	}
	if len(recs) != 4 {
		t.Fatalf("read back %d records, want 4", len(recs))
	}
	if want := map[string]string{"0": "a.b.1", "1": "42", "2": "日本", "3": "raw"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	for _, yaml := range []string{"partition_key: '${! @pk }-x'\n", "partition_key: '${! meta(\"pk\") }'\n"} {
		if o := newTestOutput(t, fakeYAML+yaml, nil); o.conf.keyMeta != "" {
			t.Errorf("%s: keyMeta %q", yaml, o.conf.keyMeta)
		}
	}
}

// TestFastCorrectsClockSkew: an answer whose Date is an hour ahead moves
// the next signing time an hour ahead, and the refused request is sent again
// at once with it (once: this server refuses whatever the signing time, so
// the second refusal is returned); an answer in step brings it back.
func TestFastCorrectsClockSkew(t *testing.T) {
	var ahead atomic.Bool
	srv, got := captureServer(t, func(w http.ResponseWriter, _ []byte) {
		if ahead.Load() {
			w.Header().Set("Date", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"__type":"InvalidSignatureException","message":"Signature expired"}`)
			return
		}
		_, _ = io.WriteString(w, `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]}`)
	})
	fast := newFastClient(sdkTestClient(srv.URL, nil), streamRef{name: "s"})
	recs := []*record{{key: "k", data: []byte("v")}}
	ahead.Store(true)
	if _, err := fast.putRecordsFast(context.Background(), new(putCall), recs); classify(context.Background(), err) != errConnection {
		t.Fatalf("skewed answer: %v", err)
	}
	ahead.Store(false)
	for i := 0; i < 2; i++ {
		if _, err := fast.putRecordsFast(context.Background(), new(putCall), recs); err != nil {
			t.Fatal(err)
		}
	}
	var offs []time.Duration
	for _, r := range got() {
		at, err := time.Parse("20060102T150405Z", r.header.Get("X-Amz-Date"))
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, time.Until(at).Round(time.Minute))
	}
	if want := []time.Duration{0, time.Hour, time.Hour, 0}; !reflect.DeepEqual(offs, want) {
		t.Fatalf("signing time offsets %v, want %v", offs, want)
	}
}

// TestBodyBufferKeptOnlyWhenReleased: the body buffer is reused only once
// the HTTP client closed the request body (done sending); a body still being
// sent (a server that answered early) leaves the buffer to the client.
func TestBodyBufferKeptOnlyWhenReleased(t *testing.T) {
	pc := &putCall{body: make([]byte, 10)}
	done := &sentBody{closed: make(chan struct{})}
	_ = done.Close()
	pc.release(done)
	if pc.body == nil {
		t.Fatal("buffer of a closed body dropped")
	}
	sending := &sentBody{closed: make(chan struct{})}
	start := time.Now()
	pc.release(sending)
	if pc.body != nil || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("buffer of a body still being sent kept (after %v)", time.Since(start))
	}
	late := &sentBody{closed: make(chan struct{})}
	pc.body = make([]byte, 10)
	time.AfterFunc(20*time.Millisecond, func() { _ = late.Close() })
	pc.release(late)
	if pc.body == nil {
		t.Fatal("buffer of a body closed within the grace time dropped")
	}
}
