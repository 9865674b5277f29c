package s3dms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/dmsbridge/dmsbridge/plugins/dmscsv"
)

// fileReader streams the rows of one object.
type fileReader struct {
	key          string
	etag         string
	size         int64 // of the version being read; -1: unknown
	lastModified time.Time
	rows         *dmscsv.RowReader
	body         io.Closer
	raw          *countingReader
	gz           bool
	rawStart     int64 // object offset of the first raw byte read
	pf           *prefetcher
	cx           *ctxReader // the rows' source: set its ctx before reading
}

// ctxReader ends reading once ctx (ReadBatch's context) is done. Without
// it, content that yields no row for a long time (a gigabyte of blank
// lines, a row far longer than max_row_size passed over, a gzip bomb of
// either) would keep ReadBatch reading it to its end whatever its context:
// a stop would overrun shutdown_timeout and close without saving the
// checkpoint. The prefetcher only looks at the context while it waits for
// the network, which a local file or a fast connection never makes it do.
// The read fails with the context's error, which ReadBatch takes for what it
// is: the file is reopened at its last whole row by the next read.
type ctxReader struct {
	r   io.Reader
	ctx context.Context
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if c.ctx != nil {
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
	}
	return c.r.Read(p)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func isGzipKey(key string) bool { return strings.HasSuffix(strings.ToLower(key), ".gz") }

// openRows opens key at (offset, line) of its decompressed content. Plain
// objects are opened with a ranged GET; gzip objects (".gz" suffix or
// Content-Encoding gzip) are read from the start and the first offset
// decompressed bytes are skipped.
func openRows(ctx context.Context, src source, key, etag string, offset, line int64, s dmscsv.Settings, maxRow int) (*fileReader, error) {
	gz := isGzipKey(key)
	at := offset
	if gz {
		at = 0
	}
	o, err := src.open(ctx, key, at, etag)
	if errors.Is(err, errBeyondEnd) {
		// The offset is past the stored bytes: the object was read to its
		// end (a checkpoint saved before it was marked done), or it is
		// stored with Content-Encoding: gzip and the offset counts
		// decompressed bytes, which the listed size cannot tell. Look at it
		// from its start.
		if o, err = src.open(ctx, key, 0, etag); err != nil {
			return nil, err
		}
		if !strings.Contains(strings.ToLower(o.ContentEncoding), "gzip") {
			o.Body.Close()
			if o.Size != offset {
				return nil, fmt.Errorf("%s: offset %d is beyond the end of the object (%d bytes): %w", src.describe(key), offset, o.Size, errETagChanged)
			}
			// read to its end: nothing more
			o.Body, o.Ranged = io.NopCloser(strings.NewReader("")), true
		}
	}
	if err != nil {
		return nil, err
	}
	if !gz && strings.Contains(strings.ToLower(o.ContentEncoding), "gzip") {
		gz = true
		if o.Ranged {
			o.Body.Close()
			if o, err = src.open(ctx, key, 0, etag); err != nil {
				return nil, err
			}
		}
	}
	// Buffers for the bytes left when the object says how many: a full
	// load of many small files must not take 256 KB chunks and a 64 KB
	// row buffer for each (the row buffer grows for a longer row).
	chunk, rowBuf := 256<<10, 0
	if left := o.Size; left >= 0 && !gz {
		if o.Ranged {
			left -= offset
		}
		size := int(min(max(left+1, 512), 256<<10))
		chunk, rowBuf = size, min(size, 64<<10)
	}
	var pf *prefetcher
	if s3src, isS3 := src.(*s3Source); isS3 {
		pf = newPrefetcher(o.Body, chunk, 4, s3src.timeout, src.describe(key))
		o.Body = pf
	}
	raw := &countingReader{r: o.Body}
	var r io.Reader = raw
	if gz {
		zr, err := gzip.NewReader(raw)
		if err != nil {
			o.Body.Close()
			return nil, fmt.Errorf("%s: not a gzip stream: %w", src.describe(key), err)
		}
		r = zr
		if offset > 0 {
			n, err := io.CopyN(io.Discard, zr, offset)
			if err != nil {
				o.Body.Close()
				if errors.Is(err, io.EOF) {
					return nil, fmt.Errorf("%s: decompressed content is %d bytes, shorter than the checkpointed offset %d: %w", src.describe(key), n, offset, errETagChanged)
				}
				return nil, fmt.Errorf("%s: skipping to offset %d: %w", src.describe(key), offset, err)
			}
		}
	}
	if !gz && at > 0 && !o.Ranged {
		// The server sent the whole object for the ranged GET: skip to
		// the offset.
		if n, err := io.CopyN(io.Discard, raw, offset); err != nil {
			o.Body.Close()
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: the object is %d bytes, shorter than the checkpointed offset %d: %w", src.describe(key), n, offset, errETagChanged)
			}
			return nil, fmt.Errorf("%s: skipping to offset %d: %w", src.describe(key), offset, err)
		}
	}
	rawStart := int64(0)
	if o.Ranged {
		rawStart = offset
	}
	cx := &ctxReader{r: r}
	return &fileReader{
		rawStart: rawStart,
		pf:       pf,
		cx:       cx,
		key:      key, etag: o.ETag, size: o.Size, lastModified: o.LastModified, body: o.Body, raw: raw, gz: gz,
		rows: dmscsv.NewRowReader(cx, s, dmscsv.RowOptions{MaxRowSize: maxRow, StartOffset: offset, StartLine: line, BufferSize: rowBuf}),
	}, nil
}

