package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/dmsbridge/dmsbridge/plugins/awsconf"
)

func TestTrackerOutOfOrder(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 200; round++ {
		tr := NewTracker[int]()
		n := rnd.IntN(50) + 1
		ids := make([]uint64, n)
		for i := range ids {
			ids[i] = tr.Track(i)
		}
		acked := make([]bool, n)
		for _, k := range rnd.Perm(n) {
			hi, _ := tr.Ack(ids[k])
			acked[k] = true
			want := -1
			for want+1 < n && acked[want+1] {
				want++
			}
			got, ok := tr.Highest()
			if want == -1 {
				if ok {
					t.Fatalf("highest %d before entry 0 acked", got)
				}
				continue
			}
			if got != want || hi != want {
				t.Fatalf("after acking %v: highest %d (returned %d), want %d", acked, got, hi, want)
			}
		}
		if tr.Pending() != 0 {
			t.Fatalf("pending %d", tr.Pending())
		}
		// Acks of unknown or already acked ids change nothing.
		if _, moved := tr.Ack(ids[0]); moved {
			t.Fatal("re-ack moved")
		}
	}
}

func TestTrackerNackHoldsBack(t *testing.T) {
	tr := NewTracker[string]()
	a, b, c := tr.Track("a"), tr.Track("b"), tr.Track("c")
	tr.Ack(a)
	tr.Ack(c) // b was nacked: stays pending
	if hi, _ := tr.Highest(); hi != "a" {
		t.Fatalf("highest %q, want a", hi)
	}
	// b is redelivered and acked with the same id.
	if hi, moved := tr.Ack(b); !moved || hi != "c" {
		t.Fatalf("highest %q moved %v, want c", hi, moved)
	}
}

// A reopened entry (re-sent after an earlier batch's nack) holds the
// position back again until it is acknowledged again; an entry already
// passed cannot be reopened.
func TestTrackerReopen(t *testing.T) {
	tr := NewTracker[string]()
	a, b, c := tr.Track("a"), tr.Track("b"), tr.Track("c")
	tr.Ack(a)
	tr.Ack(c)
	if tr.Reopen(a) {
		t.Fatal("reopened an entry already passed")
	}
	if !tr.Reopen(c) || !tr.Reopen(b) {
		t.Fatal("could not reopen pending entries")
	}
	if hi, moved := tr.Ack(b); !moved || hi != "b" {
		t.Fatalf("highest %q moved %v, want b (c reopened)", hi, moved)
	}
	if hi, moved := tr.Ack(c); !moved || hi != "c" {
		t.Fatalf("highest %q moved %v, want c", hi, moved)
	}
}

func TestTrackerConcurrent(t *testing.T) {
	tr := NewTracker[int]()
	ids := make(chan uint64, 10000)
	for i := 0; i < 10000; i++ {
		ids <- tr.Track(i)
	}
	close(ids)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				tr.Ack(id)
			}
		}()
	}
	wg.Wait()
	if hi, _ := tr.Highest(); hi != 9999 || tr.Pending() != 0 {
		t.Fatalf("highest %d pending %d", hi, tr.Pending())
	}
}

