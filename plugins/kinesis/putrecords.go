package kinesis

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/dmsbridge/dmsbridge/plugins/awsconf"
)

// The output's own PutRecords request path.
//
// The SDK's PutRecords (schema serializer, base64 through the shape
// serializer, the middleware stack, the generic response deserializer) costs
// more CPU than the rest of the output together. fastClient keeps the SDK
// client for everything else (DescribeStreamSummary, ListShards, and
// PutRecords itself for callers of the kinesisAPI interface) and adds
// putRecordsFast, which:
//
//   - encodes the JSON 1.1 body straight from the output's records into a
//     reused buffer, in the SDK's member order and with the SDK's string
//     escaping, so the body is byte-identical to the SDK's (or, with
//     protocol: cbor, the same request in CBOR: see cbor.go);
//   - resolves the endpoint with the SDK's own EndpointResolverV2 and the
//     parameters the SDK binds for PutRecords (region, FIPS/dual-stack,
//     base endpoint, StreamARN, OperationType "data", account id);
//   - signs with the SDK's SigV4 signer, credentials from the client's
//     credentials cache (refreshed by the cache when they expire);
//   - sends through the client's HTTP client (the aws.Config's, so proxy,
//     CA bundle, timeouts and keep-alive settings are the same), with the body
//     in memory (no body-close race, see tests/kinesisproxy);
//   - decodes a 2xx answer with a small scanner into kinesis.PutRecordsOutput
//     (strings point into one copy of the answer: no allocation per record),
//     and hands any other answer to the SDK's own JSON 1.1 error deserializer,
//     wrapping the result like the SDK does (smithy.OperationError around an
//     awshttp.ResponseError around the typed or generic API error), so
//     classify treats both paths alike.
//
// Not done like the SDK: no tracing/metrics spans, no SDK retries (the output
// disables them anyway). The signing time is corrected for a clock skew
// beyond 4 minutes seen in the answers' Date headers.
type fastClient struct {
	*kinesis.Client

	httpClient kinesis.HTTPClient
	creds      aws.CredentialsProvider
	signer     *v4.Signer
	region     string
	opts       kinesis.Options
	stream     streamRef
	ua         string
	opSchema   *smithy.OperationSchema
	cbor       bool // PutRecords bodies in CBOR (protocol: cbor)

	// skew is the server clock minus ours, in nanoseconds, when it is
	// beyond skewThreshold (as seen in the Date of the last answer); it is
	// added to the signing time, like the SDK's clock-skew correction. The
	// output shares one across the clients it builds, so a reconnect keeps
	// it.
	skew *atomic.Int64

	epMu      sync.Mutex
	epAccount string
	epURL     string
	epOK      bool
}

// fastPutter is implemented by clients with their own PutRecords path; the
// output uses it when the client has it, the SDK call otherwise.
type fastPutter interface {
	putRecordsFast(ctx context.Context, pc *putCall, recs []*record) (*kinesis.PutRecordsOutput, error)
}

func newFastClient(c *kinesis.Client, stream streamRef) *fastClient {
	opts := c.Options()
	creds := opts.Credentials
	if creds != nil {
		inner := creds
		if t, ok := creds.(awsconf.TypedCredentials); ok {
			inner = t.CredentialsProvider
		}
		if _, ok := inner.(*aws.CredentialsCache); !ok {
			creds = aws.NewCredentialsCache(creds)
		}
	}
	httpClient := opts.HTTPClient
	if httpClient == nil {
		httpClient = awshttp.NewBuildableClient()
	}
	return &fastClient{
		Client:     c,
		httpClient: httpClient,
		creds:      creds,
		signer:     v4.NewSigner(),
		region:     opts.Region,
		opts:       opts,
		stream:     stream,
		ua:         "dmsbridge aws-sdk-go-v2/" + aws.SDKVersion + " api/kinesis#fast-putrecords",
		opSchema:   smithy.NewOperationSchema(schemas.PutRecords, schemas.PutRecordsInput, schemas.PutRecordsOutput),
		skew:       new(atomic.Int64),
	}
}

