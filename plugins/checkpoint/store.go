package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Store persists a State. Load returns (nil, nil) when nothing is stored.
type Store interface {
	Load(ctx context.Context) (*State, error)
	Save(ctx context.Context, st *State) error
	String() string
}

// Encode and Decode are the stored form of a State (JSON).
func Encode(st *State) ([]byte, error) {
	st.Version = Version
	return json.Marshal(st)
}

// Decode reads a stored State; where names it in errors. A checkpoint
// that cannot be read is never taken for none: starting over
// would load every table and re-read every CDC file. The error names it,
// says what is wrong and how to go on. A newer version than Version is
// refused (this one cannot know what it would skip); fields this version
// does not know, in a checkpoint of its Version, are ignored: a field added
// without a new version is one an older reader may do without.
func Decode(b []byte, where string) (*State, error) {
	const startOver = "dmsbridge does not start over by itself, since that would load every table and re-read every CDC file again; remove it to start over (or set another checkpoint.key)"
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("checkpoint %s is corrupt (%d bytes: %v): put back a good copy (e.g. from a backup) to go on from it; %s", where, len(b), err, startOver)
	}
	switch {
	case st.Version == 0:
		return nil, fmt.Errorf("checkpoint %s holds no version: it is not a dmsbridge checkpoint (or is damaged); put back a good copy to go on from it; %s", where, startOver)
	case st.Version > Version:
		return nil, fmt.Errorf("checkpoint %s has version %d, written by a newer dmsbridge (this one reads version %d): run that newer version again to go on from it; %s", where, st.Version, Version, startOver)
	case st.Version != Version:
		return nil, fmt.Errorf("checkpoint %s has version %d, which this dmsbridge (version %d) does not read; %s", where, st.Version, Version, startOver)
	}
	return &st, nil
}

// Version is the checkpoint format Encode writes and Decode reads.
const Version = 1

// None stores nothing: every start is a fresh start.
type None struct{}

func (None) Load(context.Context) (*State, error) { return nil, nil }
func (None) Save(context.Context, *State) error   { return nil }
func (None) String() string                       { return "none" }

// File stores the state in one local file, replaced atomically: the new
// content is written to a temporary file in the same directory, fsynced,
// renamed over the old file, and the directory is fsynced, so a crash at any
// moment leaves either the old or the new checkpoint, never a torn one.
type File struct {
	Path string

	dirMade bool // the directory was created by an earlier save
}

func (f *File) String() string { return "file " + f.Path }

func (f *File) Load(context.Context) (*State, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	return Decode(b, f.Path)
}