func TestSortKeyOrder(t *testing.T) {
	type p struct {
		phase Phase
		seq   int
		key   string
		off   int64
	}
	// In processing order.
	ps := []p{
		{PhaseFullLoad, 0, "hr/zeta/LOAD1.csv", 0},
		{PhaseFullLoad, 0, "hr/zeta/LOAD1.csv", 9},
		{PhaseFullLoad, 0, "hr/zeta/LOAD1.csv", 10},
		{PhaseFullLoad, 0, "hr/zeta/LOAD1.csv!", 0},
		{PhaseFullLoad, 0, "hr/zeta/LOAD1.csv.gz", 0},
		{PhaseFullLoad, 1, "hr/alpha/LOAD1.csv", 0},
		{PhaseFullLoad, 12, "a", 5},
		{PhaseCDC, 0, "cdc/a", 100},
	}
	ps = append(ps,
		p{PhaseCDC, 0, "cdc/a\x01", 0},
		p{PhaseCDC, 0, "cdc/a\x01b", 0},
		p{PhaseCDC, 0, "cdc/a\x02", 0},
		p{PhaseCDC, 0, "cdc/a b", 0},
		p{PhaseCDC, 0, "cdc/a!", 0},
		p{PhaseCDC, 0, "cdc/a\"", 0},
		p{PhaseCDC, 0, "cdc/aé", 0},
		p{PhaseCDC, 1, "cdc/0-late", 0},
	)
	// The CDC keys of seq 0 above are in S3 (byte) order.
	var cdcKeys []string
	for _, x := range ps {
		if x.phase == PhaseCDC && x.seq == 0 {
			cdcKeys = append(cdcKeys, x.key)
		}
	}
	if !sort.StringsAreSorted(cdcKeys) {
		t.Fatalf("fixture keys not in byte order: %q", cdcKeys)
	}
	prev := ""
	for i, x := range ps {
		s := SortKey(x.phase, x.seq, x.key, x.off)
		if i > 0 && s <= prev {
			t.Fatalf("%q sorts before or equal to %q", s, prev)
		}
		prev = s
	}
	if got := SortKey(PhaseCDC, 3, "cdc/CDC 1.csv", 42); got != "2/00003/cdc/CDC!201.csv 00000000000000000042" {
		t.Fatalf("format: %q", got)
	}
	// Random keys: position order equals (key, offset) order.
	rnd := rand.New(rand.NewPCG(5, 6))
	for n := 0; n < 20000; n++ {
		k1, k2 := randKey(rnd), randKey(rnd)
		o1, o2 := rnd.Int64N(3), rnd.Int64N(3)
		want := k1 < k2 || (k1 == k2 && o1 < o2)
		if got := SortKey(PhaseCDC, 0, k1, o1) < SortKey(PhaseCDC, 0, k2, o2); got != want {
			t.Fatalf("%q/%d vs %q/%d: got less=%v", k1, o1, k2, o2, got)
		}
	}
}

func randKey(rnd *rand.Rand) string {
	b := make([]byte, rnd.IntN(4))
	for i := range b {
		b[i] = []byte{0, 1, ' ', '!', '"', '/', 'a', 0xC3}[rnd.IntN(8)]
	}
	return string(b)
}

func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	f := &File{Path: filepath.Join(dir, "sub", "ckpt.json")}
	st, err := f.Load(context.Background())
	if err != nil || st != nil {
		t.Fatalf("empty load: %v %v", st, err)
	}
	want := &State{Position: Position{Phase: PhaseCDC, Key: "cdc/CDC2.csv", ETag: `"e"`, Offset: 10, Line: 2}, LateDone: []string{"cdc/x"}}
	for i := 0; i < 3; i++ {
		want.Position.Offset += int64(i)
		if err := f.Save(context.Background(), want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.Load(context.Background())
	if err != nil || fmt.Sprint(*got) != fmt.Sprint(*want) {
		t.Fatalf("got %+v %v want %+v", got, err, want)
	}
	// Nothing but the checkpoint is left behind (no temporary files).
	ents, _ := os.ReadDir(filepath.Dir(f.Path))
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries", len(ents))
	}
	os.WriteFile(f.Path, []byte("{trunc"), 0o644)
	if _, err := f.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "ckpt.json is corrupt") {
		t.Fatalf("corrupt file: %v", err)
	}
	ro := &File{Path: filepath.Join("/proc", "nope", "ckpt.json")}
	if err := ro.Save(context.Background(), want); err == nil {
		t.Fatal("save into /proc succeeded")
	}
}

func s3Client(t *testing.T) *s3.Client {
	t.Helper()
	ep := os.Getenv("S3_ENDPOINT")
	if ep == "" {
		t.Fatal("S3_ENDPOINT is not set: start the test services (tests/services.sh start) and source .cache/services.env")
	}
	conf, err := awsconf.Load(context.Background(), awsconf.Config{Endpoint: ep, Region: os.Getenv("AWS_REGION")})
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(conf, func(o *s3.Options) { o.UsePathStyle = true; o.DisableLogOutputChecksumValidationSkipped = true })
}

func newBucket(t *testing.T, c *s3.Client) string {
	t.Helper()
	b := fmt.Sprintf("ckpt-%d-%d", time.Now().UnixNano(), rand.IntN(1000))
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &b}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		l, _ := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b})
		if l != nil {
			for _, o := range l.Contents {
				c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b, Key: o.Key})
			}
		}
		c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &b})
	})
	return b
}