// skewThreshold is the clock difference below which signing times are not
// corrected (SigV4 accepts 5 minutes; the SDK corrects from 4).
const skewThreshold = 4 * time.Minute

// noteClock records the clock skew shown by an answer's Date header.
func (f *fastClient) noteClock(resp *http.Response) {
	if f.opts.DisableClockSkewCorrection {
		return
	}
	d := resp.Header.Get("Date")
	if d == "" {
		return
	}
	server, err := http.ParseTime(d)
	if err != nil {
		return
	}
	skew := time.Until(server)
	if skew < skewThreshold && skew > -skewThreshold {
		skew = 0
	}
	f.skew.Store(int64(skew))
}

// endpoint resolves the PutRecords URL like the SDK does for this stream
// and account, caching the last answer.
func (f *fastClient) endpoint(ctx context.Context, accountID string) (string, error) {
	f.epMu.Lock()
	defer f.epMu.Unlock()
	if f.epOK && f.epAccount == accountID {
		return f.epURL, nil
	}
	if f.opts.EndpointResolverV2 == nil {
		return "", errors.New("no endpoint resolver")
	}
	p := kinesis.EndpointParameters{
		Region:                aws.String(f.region),
		UseDualStack:          aws.Bool(f.opts.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
		UseFIPS:               aws.Bool(f.opts.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		Endpoint:              f.opts.BaseEndpoint,
		OperationType:         aws.String("data"),
		AccountIdEndpointMode: aws.String(string(f.opts.AccountIDEndpointMode)),
	}
	if f.stream.arn != "" {
		p.StreamARN = aws.String(f.stream.arn)
	}
	if accountID != "" && f.opts.AccountIDEndpointMode != aws.AccountIDEndpointModeDisabled {
		p.AccountId = aws.String(accountID)
	}
	ep, err := f.opts.EndpointResolverV2.ResolveEndpoint(ctx, p)
	if err != nil {
		return "", fmt.Errorf("failed to resolve service endpoint, %w", err)
	}
	u := ep.URI
	if u.Path == "" {
		u.Path = "/"
	}
	f.epURL, f.epAccount, f.epOK = u.String(), accountID, true
	return f.epURL, nil
}

// putCall holds the buffers of one shard worker's PutRecords calls. The
// output returned by putRecordsFast points into it and is valid until the
// next call with the same putCall.
type putCall struct {
	body    []byte
	resp    bytes.Buffer
	results []types.PutRecordsResultEntry
	strs    []string
	masks   []uint8
	out     kinesis.PutRecordsOutput
}

var putCalls = sync.Pool{New: func() any { return new(putCall) }}

// sentBody is a request body that tells when the HTTP client is done with
// it: the transport closes the body once written, possibly after the answer
// arrived (a server answering before reading the whole body), and until then
// the body buffer must not be reused.
type sentBody struct {
	bytes.Reader
	once   sync.Once
	closed chan struct{}
}

func (b *sentBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// release gives the body buffer back for the next request once the HTTP
// client let go of it; if that takes long the buffer is abandoned to the
// client and the next request gets a new one.
func (pc *putCall) release(b *sentBody) {
	select {
	case <-b.closed:
		return
	default:
	}
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-b.closed:
	case <-t.C:
		pc.body = nil
	}
}

func (f *fastClient) opError(err error) error {
	return &smithy.OperationError{ServiceID: kinesis.ServiceID, OperationName: "PutRecords", Err: err}
}

func (f *fastClient) putRecordsFast(ctx context.Context, pc *putCall, recs []*record) (*kinesis.PutRecordsOutput, error) {
	if f.creds == nil {
		return nil, f.opError(&v4.SigningError{Err: errors.New("no credentials provider")})
	}
	creds, err := f.creds.Retrieve(ctx)
	if err != nil {
		// Like a signing failure: Connect builds the credentials again.
		return nil, f.opError(&v4.SigningError{Err: fmt.Errorf("retrieving credentials: %w", err)})
	}
	url, err := f.endpoint(ctx, creds.AccountID)
	if err != nil {
		return nil, f.opError(err)
	}
	for attempt := 1; ; attempt++ {
		signedSkew := f.skew.Load()
		out, status, err := f.send(ctx, pc, recs, creds, url, signedSkew)
		if err != nil && attempt == 1 && status >= 400 && status < 500 && f.skew.Load() != signedSkew {
			// Refused (4xx: not written) by a Kinesis whose clock its
			// answer shows more than 4 minutes away from the signing time
			// ("Signature expired"): sent again at once with that time,
			// as the SDK does, rather than reported as lost credentials.
			continue
		}
		return out, err
	}
}

// send signs the records' PutRecords request at now plus skew and sends it;
// status is the HTTP status of an answer (0 without one).
func (f *fastClient) send(ctx context.Context, pc *putCall, recs []*record, creds aws.Credentials, url string, skew int64) (*kinesis.PutRecordsOutput, int, error) {
	contentType := "application/x-amz-json-1.1"
	if f.cbor {
		pc.body = appendPutRecordsCBOR(pc.body[:0], recs, f.stream)
		contentType = cborContentType
	} else {
		pc.body = appendPutRecordsBody(pc.body[:0], recs, f.stream)
	}
	sum := sha256.Sum256(pc.body)
	body := &sentBody{closed: make(chan struct{})}
	body.Reset(pc.body)
	defer pc.release(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return nil, 0, f.opError(err)
	}
	req.ContentLength = int64(len(pc.body))
	req.Header["Content-Type"] = []string{contentType}
	req.Header["X-Amz-Target"] = []string{"Kinesis_20131202.PutRecords"}
	req.Header["User-Agent"] = []string{f.ua}
	if err := f.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", f.region, time.Now().Add(time.Duration(skew)).UTC()); err != nil {
		return nil, 0, f.opError(&v4.SigningError{Err: err})
	}
	resp, err := f.httpClient.Do(req)
	if err != nil {
		return nil, 0, f.opError(&smithyhttp.RequestSendError{Err: err})
	}
	f.noteClock(resp)
	pc.resp.Reset()
	_, rerr := pc.resp.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return nil, resp.StatusCode, f.opError(f.responseError(ctx, resp, pc.resp.Bytes(), rerr))
	}
	if rerr != nil {
		// A truncated answer or a connection closed under it: the records
		// may have been written (classify: retry, outcome unknown).
		return nil, resp.StatusCode, f.opError(f.wrapResponse(resp, &smithy.DeserializationError{Err: fmt.Errorf("reading PutRecords response: %w", rerr)}))
	}
	decode := pc.decode
	if isCBOR(resp) {
		decode = pc.decodeCBOR
	}
	if err := decode(pc.resp.Bytes()); err != nil {
		if isCBOR(resp) {
			// The whole body arrived (rerr is nil) and is broken: the
			// endpoint's CBOR, not the network (kinesalite truncates CBOR
			// answers over 16 KiB). The records were likely written and
			// are re-sent; say what ends it.
			err = fmt.Errorf("%w (the endpoint's whole CBOR answer of %d bytes is malformed: if it is kinesalite, or another stand-in with broken CBOR, set protocol: json)", err, pc.resp.Len())
		}
		return nil, resp.StatusCode, f.opError(f.wrapResponse(resp, &smithy.DeserializationError{Err: err}))
	}
	return &pc.out, resp.StatusCode, nil
}

