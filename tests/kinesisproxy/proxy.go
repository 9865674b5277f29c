// Package kinesisproxy is a fault-injecting, shard-limit-enforcing HTTP reverse proxy that sits in front of a
// Kinesis stand-in (kinesalite, kinesis-mock) for tests and benchmarks.
//
// No local Kinesis stand-in enforces the per-shard write limits of real Kinesis Data Streams or ever answers a
// PutRecords entry with ProvisionedThroughputExceededException. This proxy adds both, plus request-level faults,
// so that producers can be tested against back-pressure and failures while the records that are accepted are really
// written to the stand-in (and records that are rejected really are not).
//
// # Config fields and defaults
//
//   - Upstream: base URL of the stand-in, e.g. http://127.0.0.1:4567. Required.
//   - Listen: address to listen on. Default "127.0.0.1:0" (a free port; read it back with URL).
//   - RecordsPerSecond: per-shard token bucket rate for records. 0 means the default 1000 (real Kinesis); a
//     negative value means unlimited.
//   - BytesPerSecond: per-shard token bucket rate for bytes, an entry costing len(data)+len(partition key).
//     0 means the default 1 MiB (1048576); negative means unlimited.
//   - Burst: bucket depth expressed as time at the configured rate (depth = rate * Burst seconds, at least 1).
//     0 means the default 1s. Buckets start full. An entry larger than the byte bucket's depth is always rejected.
//   - ThrottleRate: fraction in [0,1] of PutRecords/PutRecord entries (that passed the buckets) rejected with an
//     injected ProvisionedThroughputExceededException.
//   - InternalFailureRate: fraction in [0,1] of entries rejected with InternalFailure.
//   - HTTP500Rate: fraction in [0,1] of Kinesis requests (any Kinesis_20131202.* target) answered
//     HTTP 500 {"__type":"InternalFailure"} without being forwarded.
//   - DropRate: fraction in [0,1] of Kinesis requests whose connection is closed without an answer, not forwarded.
//   - Latency: delay added before answering every request (including dropped, 500 and pass-through ones). The
//     upstream call is made first, so a client that gives up during the delay still had its records written, like
//     a lost response from real Kinesis.
//   - Seed: seed of the pseudo-random choices. With the same Seed and the same sequence of requests the same
//     entries are rejected.
//   - ShardRefresh: how long a stream's shard list is cached before it is fetched again (ListShards, falling back to
//     DescribeStream), so that SplitShard/MergeShards done through the stand-in are seen. 0 means 2s.
//
// Start rejects an empty/invalid Upstream, rates outside [0,1], and negative Burst, Latency or ShardRefresh.
// SetFaults applies a new Config at run time (Upstream, Listen and Seed are ignored, the same defaults apply to zero
// fields, out-of-range rates are clamped to [0,1] and negative durations treated as 0). Pause makes every request
// (any target) fail by closing its connection without an answer and without forwarding anything; Resume undoes it.
//
// # Semantics
//
// Every request is forwarded to Upstream with its headers unchanged (signed headers included: the stand-ins do not
// check signatures). Upstream calls are not cancelled when the client goes away (they time out after a minute): a
// request that arrived is carried out, as real Kinesis does, and kinesalite, which crashes when a request is aborted
// mid-call, is never sent one. Requests whose X-Amz-Target does not start with "Kinesis_20131202." are passed
// through without any fault except Pause and Latency.
//
// For Kinesis_20131202.PutRecords (JSON 1.1 bodies; CBOR bodies are forwarded unchanged) every entry is mapped to
// its shard: MD5 of the partition key as a 128-bit big-endian integer, or the decimal ExplicitHashKey, against the
// HashKeyRange of the open shards of the stream (StreamName, or the name at the end of StreamARN). The entry must fit
// the shard's records and bytes buckets, otherwise it is rejected with ProvisionedThroughputExceededException
// ("Rate exceeded for shard shardId-... in stream ... under account 000000000000."). An entry that fits may then be
// rejected by the injected ThrottleRate / InternalFailureRate (its tokens are given back). Rejected entries are
// removed from the request, the rest (if any) is forwarded, and the response gets the error entries
// {"ErrorCode":...,"ErrorMessage":...} spliced back in at their original indices, with FailedRecordCount raised
// accordingly. If the upstream answers anything but 200, its status and body are passed through unchanged. Requests
// the stand-in will reject as a whole (not JSON, 0 or more than 500 entries, bad partition key, data > 1 MiB, bad
// ExplicitHashKey, unknown stream) are forwarded unchanged, so the caller sees the stand-in's validation error.
//
// Kinesis_20131202.PutRecord gets the same limits and injected errors; a rejected record is answered HTTP 400
// {"__type":"ProvisionedThroughputExceededException","message":...} or HTTP 500 {"__type":"InternalFailure",...}.
// If the upstream cannot be reached the proxy answers HTTP 502 {"__type":"InternalFailure"}.
//
// Stats counts requests, entries and every kind of rejection; PerShardThrottled is keyed "streamName/shardId-...";
// MaxPutRecordsEntries and MaxPutRecordsBytes hold the largest PutRecords call received.
// ShardFor exposes the proxy's routing decision for a key, for tests.
//
// # Client note
//
// The proxy answers a fully rejected PutRecords in microseconds. Such instant answers expose a race in
// aws-sdk-go-v2 (aws/aws-sdk-go-v2#2737): smithy-go closes the request body as soon as the response arrives while
// net/http may still be probing it for EOF, the transport then closes the connection and the call fails with
// "deserialization failed ... use of closed network connection" although the proxy answered correctly. The SDK's
// default retryer retries it (net.ErrClosed), so producers must treat it as retryable; a client without retries
// can avoid it by sending request bodies from memory (see testutil.BufferedBody).
package kinesisproxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	mrand "math/rand"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults applied to zero Config fields.
const (
	DefaultListen           = "127.0.0.1:0"
	DefaultRecordsPerSecond = 1000
	DefaultBytesPerSecond   = 1 << 20
	DefaultBurst            = time.Second
	DefaultShardRefresh     = 2 * time.Second
)