// TestS3StoreFencing runs against versitygw (S3_ENDPOINT).
func TestS3StoreFencing(t *testing.T) {
	ctx := context.Background()
	c := s3Client(t)
	bucket := newBucket(t, c)
	now := time.Now()
	clock := func() time.Time { return now }
	a := &S3{Client: c, Bucket: bucket, Key: "ckpt/job.json", Owner: "instance-a", Lease: 30 * time.Second, Now: clock}
	st, err := a.Load(ctx)
	if err != nil || st != nil {
		t.Fatalf("first load: %v %v", st, err)
	}
	pos := Position{Phase: PhaseFullLoad, Key: "hr/emp/LOAD1.csv", Offset: 100, Line: 5}
	if err := a.Save(ctx, &State{Position: pos}); err != nil {
		t.Fatal(err)
	}
	// A second instance with the same key is refused while a's lease runs.
	b := &S3{Client: c, Bucket: bucket, Key: "ckpt/job.json", Owner: "instance-b", Lease: 30 * time.Second, Now: clock}
	_, err = b.Load(ctx)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), `owned by "instance-a"`) || !strings.Contains(err.Error(), "checkpoint.key") {
		t.Fatalf("second instance: %v", err)
	}
	// a keeps writing.
	pos.Offset = 200
	if err := a.Save(ctx, &State{Position: pos}); err != nil {
		t.Fatal(err)
	}
	// Once the lease has expired (a is gone), b takes over and gets a's position...
	now = now.Add(31 * time.Second)
	b.later = 35 * time.Second // the lease is judged by the server's clock (whole seconds, conservatively)
	got, err := b.Load(ctx)
	if err != nil || got.Position != pos {
		t.Fatalf("takeover: %+v %v", got, err)
	}
	// ...and a, if it was only paused, is fenced on its next write.
	err = a.Save(ctx, &State{Position: pos})
	if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "another dmsbridge is running") {
		t.Fatalf("stale writer: %v", err)
	}
	// A released checkpoint is taken over at once.
	if err := b.Save(ctx, &State{Position: pos, Released: true}); err != nil {
		t.Fatal(err)
	}
	c2 := &S3{Client: c, Bucket: bucket, Key: "ckpt/job.json", Owner: "instance-c", Lease: time.Hour, Now: clock}
	if got, err := c2.Load(ctx); err != nil || got.Position != pos {
		t.Fatalf("after release: %+v %v", got, err)
	}
	// Two instances racing to create a fresh checkpoint: exactly one wins.
	var wins, fenced int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := &S3{Client: c, Bucket: bucket, Key: "ckpt/race.json", Owner: fmt.Sprint("r", i), Lease: time.Hour}
			_, err := s.Load(ctx)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrFenced), errors.Is(err, ErrHeld):
				fenced++
			default:
				t.Errorf("racer %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 || fenced != 3 {
		t.Fatalf("wins %d fenced %d", wins, fenced)
	}
}

// The record of listed keys stays within SeenCap by dropping the oldest
// modification times, all keys of a time together, and moves Since past
// them: every key added at or after Since is still known.
func TestSeenSetBounded(t *testing.T) {
	s := NewSeenSet()
	for i := 0; i < 3*SeenCap; i++ {
		s.Add(fmt.Sprintf("cdc/%05d", i), int64(1000+i/3)) // three keys per millisecond
	}
	snap := s.Snapshot()
	if len(snap.Keys) > SeenCap || len(snap.Keys) < SeenCap-2 {
		t.Fatalf("%d keys kept, cap %d", len(snap.Keys), SeenCap)
	}
	for i := 0; i < 3*SeenCap; i++ {
		k, mod := fmt.Sprintf("cdc/%05d", i), int64(1000+i/3)
		if s.Covers(mod) != snap.Contains(k) || s.Has(k) != snap.Contains(k) {
			t.Fatalf("key %s (mod %d): covered %v, kept %v", k, mod, s.Covers(mod), snap.Contains(k))
		}
	}
	if !s.Covers(1000+3*SeenCap) || s.Covers(999) {
		t.Fatalf("since %d", snap.Since)
	}
	// Stored and read back, the record answers the same.
	b, err := Encode(&State{CDCSeen: snap})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Decode(b, "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.CDCSeen.Since != snap.Since || len(st.CDCSeen.Keys) != len(snap.Keys) || !st.CDCSeen.Contains(snap.Keys[7]) || st.CDCSeen.Contains("cdc/00000") {
		t.Fatalf("decoded record %+v", st.CDCSeen)
	}
}

// A file checkpoint whose directory is removed between saves makes it again.
func TestFileStoreDirectoryRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ck")
	f := &File{Path: filepath.Join(dir, "key.json")}
	st := &State{Position: Position{Phase: PhaseCDC, Key: "cdc/1", Offset: 10}}
	if err := f.Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	st.Position.Offset = 20
	if err := f.Save(context.Background(), st); err != nil {
		t.Fatalf("save after the directory was removed: %v", err)
	}
	got, err := f.Load(context.Background())
	if err != nil || got == nil || got.Position.Offset != 20 {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the checkpoint (no temp files left)", len(entries))
	}
}