// responseError builds the error of a non-2xx answer with the SDK's own JSON
// 1.1 error deserializer, so codes, messages and typed errors are the SDK's.
func (f *fastClient) responseError(ctx context.Context, resp *http.Response, body []byte, rerr error) error {
	var err error
	if rerr != nil {
		err = &smithy.DeserializationError{Err: fmt.Errorf("failed to read error response body, %w", rerr)}
	} else {
		r := *resp
		if isCBOR(resp) && len(body) > 0 {
			// The SDK's deserializer reads JSON: the same members, transcoded.
			if j, terr := cborToJSON(body); terr == nil {
				body = j
				r.Header = resp.Header.Clone()
				r.Header.Set("Content-Type", "application/x-amz-json-1.1")
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		err = f.opts.Protocol.DeserializeResponse(ctx, f.opSchema, kinesis.TypeRegistry, &smithyhttp.Response{Response: &r}, &kinesis.PutRecordsOutput{})
		if err == nil {
			err = fmt.Errorf("HTTP %d without an error body", resp.StatusCode)
		}
		// As the SDK path does (awsconf): no session token quoted.
		err = awsconf.RedactSignatureDetails(err)
	}
	return f.wrapResponse(resp, err)
}

func (f *fastClient) wrapResponse(resp *http.Response, err error) error {
	reqID := resp.Header.Get("X-Amzn-Requestid")
	if reqID == "" {
		reqID = resp.Header.Get("X-Amz-Request-Id")
	}
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: err},
		RequestID:     reqID,
	}
}