const (
	targetPrefix   = "Kinesis_20131202."
	accountID      = "000000000000"
	jsonType       = "application/x-amz-json-1.1"
	codeThroughput = "ProvisionedThroughputExceededException"
	codeInternal   = "InternalFailure"
	msgInternal    = "Internal service failure."
	maxRecords     = 500
	maxData        = 1 << 20
)

// Config configures the proxy. See the package documentation for every field's default and meaning.
type Config struct {
	Upstream            string        // kinesalite base URL, e.g. http://127.0.0.1:4567
	Listen              string        // default "127.0.0.1:0"
	RecordsPerSecond    float64       // per-shard token bucket, default 1000; <0 = unlimited
	BytesPerSecond      float64       // per-shard, default 1 MiB (data + partition key); <0 = unlimited
	Burst               time.Duration // bucket depth expressed as time at the rate, default 1s
	ThrottleRate        float64       // fraction [0,1] of entries rejected with ProvisionedThroughputExceededException
	InternalFailureRate float64       // fraction [0,1] of entries rejected with InternalFailure
	HTTP500Rate         float64       // fraction [0,1] of Kinesis requests answered 500 InternalFailure (not forwarded)
	DropRate            float64       // fraction [0,1] of Kinesis requests closed without answer (not forwarded)
	Latency             time.Duration // added before answering every request
	Seed                int64         // seed of the random choices (deterministic tests)
	ShardRefresh        time.Duration // shard list cache lifetime per stream, default 2s
}

// Stats are counters since Start. Entries count PutRecords entries and PutRecord records alike.
type Stats struct {
	Requests           int64 // every request received, any target, including dropped ones
	PutRecordsRequests int64 // PutRecords calls not answered by HTTP500Rate/DropRate/Pause
	PutRecordRequests  int64 // PutRecord calls not answered by HTTP500Rate/DropRate/Pause
	EntriesIn          int64 // entries received in PutRecords/PutRecord calls that reached the limiter
	EntriesForwarded   int64 // entries sent upstream
	Throttled          int64 // entries answered ProvisionedThroughputExceededException (RateLimited + injected)
	RateLimited        int64 // the part of Throttled caused by the token buckets
	InternalFailures   int64 // entries answered InternalFailure (injected)
	HTTP500            int64 // requests answered HTTP 500 by HTTP500Rate
	Dropped            int64 // requests whose connection was closed without answer (DropRate or Pause)
	// MaxPutRecordsEntries and MaxPutRecordsBytes are the most entries, and the most bytes (decoded data plus
	// partition key, what Kinesis counts against its 5 MiB request limit), of one JSON PutRecords call received,
	// valid or not: a producer's request splitting can be checked against them.
	MaxPutRecordsEntries int64
	MaxPutRecordsBytes   int64
	// PerShardThrottled counts throttled entries (rate limit and injected) per "streamName/shardId".
	PerShardThrottled map[string]int64
}