// lostAnswer makes the server apply the next PUT while the client sees a
// timeout instead of its answer.
type lostAnswer struct {
	next  http.RoundTripper
	armed atomic.Bool
}

type answerLost struct{}

func (answerLost) Error() string   { return "read tcp: i/o timeout (the answer was lost)" }
func (answerLost) Timeout() bool   { return true }
func (answerLost) Temporary() bool { return true }

func (l *lostAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err == nil && r.Method == http.MethodPut && l.armed.CompareAndSwap(true, false) {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, answerLost{}
	}
	return resp, err
}

// TestS3StoreLostAnswerIsNotFencing: a checkpoint write that lands while
// its answer is lost fails its own condition when re-sent (by the SDK's
// retry, or as the next write with the previous ETag). The only instance
// must not take that for another instance's write and stop; a real
// takeover still fences it.
func TestS3StoreLostAnswerIsNotFencing(t *testing.T) {
	ctx := context.Background()
	bucket := newBucket(t, s3Client(t))
	for _, sdkRetries := range []bool{true, false} {
		t.Run(fmt.Sprint("sdk retries ", sdkRetries), func(t *testing.T) {
			rt := &lostAnswer{next: http.DefaultTransport}
			conf, err := awsconf.Load(ctx, awsconf.Config{Endpoint: os.Getenv("S3_ENDPOINT"), Region: os.Getenv("AWS_REGION")})
			if err != nil {
				t.Fatal(err)
			}
			c := s3.NewFromConfig(conf, func(o *s3.Options) {
				o.UsePathStyle = true
				o.DisableLogOutputChecksumValidationSkipped = true
				o.HTTPClient = &http.Client{Transport: rt}
				if !sdkRetries {
					o.Retryer = aws.NopRetryer{}
				}
			})
			key := fmt.Sprintf("ckpt/lost-%v.json", sdkRetries)
			a := &S3{Client: c, Bucket: bucket, Key: key, Owner: "only-instance", Lease: 30 * time.Second}
			if _, err := a.Load(ctx); err != nil {
				t.Fatal(err)
			}
			pos := Position{Phase: PhaseCDC, Key: "cdc/CDC1.csv", Offset: 10, Line: 2}
			rt.armed.Store(true)
			err = a.Save(ctx, &State{Position: pos})
			if errors.Is(err, ErrFenced) || (sdkRetries && err != nil) {
				t.Fatalf("save whose answer was lost, no other instance: %v", err)
			}
			if rt.armed.Load() {
				t.Fatal("no PUT went through the lossy transport")
			}
			pos.Offset = 20
			if err := a.Save(ctx, &State{Position: pos}); err != nil {
				t.Fatalf("next save, no other instance: %v", err)
			}
			b := &S3{Client: s3Client(t), Bucket: bucket, Key: key, Owner: "instance-b", Lease: 30 * time.Second, later: time.Hour}
			if got, err := b.Load(ctx); err != nil || got.Position != pos {
				t.Fatalf("takeover after the lease: %+v %v", got, err)
			}
			if err := a.Save(ctx, &State{Position: pos}); !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), `now owned by "instance-b"`) {
				t.Fatalf("after a takeover: %v, want fenced naming the new owner", err)
			}
		})
	}
}

// TestSeenCoversKeysBelowTheRecord: a record that kept every key listed
// (Since 0) covers any key; once it dropped older ones, a key sorting before
// every key it kept is beyond it (an old file modified again looks new).
func TestSeenCoversKeysBelowTheRecord(t *testing.T) {
	whole := &Seen{Keys: []string{"c/5", "c/7"}}
	if !whole.Covers("c/1", 10) || !whole.Covers("c/6", 10) {
		t.Fatal("a whole record covers every key")
	}
	capped := &Seen{Since: 5, Keys: []string{"c/5", "c/7"}}
	if capped.Covers("c/1", 10) || !capped.Covers("c/6", 10) || capped.Covers("c/6", 4) {
		t.Fatal("a capped record covers keys after its first one, modified since Since")
	}
}