func (f *fileReader) close() {
	if f != nil && f.body != nil {
		f.body.Close()
		f.body = nil
	}
}

// prefetcher reads a network body ahead in a goroutine (depth chunks of
// chunk bytes), so that waiting for the network overlaps with splitting
// rows and building messages. Memory: at most (depth+2) chunks.
type prefetcher struct {
	body io.ReadCloser
	ch   chan []byte
	free chan []byte
	done chan struct{}
	err  error // set before ch is closed
	cur  []byte
	buf  []byte
	once sync.Once
	// ctx, when set, ends a Read that waits for the network (ReadBatch's
	// context: it must return promptly when cancelled).
	ctx context.Context
	// idle, when set, is the longest a read of the body may wait for bytes:
	// then the body is closed and the read fails as the source not
	// answering (stalled names the body in that error).
	idle    time.Duration
	stalled string
}

func newPrefetcher(body io.ReadCloser, chunk, depth int, idle time.Duration, what string) *prefetcher {
	p := &prefetcher{body: body, ch: make(chan []byte, depth), free: make(chan []byte, depth+2), done: make(chan struct{}),
		idle: idle, stalled: what}
	go p.run(chunk)
	return p
}

func (p *prefetcher) run(chunk int) {
	defer close(p.ch)
	var timer *time.Timer
	var fired atomic.Bool
	if p.idle > 0 {
		timer = time.AfterFunc(time.Hour, func() {
			fired.Store(true)
			p.body.Close() // unblocks the read below
		})
		timer.Stop()
		defer timer.Stop()
	}
	for {
		var b []byte
		select {
		case b = <-p.free:
		default:
			b = make([]byte, chunk)
		}
		if timer != nil {
			timer.Reset(p.idle)
		}
		n, err := io.ReadAtLeast(p.body, b[:cap(b)], 1)
		if timer != nil && !timer.Stop() && fired.Load() && err != nil {
			err = fmt.Errorf("%s: no body bytes within request_timeout (%v): %w", p.stalled, p.idle, os.ErrDeadlineExceeded)
		}
		if n > 0 {
			select {
			case p.ch <- b[:n]:
			case <-p.done:
				return
			}
		}
		if err != nil {
			p.err = err
			return
		}
	}
}

func (p *prefetcher) Read(out []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.buf != nil {
			select {
			case p.free <- p.buf[:0]:
			default:
			}
			p.buf = nil
		}
		var b []byte
		var ok bool
		if p.ctx != nil {
			select {
			case b, ok = <-p.ch:
			case <-p.ctx.Done():
				return 0, p.ctx.Err()
			}
		} else {
			b, ok = <-p.ch
		}
		if !ok {
			if p.err == nil {
				return 0, io.EOF
			}
			return 0, p.err
		}
		p.buf, p.cur = b, b
	}
	n := copy(out, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

func (p *prefetcher) Close() error {
	p.once.Do(func() { close(p.done) })
	return p.body.Close()
}