type settings struct {
	rps, bps                     float64 // <0 unlimited
	burst                        float64 // seconds
	throttle, internal           float64
	http500, drop                float64
	latency, refresh             time.Duration
	recordsDepth, bytesDepth     float64
	recordsLimited, bytesLimited bool
}

func resolve(c Config) settings {
	s := settings{
		rps: c.RecordsPerSecond, bps: c.BytesPerSecond, burst: c.Burst.Seconds(),
		throttle: clamp01(c.ThrottleRate), internal: clamp01(c.InternalFailureRate),
		http500: clamp01(c.HTTP500Rate), drop: clamp01(c.DropRate),
		latency: max(c.Latency, 0), refresh: c.ShardRefresh,
	}
	if s.rps == 0 {
		s.rps = DefaultRecordsPerSecond
	}
	if s.bps == 0 {
		s.bps = DefaultBytesPerSecond
	}
	if s.burst <= 0 {
		s.burst = DefaultBurst.Seconds()
	}
	if s.refresh <= 0 {
		s.refresh = DefaultShardRefresh
	}
	s.recordsLimited, s.bytesLimited = s.rps >= 0, s.bps >= 0
	s.recordsDepth, s.bytesDepth = math.Inf(1), math.Inf(1) // unlimited buckets stay full
	if s.recordsLimited {
		s.recordsDepth = max(s.rps*s.burst, 1)
	}
	if s.bytesLimited {
		s.bytesDepth = max(s.bps*s.burst, 1)
	}
	return s
}

func clamp01(f float64) float64 {
	if f != f || f < 0 { // NaN or negative
		return 0
	}
	return min(f, 1)
}

func validate(c Config) error {
	if c.Upstream == "" {
		return errors.New("kinesisproxy: Upstream is required")
	}
	u, err := url.Parse(c.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("kinesisproxy: Upstream %q is not an http(s) base URL", c.Upstream)
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"ThrottleRate", c.ThrottleRate}, {"InternalFailureRate", c.InternalFailureRate},
		{"HTTP500Rate", c.HTTP500Rate}, {"DropRate", c.DropRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("kinesisproxy: %s %v is outside [0,1]", r.name, r.v)
		}
	}
	if c.Burst < 0 || c.Latency < 0 || c.ShardRefresh < 0 {
		return errors.New("kinesisproxy: Burst, Latency and ShardRefresh must not be negative")
	}
	return nil
}

// Proxy is a running proxy. Create it with Start, stop it with Close.
type Proxy struct {
	upstream *url.URL
	ln       net.Listener
	srv      *http.Server
	client   *http.Client
	paused   atomic.Bool

	mu      sync.Mutex // guards set, rng, buckets and stats
	set     settings
	rng     *mrand.Rand
	buckets map[string]*shardBucket
	stats   Stats

	shardMu   sync.Mutex // guards shardSets
	shardSets map[string]*shardSet
}