func (f *File) Save(_ context.Context, st *State) error {
	b, err := Encode(st)
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	if !f.dirMade {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("checkpoint directory: %w", err)
		}
		f.dirMade = true
	}
	// The temporary file's name is the checkpoint's with a dot before and
	// ".tmp-<random>" after: cut so that it fits in the 255 bytes of a
	// file name whenever the checkpoint's own name does.
	base := filepath.Base(f.Path)
	if len(base) > 200 {
		base = strings.ToValidUTF8(base[:200], "")
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if errors.Is(err, os.ErrNotExist) && f.dirMade { // removed since: make it again
		f.dirMade = false
		return f.Save(context.Background(), st)
	}
	if err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	fail := func(what string, err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("%s checkpoint %s: %w", what, tmp.Name(), err)
	}
	if _, err := tmp.Write(b); err != nil {
		return fail("writing", err)
	}
	if err := tmp.Sync(); err != nil {
		return fail("syncing", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("closing checkpoint %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("replacing checkpoint %s: %w", f.Path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing checkpoint directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing checkpoint directory %s: %w", dir, err)
	}
	return nil
}

// claims are the checkpoints (file paths, S3 objects) in use by inputs of
// this process, e.g. several streams of one streams-mode process.
var claims sync.Map // id -> *claim

type claim struct{ holder string }

// Claim marks the checkpoint id (see ClaimID) as used by holder (a
// description for the error), or fails naming the holder that uses it: two
// inputs saving one position overwrite each other's, and the one restarted
// later resumes where the other stopped, skipping rows it never delivered.
// release ends the claim (more calls do nothing).
func Claim(id, holder string) (release func(), err error) {
	c := &claim{holder: holder}
	if prev, loaded := claims.LoadOrStore(id, c); loaded {
		return nil, fmt.Errorf("checkpoint %s is already used by %s in this process: two inputs on one checkpoint overwrite each other's position; give each its own checkpoint.key", id, prev.(*claim).holder)
	}
	var once sync.Once
	return func() { once.Do(func() { claims.CompareAndDelete(id, c) }) }, nil
}

// Claimable is a store that names what it writes for Claim (e.g. a cache
// resource and key, shared by every stream of a streams-mode process).
type Claimable interface{ ClaimID() string }

// ClaimID names the checkpoint a store writes, for Claim: the file of a
// File, the ClaimID of a Claimable; "" for the other stores: s3 fences
// other holders itself, in this process or any other, and none holds
// nothing.
func ClaimID(st Store) string {
	if c, ok := st.(Claimable); ok {
		return c.ClaimID()
	}
	if s, ok := st.(*File); ok {
		if real, err := RealPath(s.Path); err == nil {
			return "file " + real
		}
		return "file " + s.Path
	}
	return ""
}

// RealPath makes p absolute and clean, and resolves the symbolic links of
// its longest existing prefix (the rest, not created yet, is kept as
// written), so that two names of one file, one through a link, are one
// path.
func RealPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	cur, rest := abs, ""
	for {
		if real, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(real, rest), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// S3API is the part of the S3 client the S3 store uses.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// ErrHeld is returned by S3.Load when another live instance owns the
// checkpoint; ErrFenced by S3.Save when another instance wrote it since.
var (
	ErrHeld   = errors.New("checkpoint is held by another running instance")
	ErrFenced = errors.New("checkpoint was overwritten by another instance")
)

// S3 stores the state in one object, and fences concurrent instances with
// conditional writes (If-None-Match: * to create it, If-Match: <ETag of our
// last write> to replace it), which AWS S3 and versitygw v1.8.0 both honour
// with 412 PreconditionFailed.
//
// Load claims the checkpoint: it refuses (ErrHeld) when the stored state
// names another Owner that wrote it less than Lease ago (by the S3 server's
// clock, see read) and did not release it, then writes the state back under its own Owner. From then on
// every Save is conditional on the ETag of the previous write, so if a second
// instance took over, the first fails with ErrFenced on its next write
// instead of double-processing. Save refreshes Heartbeat; the input saves at
// every checkpoint interval even when nothing moved, so Lease must be
// several intervals. After a crash (no release) a restart waits up to Lease.
type S3 struct {
	Client S3API
	Bucket string
	Key    string
	// ExpectedBucketOwner is sent with every request when set.
	ExpectedBucketOwner string
	Owner               string
	Lease               time.Duration
	Now                 func() time.Time
	// Timeout, when set, bounds each request (the input's request_timeout):
	// a request S3 does not answer (a network partition) fails after it
	// instead of hanging until TCP gives up, minutes later.
	Timeout time.Duration

	etag    *string
	written int64
	later   time.Duration // tests: judge the lease this much later

	mu        sync.Mutex
	heldUntil time.Time // local, monotonic: when the lease of the last write runs out
}

// HeldUntil is when this instance's claim runs out unless a write succeeds
// before: the lease from the moment the last successful write was sent (the
// object's Heartbeat and its LastModified are no earlier, so no other
// instance can take over before). It is measured with this process's
// monotonic clock, so a pause of the process or of S3 counts, and a wall
// clock step does not. The zero time before the first write.
func (s *S3) HeldUntil() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heldUntil
}

func (s *S3) String() string { return fmt.Sprintf("s3://%s/%s", s.Bucket, s.Key) }

func (s *S3) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *S3) owner() *string {
	if s.ExpectedBucketOwner == "" {
		return nil
	}
	return aws.String(s.ExpectedBucketOwner)
}

// request returns the context of one request, bounded by Timeout when set.
func (s *S3) request(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.Timeout)
}

// noAnswer names a request's failure that Timeout caused (rctx's deadline
// passed while ctx was alive).
func (s *S3) noAnswer(ctx, rctx context.Context, err error) error {
	if err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within request_timeout (%v): %w", s.Timeout, err)
	}
	return err
}