// TestS3StoreLeaseIgnoresClockSkew: the lease is judged by the S3 server's
// clock, not by comparing this host's clock with the holder's: a standby
// whose clock runs an hour ahead (or a holder whose clock runs behind) is
// still refused while the holder writes, and one whose clock runs behind
// still takes over a dead holder's checkpoint once the lease has passed.
func TestS3StoreLeaseIgnoresClockSkew(t *testing.T) {
	ctx := context.Background()
	c := s3Client(t)
	bucket := newBucket(t, c)
	a := &S3{Client: c, Bucket: bucket, Key: "ckpt/skew.json", Owner: "instance-a", Lease: 30 * time.Second}
	if _, err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	pos := Position{Phase: PhaseCDC, Key: "cdc/CDC1.csv", Offset: 10, Line: 2}
	if err := a.Save(ctx, &State{Position: pos}); err != nil {
		t.Fatal(err)
	}
	ahead := &S3{Client: c, Bucket: bucket, Key: "ckpt/skew.json", Owner: "instance-b", Lease: 30 * time.Second, Now: func() time.Time { return time.Now().Add(time.Hour) }}
	if got, err := ahead.Load(ctx); !errors.Is(err, ErrHeld) {
		t.Fatalf("a standby whose clock is an hour ahead took over a live holder (written just now): %+v %v", got, err)
	}
	// A holder whose clock is behind writes heartbeats that look old.
	slowA := &S3{Client: c, Bucket: bucket, Key: "ckpt/skew2.json", Owner: "instance-a", Lease: 30 * time.Second, Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	if _, err := slowA.Load(ctx); err != nil {
		t.Fatal(err)
	}
	b := &S3{Client: c, Bucket: bucket, Key: "ckpt/skew2.json", Owner: "instance-b", Lease: 30 * time.Second}
	if got, err := b.Load(ctx); !errors.Is(err, ErrHeld) {
		t.Fatalf("a holder whose clock is an hour behind lost its checkpoint at once: %+v %v", got, err)
	}
	// A standby whose clock is behind still takes over once the lease has
	// passed by the server's clock (simulated: the age is judged an hour on).
	behind := &S3{Client: c, Bucket: bucket, Key: "ckpt/skew.json", Owner: "instance-c", Lease: 30 * time.Second, Now: func() time.Time { return time.Now().Add(-time.Hour) }, later: time.Hour}
	if got, err := behind.Load(ctx); err != nil || got.Position != pos {
		t.Fatalf("takeover of a dead holder by a standby whose clock is behind: %+v %v", got, err)
	}
}

// TestS3StoreDeletedCheckpointFences: the checkpoint object deleted under a
// running instance (an operator, a lifecycle rule) must stop it like a
// takeover, naming the deletion: S3 and versitygw answer a PUT with If-Match
// on a missing key with 404 NoSuchKey, not 412, and the instance otherwise
// failed every write without end, while a standby, after the lease, would
// find no checkpoint and start over from the beginning.
func TestS3StoreDeletedCheckpointFences(t *testing.T) {
	ctx := context.Background()
	c := s3Client(t)
	bucket := newBucket(t, c)
	key := "ckpt/deleted.json"
	a := &S3{Client: c, Bucket: bucket, Key: key, Owner: "instance-a", Lease: 30 * time.Second}
	if _, err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	pos := Position{Phase: PhaseCDC, Key: "cdc/CDC1.csv", Offset: 10, Line: 2}
	if err := a.Save(ctx, &State{Position: pos}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
		t.Fatal(err)
	}
	err := a.Save(ctx, &State{Position: pos})
	if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "it was deleted") {
		t.Fatalf("save after the checkpoint was deleted: %v, want fenced naming the deletion", err)
	}
}

// TestS3StoreHeldErrorNeverSaysNegativeAge: the refusal of a second
// instance (or stream) on a held checkpoint says how long ago the holder
// wrote it. Judged by the server's whole-second Date and Last-Modified,
// minus a second so as never to overstate it, a write made just now read
// "last written -1s ago" (versitygw: -2s).
func TestS3StoreHeldErrorNeverSaysNegativeAge(t *testing.T) {
	ctx := context.Background()
	c := s3Client(t)
	bucket := newBucket(t, c)
	a := &S3{Client: c, Bucket: bucket, Key: "ckpt/age.json", Owner: "instance-a", Lease: 30 * time.Second}
	if _, err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		b := &S3{Client: c, Bucket: bucket, Key: "ckpt/age.json", Owner: "instance-b", Lease: 30 * time.Second}
		_, err := b.Load(ctx)
		if !errors.Is(err, ErrHeld) {
			t.Fatalf("second instance: %v", err)
		}
		if strings.Contains(err.Error(), "last written -") {
			t.Fatalf("the refusal gives a negative age: %v", err)
		}
		if err := a.Save(ctx, &State{}); err != nil {
			t.Fatal(err)
		}
	}
}