// Start validates cfg, listens on cfg.Listen and serves in the background.
func Start(cfg Config) (*Proxy, error) {
	if err := validate(cfg); err != nil {
		return nil, err
	}
	up, _ := url.Parse(strings.TrimRight(cfg.Upstream, "/"))
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("kinesisproxy: listen on %s: %w", listen, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	p := &Proxy{
		upstream:  up,
		ln:        ln,
		client:    &http.Client{Transport: tr},
		set:       resolve(cfg),
		rng:       mrand.New(mrand.NewSource(cfg.Seed)),
		buckets:   map[string]*shardBucket{},
		shardSets: map[string]*shardSet{},
	}
	p.stats.PerShardThrottled = map[string]int64{}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the proxy's base URL, e.g. http://127.0.0.1:38421; use it as the Kinesis client's BaseEndpoint.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetFaults replaces the limits, rates and latency at run time (Upstream, Listen and Seed are ignored; zero fields
// take their defaults; rates are clamped to [0,1]). Bucket fill levels are kept, capped at the new depth.
func (p *Proxy) SetFaults(f Config) {
	s := resolve(f)
	p.mu.Lock()
	p.set = s
	p.mu.Unlock()
}

// Pause starts an outage: every request, whatever its target, gets its connection closed without an answer and
// nothing is forwarded, until Resume.
func (p *Proxy) Pause() { p.paused.Store(true) }

// Resume ends an outage started by Pause.
func (p *Proxy) Resume() { p.paused.Store(false) }

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.PerShardThrottled = make(map[string]int64, len(p.stats.PerShardThrottled))
	for k, v := range p.stats.PerShardThrottled {
		s.PerShardThrottled[k] = v
	}
	return s
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.client.CloseIdleConnections()
	return err
}

// ShardFor returns the ID of the open shard of stream that the proxy maps an entry with this partition key (or, when
// not empty, this decimal explicit hash key) to, fetching the stream's shards from the upstream if needed.
func (p *Proxy) ShardFor(ctx context.Context, stream, partitionKey, explicitHashKey string) (string, error) {
	h, ok := hashKey(partitionKey, ptrIf(explicitHashKey))
	if !ok {
		return "", fmt.Errorf("kinesisproxy: invalid ExplicitHashKey %q", explicitHashKey)
	}
	set, err := p.shards(ctx, stream, nil)
	if err != nil {
		return "", err
	}
	id := set.find(h)
	if id == "" {
		return "", fmt.Errorf("kinesisproxy: no open shard of stream %s covers the hash key", stream)
	}
	return id, nil
}

func ptrIf(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (p *Proxy) settings() settings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set
}

func (p *Proxy) add(fn func(s *Stats)) {
	p.mu.Lock()
	fn(&p.stats)
	p.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.add(func(s *Stats) { s.Requests++ })
	if p.paused.Load() {
		p.dropConn(w)
		return
	}
	set := p.settings()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		p.dropConn(w)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	if !strings.HasPrefix(target, targetPrefix) {
		p.forwardAndAnswer(w, r, body, set)
		return
	}
	p.mu.Lock()
	u := p.rng.Float64()
	p.mu.Unlock()
	switch {
	case u < set.http500:
		if p.sleep(r.Context(), set.latency) {
			p.add(func(s *Stats) { s.HTTP500++ })
			writeJSONError(w, http.StatusInternalServerError, codeInternal, msgInternal)
		}
		return
	case u < set.http500+set.drop:
		if p.sleep(r.Context(), set.latency) {
			p.dropConn(w)
		}
		return
	}
	isJSON := !strings.Contains(r.Header.Get("Content-Type"), "cbor")
	switch strings.TrimPrefix(target, targetPrefix) {
	case "PutRecords":
		p.add(func(s *Stats) { s.PutRecordsRequests++ })
		if isJSON {
			p.putRecords(w, r, body, set)
			return
		}
	case "PutRecord":
		p.add(func(s *Stats) { s.PutRecordRequests++ })
		if isJSON {
			p.putRecord(w, r, body, set)
			return
		}
	}
	p.forwardAndAnswer(w, r, body, set)
}

// dropConn closes the client's connection without writing anything.
func (p *Proxy) dropConn(w http.ResponseWriter) {
	p.add(func(s *Stats) { s.Dropped++ })
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // closes the connection (HTTP/1) or resets the stream (HTTP/2)
}

// sleep waits d, returning false when the client went away first.
func (p *Proxy) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

type upstreamResponse struct {
	status int
	header http.Header
	body   []byte
}

var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Content-Encoding"}

// upstreamTimeout bounds a call to the stand-in.
const upstreamTimeout = time.Minute

// upstreamContext is the context of the upstream calls made for r. It is not
// cancelled when r's client goes away: like real Kinesis, a request that
// arrived is carried out even if nobody waits for the answer, and an upstream
// request aborted mid-call crashes kinesalite 3.3.3, whose request error
// handler throws ("Error: aborted", ECONNRESET).
func upstreamContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), upstreamTimeout)
}

// roundTrip sends body upstream with the client's method, path, query and headers.
func (p *Proxy) roundTrip(r *http.Request, body []byte) (*upstreamResponse, error) {
	u := *p.upstream
	u.Path = strings.TrimRight(p.upstream.Path, "/") + r.URL.Path
	u.RawQuery = r.URL.RawQuery
	ctx, cancel := upstreamContext(r)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range r.Header {
		req.Header[k] = append([]string(nil), v...)
	}
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	req.Header.Del("Accept-Encoding") // let the transport negotiate and decompress
	return p.do(req)
}

func (p *Proxy) do(req *http.Request) (*upstreamResponse, error) {
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	h := resp.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	return &upstreamResponse{status: resp.StatusCode, header: h, body: b}, nil
}