func (s *S3) Load(ctx context.Context) (*State, error) {
	st, etag, age, err := s.read(ctx)
	if isCode(err, "AccessDenied") {
		// S3 answers a GET of a key that does not exist with 403, not
		// 404, when the credentials lack s3:ListBucket on the bucket (a
		// policy granting only s3:GetObject and s3:PutObject on the
		// checkpoints' prefix), so the first start sees this. The
		// create-only write tells the two cases apart: it succeeds only
		// when there is no checkpoint, and never overwrites one.
		s.etag = nil
		if cerr := s.Save(ctx, &State{}); cerr != nil {
			return nil, fmt.Errorf("%w (S3 also answers so when the checkpoint does not exist yet and the credentials lack s3:ListBucket on the bucket, but creating it failed: %v)", err, cerr)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.etag = etag
	if st != nil {
		s.written = st.Written
		if st.Owner != "" && st.Owner != s.Owner && !st.Released {
			if age < s.Lease {
				return nil, fmt.Errorf("%w: %s is owned by %q, last written %s ago (lease %s); is another dmsbridge running with the same checkpoint.key? If that instance is gone, this one takes over once the lease expires", ErrHeld, s, st.Owner, age.Round(time.Millisecond), s.Lease)
			}
		}
	}
	// Claim it: write it back under our name (or create it).
	claim := State{}
	if st != nil {
		claim = *st
	}
	claim.Released = false
	if err := s.Save(ctx, &claim); err != nil {
		return nil, err
	}
	return st, nil
}

// Peek reads the stored state without claiming it (nil when there is
// none).
func (s *S3) Peek(ctx context.Context) (*State, error) {
	st, _, _, err := s.read(ctx)
	return st, err
}

func (s *S3) Save(ctx context.Context, st *State) error {
	sent := time.Now()
	s.written++
	st.Owner = s.Owner
	st.Written = s.written
	st.Heartbeat = s.now().UnixMilli()
	b, err := Encode(st)
	if err != nil {
		return err
	}
	for again := false; ; again = true {
		in := &s3.PutObjectInput{Bucket: &s.Bucket, Key: &s.Key, Body: bytes.NewReader(b), ContentType: aws.String("application/json"), ExpectedBucketOwner: s.owner()}
		if s.etag == nil {
			in.IfNoneMatch = aws.String("*")
		} else {
			in.IfMatch = s.etag
		}
		rctx, cancel := s.request(ctx)
		out, err := s.Client.PutObject(rctx, in)
		err = s.noAnswer(ctx, rctx, err)
		cancel()
		// A PUT with If-Match on a key that no longer exists (deleted by an
		// operator or a lifecycle rule) is answered 404 NoSuchKey, not 412:
		// read back like a failed condition, it is found deleted and fenced.
		if isCode(err, "PreconditionFailed", "ConditionalRequestConflict") || (in.IfMatch != nil && isCode(err, "NoSuchKey", "NotFound")) {
			// Our own write fails the condition too when its answer was
			// lost: the SDK's retry of it, or the write after one that
			// landed unanswered. The object then still names this owner,
			// which no other instance writes.
			cur, etag, gerr := s.current(ctx)
			if gerr != nil {
				return fmt.Errorf("writing checkpoint %s: the conditional write failed (%v), and reading it back to see who wrote it failed: %w", s, err, gerr)
			}
			if cur == nil {
				return fmt.Errorf("%w: %s was deleted while this instance (%q) held it: it was deleted by something other than dmsbridge (an operator, a lifecycle rule), so this one stops rather than guess; restore the object to go on from it, or restart to begin again from the start", ErrFenced, s, s.Owner)
			}
			if cur.Owner != s.Owner {
				by := fmt.Sprintf("now owned by %q", cur.Owner)
				return fmt.Errorf("%w: %s changed since this instance (%q) last wrote it (%s); another dmsbridge is running with the same checkpoint.key, so this one stops instead of double-processing", ErrFenced, s, s.Owner, by)
			}
			s.etag = etag
			if cur.Written == st.Written {
				s.held(sent)
				return nil // this write landed; its answer was lost
			}
			if !again {
				continue // an earlier write of ours landed unanswered: write over it
			}
		}
		if err != nil {
			return fmt.Errorf("writing checkpoint %s: %w", s, err)
		}
		s.etag = out.ETag
		s.held(sent)
		return nil
	}
}

func (s *S3) held(sent time.Time) {
	s.mu.Lock()
	s.heldUntil = sent.Add(s.Lease)
	s.mu.Unlock()
}

// current reads the stored state and its ETag (nil, nil when there is none).
func (s *S3) current(ctx context.Context) (*State, *string, error) {
	st, etag, _, err := s.read(ctx)
	return st, etag, err
}

// read is current that also says how long ago the state was written. The
// age is judged by the S3 server's clock (the Date of the answer minus the
// object's Last-Modified), so the clocks of the instances, which may be
// skewed by any amount, play no part: comparing this host's clock with the
// Heartbeat the holder took from its own would let a standby whose clock
// runs ahead take over a live holder. Both headers have whole seconds, so a
// second is taken off: the age is never overstated, and a takeover comes at
// most a second late, never early. Only a server that sends neither header
// leaves the Heartbeat and this host's clock to judge by.
func (s *S3) read(ctx context.Context) (*State, *string, time.Duration, error) {
	rctx, cancel := s.request(ctx) // the body is read under it too
	defer cancel()
	out, err := s.Client.GetObject(rctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &s.Key, ExpectedBucketOwner: s.owner()})
	if isCode(err, "NoSuchKey", "NotFound") {
		return nil, nil, 0, nil
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("reading checkpoint %s: %w", s, s.noAnswer(ctx, rctx, err))
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("reading checkpoint %s: %w", s, s.noAnswer(ctx, rctx, err))
	}
	st, err := Decode(b, s.String())
	if err != nil {
		return nil, nil, 0, err
	}
	age := s.now().Sub(time.UnixMilli(st.Heartbeat))
	if out.LastModified != nil {
		if raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok {
			if date, err := http.ParseTime(raw.Header.Get("Date")); err == nil {
				// A write made within the second reads -1 s (or less, when
				// the server rounds the two differently): it is 0.
				age = max(date.Sub(*out.LastModified)-time.Second, 0)
			}
		}
	}
	return st, out.ETag, age + s.later, nil
}

func isCode(err error, codes ...string) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		for _, c := range codes {
			if ae.ErrorCode() == c {
				return true
			}
		}
	}
	return false
}