// appendPutRecordsBody appends the PutRecords JSON 1.1 body, members in the
// SDK's order: {"Records":[{"Data","ExplicitHashKey","PartitionKey"}...],
// "StreamARN" or "StreamName"}.
func appendPutRecordsBody(b []byte, recs []*record, stream streamRef) []byte {
	b = append(b, `{"Records":[`...)
	for i, r := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Data":"`...)
		b = appendBase64(b, r.data)
		b = append(b, '"')
		if r.hashKey != nil {
			b = append(b, `,"ExplicitHashKey":`...)
			b = appendJSONString(b, *r.hashKey)
		}
		b = append(b, `,"PartitionKey":`...)
		b = appendJSONString(b, r.key)
		b = append(b, '}')
	}
	if stream.arn != "" {
		b = append(b, `],"StreamARN":`...)
		b = appendJSONString(b, stream.arn)
	} else {
		b = append(b, `],"StreamName":`...)
		b = appendJSONString(b, stream.name)
	}
	return append(b, '}')
}

// b64Pairs maps 12 bits to their two base64 (standard alphabet) characters,
// first character in the low byte.
var b64Pairs = func() (t [4096]uint16) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range t {
		t[i] = uint16(alphabet[i>>6]) | uint16(alphabet[i&63])<<8
	}
	return t
}()

// appendBase64 appends the standard, padded base64 encoding of src (what
// base64.StdEncoding.AppendEncode gives) six bytes at a time through
// b64Pairs, about twice as fast; the tail goes through encoding/base64.
func appendBase64(dst, src []byte) []byte {
	n := base64.StdEncoding.EncodedLen(len(src))
	dst = slices.Grow(dst, n)
	out := dst[len(dst) : len(dst)+n]
	si, di := 0, 0
	for ; len(src)-si >= 8; si, di = si+6, di+8 {
		v := binary.BigEndian.Uint64(src[si:])
		o := out[di : di+8]
		binary.LittleEndian.PutUint16(o[0:], b64Pairs[v>>52])
		binary.LittleEndian.PutUint16(o[2:], b64Pairs[(v>>40)&0xfff])
		binary.LittleEndian.PutUint16(o[4:], b64Pairs[(v>>28)&0xfff])
		binary.LittleEndian.PutUint16(o[6:], b64Pairs[(v>>16)&0xfff])
	}
	base64.StdEncoding.Encode(out[di:], src[si:])
	return dst[:len(dst)+n]
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string escaped exactly like the
// SDK's JSON shape serializer: printable ASCII but '"' and '\\' as is, \n \r
// \t short, other control characters and DEL as \u00XX, invalid UTF-8 as
// U+FFFD, U+2028/U+2029 escaped, other Unicode as UTF-8.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// decode parses a PutRecords answer into pc.out. Unknown members are
// skipped; the strings of the result point into one copy of the answer.
func (pc *putCall) decode(body []byte) error {
	p := jsonScanner{b: body, s: string(body)}
	pc.out = kinesis.PutRecordsOutput{}
	pc.results = pc.results[:0]
	pc.strs = pc.strs[:0]
	pc.masks = pc.masks[:0]
	var failed *int32
	var sawRecords bool
	err := p.object(func(key string) error {
		switch key {
		case "FailedRecordCount":
			n, err := p.integer()
			if err != nil {
				return err
			}
			v := int32(n)
			failed = &v
		case "EncryptionType":
			s, null, err := p.str()
			if err != nil || null {
				return err
			}
			pc.out.EncryptionType = types.EncryptionType(s)
		case "Records":
			sawRecords = true
			return p.array(func() error {
				pc.results = append(pc.results, types.PutRecordsResultEntry{})
				var e [4]string
				var has [4]bool
				if seq, shard, ok := p.plainEntry(); ok {
					// The usual success entry, read without the generic
					// scanner.
					pc.strs = append(pc.strs, seq, shard)
					pc.masks = append(pc.masks, 1|2)
					return nil
				}
				err := p.object(func(key string) error {
					k := resultMember(key)
					if k < 0 {
						return p.skip()
					}
					s, null, err := p.str()
					if err == nil && !null {
						e[k], has[k] = s, true
					}
					return err
				})
				if err != nil {
					return err
				}
				pc.addEntry(&e, &has)
				return nil
			})
		default:
			return p.skip()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("decoding PutRecords response: %w", err)
	}
	if p.ws(); p.i != len(p.b) {
		return fmt.Errorf("decoding PutRecords response: trailing data at offset %d", p.i)
	}
	if !sawRecords {
		return errors.New("decoding PutRecords response: no Records")
	}
	pc.finish(failed)
	return nil
}

// resultMember is the index of a result entry's member in [SequenceNumber,
// ShardId, ErrorCode, ErrorMessage], or -1 for any other member.
func resultMember(key string) int {
	switch key {
	case "SequenceNumber":
		return 0
	case "ShardId":
		return 1
	case "ErrorCode":
		return 2
	case "ErrorMessage":
		return 3
	}
	return -1
}

// addEntry keeps the members of a result entry that has marks; the
// pointers are set by finish, once pc.strs no longer grows.
func (pc *putCall) addEntry(e *[4]string, has *[4]bool) {
	var mask uint8
	for k := range e {
		if has[k] {
			pc.strs = append(pc.strs, e[k])
			mask |= 1 << k
		}
	}
	pc.masks = append(pc.masks, mask)
}

// finish points the results' strings into pc.strs, now that it no longer
// grows, and completes pc.out.
func (pc *putCall) finish(failed *int32) {
	k := 0
	for j := range pc.results {
		r := &pc.results[j]
		ptrs := [4]**string{&r.SequenceNumber, &r.ShardId, &r.ErrorCode, &r.ErrorMessage}
		for m := range ptrs {
			if pc.masks[j]&(1<<m) != 0 {
				*ptrs[m] = &pc.strs[k]
				k++
			}
		}
	}
	pc.out.FailedRecordCount = failed
	pc.out.Records = pc.results
}

// jsonScanner is a minimal JSON reader for the PutRecords answer: objects,
// arrays, strings (unescaped without allocation when they hold no escape),
// integers, and skipping of any other value.
type jsonScanner struct {
	b []byte
	s string // the same bytes, for substrings
	i int
}

// plainEntry reads an entry of exactly the form
// {"SequenceNumber":"<digits>","ShardId":"<printable ASCII>"} (how Kinesis
// answers a written record) and reports false, consuming nothing, for
// anything else.
func (p *jsonScanner) plainEntry() (seq, shard string, ok bool) {
	const pre, mid, post = `{"SequenceNumber":"`, `","ShardId":"`, `"}`
	p.ws()
	i := p.i
	if !p.literal(pre) {
		return "", "", false
	}
	j := p.i
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	seq = p.s[p.i:j]
	p.i = j
	if len(seq) == 0 || !p.literal(mid) {
		p.i = i
		return "", "", false
	}
	j = p.i
	for j < len(p.b) && p.b[j] >= 0x20 && p.b[j] < 0x7f && p.b[j] != '"' && p.b[j] != '\\' {
		j++
	}
	shard = p.s[p.i:j]
	p.i = j
	if !p.literal(post) {
		p.i = i
		return "", "", false
	}
	return seq, shard, true
}

func (p *jsonScanner) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonScanner) errf(format string, args ...any) error {
	return fmt.Errorf("offset %d: "+format, append([]any{p.i}, args...)...)
}

func (p *jsonScanner) peek() byte {
	p.ws()
	if p.i >= len(p.b) {
		return 0
	}
	return p.b[p.i]
}

func (p *jsonScanner) literal(lit string) bool {
	if len(p.b)-p.i >= len(lit) && p.s[p.i:p.i+len(lit)] == lit {
		p.i += len(lit)
		return true
	}
	return false
}

// object reads an object (or null), calling member for each key with the
// scanner on the value.
func (p *jsonScanner) object(member func(key string) error) error {
	switch p.peek() {
	case 'n':
		if p.literal("null") {
			return nil
		}
	case '{':
	default:
		return p.errf("expected an object")
	}
	p.i++
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		if p.peek() != '"' {
			return p.errf("expected a member name")
		}
		key, _, err := p.str()
		if err != nil {
			return err
		}
		if p.peek() != ':' {
			return p.errf("expected ':'")
		}
		p.i++
		if err := member(key); err != nil {
			return err
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.errf("expected ',' or '}'")
		}
	}
}

func (p *jsonScanner) array(elem func() error) error {
	switch p.peek() {
	case 'n':
		if p.literal("null") {
			return nil
		}
	case '[':
	default:
		return p.errf("expected an array")
	}
	p.i++
	if p.peek() == ']' {
		p.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.errf("expected ',' or ']'")
		}
	}
}

// str reads a string or null.
func (p *jsonScanner) str() (s string, null bool, err error) {
	switch p.peek() {
	case 'n':
		if p.literal("null") {
			return "", true, nil
		}
		return "", false, p.errf("expected a string")
	case '"':
	default:
		return "", false, p.errf("expected a string")
	}
	start := p.i
	p.i++
	escaped, ascii := false, true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !escaped {
				raw := p.s[start+1 : p.i-1]
				if !ascii && !utf8.ValidString(raw) {
					return "", false, p.errf("invalid UTF-8 in string")
				}
				return raw, false, nil
			}
			var v string
			if err := json.Unmarshal(p.b[start:p.i], &v); err != nil {
				return "", false, p.errf("%v", err)
			}
			return v, false, nil
		case c == '\\':
			escaped = true
			p.i += 2
		case c < 0x20:
			return "", false, p.errf("control character in string")
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			p.i++
		}
	}
	return "", false, p.errf("unterminated string")
}

func (p *jsonScanner) integer() (int64, error) {
	p.ws()
	start := p.i
	for p.i < len(p.b) && (p.b[p.i] == '-' || (p.b[p.i] >= '0' && p.b[p.i] <= '9')) {
		p.i++
	}
	n, err := strconv.ParseInt(p.s[start:p.i], 10, 32)
	if err != nil {
		return 0, p.errf("expected an integer: %v", err)
	}
	return n, nil
}

// skip skips any value, checking it with encoding/json.
func (p *jsonScanner) skip() error {
	p.ws()
	var raw json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(p.b[p.i:]))
	if err := dec.Decode(&raw); err != nil {
		return p.errf("%v", err)
	}
	p.i += int(dec.InputOffset())
	return nil
}