func (p *Proxy) forwardAndAnswer(w http.ResponseWriter, r *http.Request, body []byte, set settings) {
	resp, err := p.roundTrip(r, body)
	if err != nil {
		p.upstreamFailed(w, r, err, set)
		return
	}
	p.answer(w, r, set, resp)
}

func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error, set settings) {
	if r.Context().Err() != nil {
		return // client gone
	}
	if p.sleep(r.Context(), set.latency) {
		writeJSONError(w, http.StatusBadGateway, codeInternal, "kinesisproxy: upstream: "+err.Error())
	}
}

func (p *Proxy) answer(w http.ResponseWriter, r *http.Request, set settings, resp *upstreamResponse) {
	if !p.sleep(r.Context(), set.latency) {
		return
	}
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(resp.body)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	w.Header().Set("Content-Type", jsonType)
	w.Header().Set("x-amzn-RequestId", requestID())
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// entry is one PutRecords entry or a PutRecord request.
type entry struct {
	Data            *string `json:"Data"`
	PartitionKey    *string `json:"PartitionKey"`
	ExplicitHashKey *string `json:"ExplicitHashKey"`
	StreamName      string  `json:"StreamName"`
	StreamARN       string  `json:"StreamARN"`
}

// size returns len(data)+len(partition key), and false when the entry would fail the stand-in's validation.
func (e *entry) size() (int, bool) {
	if e.Data == nil || e.PartitionKey == nil {
		return 0, false
	}
	n := len(*e.PartitionKey)
	if n < 1 || n > 256 {
		return 0, false
	}
	s := *e.Data
	if len(s)%4 != 0 {
		return 0, false
	}
	d := base64.StdEncoding.DecodedLen(len(s)) - (len(s) - len(strings.TrimRight(s, "=")))
	if d > maxData {
		return 0, false
	}
	return n + d, true
}

// rawSize is len(decoded data)+len(partition key) without any validation (0 for what is missing).
func (e *entry) rawSize() int {
	n := 0
	if e.PartitionKey != nil {
		n = len(*e.PartitionKey)
	}
	if e.Data != nil {
		s := *e.Data
		n += base64.StdEncoding.DecodedLen(len(s)) - (len(s) - len(strings.TrimRight(s, "=")))
	}
	return n
}

func streamOf(name, arn string) string {
	if name != "" {
		return name
	}
	if i := strings.LastIndex(arn, ":stream/"); i >= 0 {
		return arn[i+len(":stream/"):]
	}
	return ""
}

// verdict is the limiter's decision for one entry; code == "" means forward.
type verdict struct {
	code, msg, shard string
	rateLimited      bool
}

// judge applies the buckets and the injected error rates to entries, in order.
func (p *Proxy) judge(stream string, set *shardSet, entries []entry, hashes []u128, sizes []int, cfg settings) []verdict {
	out := make([]verdict, len(entries))
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range entries {
		shard := set.find(hashes[i])
		v := verdict{shard: shard}
		var b *shardBucket
		if shard != "" {
			b = p.bucket(stream + "/" + shard)
			if !b.take(now, float64(sizes[i]), cfg) {
				v.code, v.rateLimited = codeThroughput, true
				v.msg = throughputMsg(stream, shard)
				out[i] = v
				continue
			}
		}
		u := p.rng.Float64()
		switch {
		case u < cfg.throttle:
			v.code, v.msg = codeThroughput, throughputMsg(stream, shard)
		case u < cfg.throttle+cfg.internal:
			v.code, v.msg = codeInternal, msgInternal
		}
		if v.code != "" && b != nil {
			b.refund(float64(sizes[i]), cfg)
		}
		out[i] = v
	}
	return out
}

func throughputMsg(stream, shard string) string {
	if shard == "" {
		return fmt.Sprintf("Rate exceeded for stream %s under account %s.", stream, accountID)
	}
	return fmt.Sprintf("Rate exceeded for shard %s in stream %s under account %s.", shard, stream, accountID)
}

// count adds the verdicts to the stats.
func (p *Proxy) count(stream string, vs []verdict, forwarded int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.EntriesIn += int64(len(vs))
	p.stats.EntriesForwarded += int64(forwarded)
	for _, v := range vs {
		switch v.code {
		case codeThroughput:
			p.stats.Throttled++
			if v.rateLimited {
				p.stats.RateLimited++
			}
			p.stats.PerShardThrottled[stream+"/"+v.shard]++
		case codeInternal:
			p.stats.InternalFailures++
		}
	}
}

// prepare decodes what the limiter needs from entries; ok is false when the request must be forwarded unchanged.
func (p *Proxy) prepare(r *http.Request, stream string, entries []entry) (set *shardSet, hashes []u128, sizes []int, ok bool) {
	if stream == "" {
		return nil, nil, nil, false
	}
	hashes, sizes = make([]u128, len(entries)), make([]int, len(entries))
	for i := range entries {
		n, valid := entries[i].size()
		if !valid {
			return nil, nil, nil, false
		}
		h, valid := hashKey(*entries[i].PartitionKey, entries[i].ExplicitHashKey)
		if !valid {
			return nil, nil, nil, false
		}
		hashes[i], sizes[i] = h, n
	}
	ctx, cancel := upstreamContext(r)
	defer cancel()
	set, err := p.shards(ctx, stream, r.Header)
	if err != nil {
		return nil, nil, nil, false
	}
	return set, hashes, sizes, true
}

func (p *Proxy) putRecords(w http.ResponseWriter, r *http.Request, body []byte, cfg settings) {
	var req map[string]json.RawMessage
	var raw []json.RawMessage
	var name, arn string
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(req["Records"], &raw) != nil {
		p.forwardAndAnswer(w, r, body, cfg)
		return
	}
	entries := make([]entry, len(raw))
	decoded, nbytes := true, 0
	for i, e := range raw {
		if json.Unmarshal(e, &entries[i]) != nil {
			decoded = false
			break
		}
		nbytes += entries[i].rawSize()
	}
	p.add(func(s *Stats) {
		s.MaxPutRecordsEntries = max(s.MaxPutRecordsEntries, int64(len(raw)))
		s.MaxPutRecordsBytes = max(s.MaxPutRecordsBytes, int64(nbytes))
	})
	if !decoded || len(raw) == 0 || len(raw) > maxRecords {
		p.forwardAndAnswer(w, r, body, cfg)
		return
	}
	_ = json.Unmarshal(req["StreamName"], &name)
	_ = json.Unmarshal(req["StreamARN"], &arn)
	stream := streamOf(name, arn)
	set, hashes, sizes, ok := p.prepare(r, stream, entries)
	if !ok {
		p.forwardAndAnswer(w, r, body, cfg)
		return
	}
	vs := p.judge(stream, set, entries, hashes, sizes, cfg)
	fwd := make([]json.RawMessage, 0, len(raw))
	for i, v := range vs {
		if v.code == "" {
			fwd = append(fwd, raw[i])
		}
	}
	out := map[string]json.RawMessage{}
	header := http.Header{"Content-Type": {jsonType}, "X-Amzn-Requestid": {requestID()}}
	var upRecords []json.RawMessage
	failed := 0
	if len(fwd) > 0 {
		nb := encodeObject(req, "Records", fwd)
		resp, err := p.roundTrip(r, nb)
		if err != nil {
			p.upstreamFailed(w, r, err, cfg)
			return
		}
		if resp.status != http.StatusOK {
			p.answer(w, r, cfg, resp)
			return
		}
		if json.Unmarshal(resp.body, &out) != nil || json.Unmarshal(out["Records"], &upRecords) != nil ||
			len(upRecords) != len(fwd) {
			p.upstreamFailed(w, r, fmt.Errorf("PutRecords answer with %d of %d records: %.200s",
				len(upRecords), len(fwd), resp.body), cfg)
			return
		}
		_ = json.Unmarshal(out["FailedRecordCount"], &failed)
		header = resp.header
	}
	records := make([]json.RawMessage, len(raw))
	j := 0
	for i, v := range vs {
		if v.code == "" {
			records[i] = upRecords[j]
			j++
			continue
		}
		records[i], _ = json.Marshal(struct{ ErrorCode, ErrorMessage string }{v.code, v.msg})
		failed++
	}
	out["FailedRecordCount"] = json.RawMessage(strconv.Itoa(failed))
	b := encodeObject(out, "Records", records)
	p.count(stream, vs, len(fwd))
	p.answer(w, r, cfg, &upstreamResponse{status: http.StatusOK, header: header, body: b})
}

// encodeObject writes the JSON object fields plus the array field list, without re-validating or compacting the
// already valid raw values (json.Marshal would, and it dominated the proxy's CPU time).
func encodeObject(fields map[string]json.RawMessage, list string, items []json.RawMessage) []byte {
	n := 32
	for _, it := range items {
		n += len(it) + 1
	}
	for _, v := range fields {
		n += len(v) + 64
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for k, v := range fields {
		if k == list {
			continue
		}
		q, _ := json.Marshal(k)
		b = append(b, q...)
		b = append(b, ':')
		b = append(b, v...)
		b = append(b, ',')
	}
	q, _ := json.Marshal(list)
	b = append(b, q...)
	b = append(b, ':', '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']', '}')
}

func (p *Proxy) putRecord(w http.ResponseWriter, r *http.Request, body []byte, cfg settings) {
	var e entry
	if json.Unmarshal(body, &e) != nil {
		p.forwardAndAnswer(w, r, body, cfg)
		return
	}
	stream := streamOf(e.StreamName, e.StreamARN)
	entries := []entry{e}
	set, hashes, sizes, ok := p.prepare(r, stream, entries)
	if !ok {
		p.forwardAndAnswer(w, r, body, cfg)
		return
	}
	vs := p.judge(stream, set, entries, hashes, sizes, cfg)
	switch vs[0].code {
	case codeThroughput, codeInternal:
		p.count(stream, vs, 0)
		if p.sleep(r.Context(), cfg.latency) {
			status := http.StatusBadRequest
			if vs[0].code == codeInternal {
				status = http.StatusInternalServerError
			}
			writeJSONError(w, status, vs[0].code, vs[0].msg)
		}
		return
	}
	p.count(stream, vs, 1)
	p.forwardAndAnswer(w, r, body, cfg)
}

// --- token buckets ---

type shardBucket struct {
	records, bytes float64
	last           time.Time
}

func (p *Proxy) bucket(key string) *shardBucket {
	b := p.buckets[key]
	if b == nil {
		b = &shardBucket{records: p.set.recordsDepth, bytes: p.set.bytesDepth, last: time.Now()}
		p.buckets[key] = b
	}
	return b
}

func (b *shardBucket) take(now time.Time, size float64, cfg settings) bool {
	el := now.Sub(b.last).Seconds()
	if el > 0 {
		b.last = now
	} else {
		el = 0
	}
	// Unlimited buckets have an infinite depth and stay full, so a later SetFaults with a limit starts full.
	b.records = min(b.records+el*max(cfg.rps, 0), cfg.recordsDepth)
	b.bytes = min(b.bytes+el*max(cfg.bps, 0), cfg.bytesDepth)
	if (cfg.recordsLimited && b.records < 1) || (cfg.bytesLimited && b.bytes < size) {
		return false
	}
	if cfg.recordsLimited {
		b.records--
	}
	if cfg.bytesLimited {
		b.bytes -= size
	}
	return true
}

func (b *shardBucket) refund(size float64, cfg settings) {
	b.records = min(b.records+1, cfg.recordsDepth)
	b.bytes = min(b.bytes+size, cfg.bytesDepth)
}

// --- shard maps ---

type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

var two128 = new(big.Int).Lsh(big.NewInt(1), 128)

func parseU128(s string) (u128, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return u128{}, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return u128{}, false
		}
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.Cmp(two128) >= 0 {
		return u128{}, false
	}
	var buf [16]byte
	n.FillBytes(buf[:])
	return u128{binary.BigEndian.Uint64(buf[:8]), binary.BigEndian.Uint64(buf[8:])}, true
}

// hashKey is the 128-bit hash key Kinesis routes an entry by.
func hashKey(partitionKey string, explicit *string) (u128, bool) {
	if explicit != nil {
		return parseU128(*explicit)
	}
	sum := md5.Sum([]byte(partitionKey))
	return u128{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}, true
}

type shardRange struct {
	id         string
	start, end u128
}

type shardSet struct {
	fetched time.Time
	open    []shardRange
}

func (s *shardSet) find(h u128) string {
	for _, r := range s.open {
		if h.cmp(r.start) >= 0 && h.cmp(r.end) <= 0 {
			return r.id
		}
	}
	return ""
}

// shards returns the open shards of stream, from the cache when fresh enough. hdr, when not nil, gives the
// Authorization and X-Amz-Date headers of the client's request to reuse (the stand-ins only check they exist).
func (p *Proxy) shards(ctx context.Context, stream string, hdr http.Header) (*shardSet, error) {
	refresh := p.settings().refresh
	p.shardMu.Lock()
	cached := p.shardSets[stream]
	p.shardMu.Unlock()
	if cached != nil && time.Since(cached.fetched) < refresh {
		return cached, nil
	}
	set, err := p.fetchShards(ctx, stream, hdr)
	if err != nil {
		if cached != nil {
			return cached, nil
		}
		return nil, err
	}
	p.shardMu.Lock()
	p.shardSets[stream] = set
	p.shardMu.Unlock()
	return set, nil
}

type wireShard struct {
	ShardID      string `json:"ShardId"`
	HashKeyRange struct {
		StartingHashKey, EndingHashKey string
	}
	SequenceNumberRange struct {
		EndingSequenceNumber string
	}
}

func (p *Proxy) fetchShards(ctx context.Context, stream string, hdr http.Header) (*shardSet, error) {
	var all []wireShard
	var next string
	for page := 0; page < 1000; page++ {
		in := map[string]any{"StreamName": stream}
		if next != "" {
			in = map[string]any{"NextToken": next}
		}
		var out struct {
			Shards    []wireShard
			NextToken string
		}
		status, err := p.call(ctx, "ListShards", in, hdr, &out)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			if page == 0 && status == http.StatusBadRequest {
				return p.describeShards(ctx, stream, hdr)
			}
			return nil, fmt.Errorf("kinesisproxy: ListShards %s: HTTP %d", stream, status)
		}
		all = append(all, out.Shards...)
		if next = out.NextToken; next == "" {
			break
		}
	}
	return toSet(stream, all)
}

// describeShards is the fallback for stand-ins without ListShards.
func (p *Proxy) describeShards(ctx context.Context, stream string, hdr http.Header) (*shardSet, error) {
	var all []wireShard
	in := map[string]any{"StreamName": stream}
	for page := 0; page < 1000; page++ {
		var out struct {
			StreamDescription struct {
				Shards        []wireShard
				HasMoreShards bool
			}
		}
		status, err := p.call(ctx, "DescribeStream", in, hdr, &out)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("kinesisproxy: DescribeStream %s: HTTP %d", stream, status)
		}
		sh := out.StreamDescription.Shards
		all = append(all, sh...)
		if !out.StreamDescription.HasMoreShards || len(sh) == 0 {
			break
		}
		in = map[string]any{"StreamName": stream, "ExclusiveStartShardId": sh[len(sh)-1].ShardID}
	}
	return toSet(stream, all)
}

func toSet(stream string, all []wireShard) (*shardSet, error) {
	set := &shardSet{fetched: time.Now()}
	for _, s := range all {
		if s.SequenceNumberRange.EndingSequenceNumber != "" {
			continue // closed by a split or merge
		}
		start, ok1 := parseU128(s.HashKeyRange.StartingHashKey)
		end, ok2 := parseU128(s.HashKeyRange.EndingHashKey)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("kinesisproxy: shard %s of %s has a bad HashKeyRange", s.ShardID, stream)
		}
		set.open = append(set.open, shardRange{id: s.ShardID, start: start, end: end})
	}
	if len(set.open) == 0 {
		return nil, fmt.Errorf("kinesisproxy: stream %s has no open shard", stream)
	}
	return set, nil
}

// call makes one Kinesis JSON call to the upstream and decodes a 200 answer into out.
func (p *Proxy) call(ctx context.Context, op string, in any, hdr http.Header, out any) (int, error) {
	b, _ := json.Marshal(in)
	u := *p.upstream
	u.Path = strings.TrimRight(u.Path, "/") + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", jsonType)
	req.Header.Set("X-Amz-Target", targetPrefix+op)
	auth, date := "", ""
	if hdr != nil {
		auth, date = hdr.Get("Authorization"), hdr.Get("X-Amz-Date")
	}
	if auth == "" || date == "" {
		date = time.Now().UTC().Format("20060102T150405Z")
		auth = "AWS4-HMAC-SHA256 Credential=kinesisproxy/" + date[:8] +
			"/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0"
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("X-Amz-Date", date)
	resp, err := p.do(req)
	if err != nil {
		return 0, err
	}
	if resp.status == http.StatusOK {
		if err := json.Unmarshal(resp.body, out); err != nil {
			return 0, fmt.Errorf("kinesisproxy: %s answer: %w", op, err)
		}
	}
	return resp.status, nil
}
