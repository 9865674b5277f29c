package s3dms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/dmsbridge/dmsbridge/plugins/internal/safetext"
)

// object is one listed object.
type object struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// opened is an object opened for reading.
type opened struct {
	Body            io.ReadCloser
	ETag            string
	LastModified    time.Time
	ContentEncoding string
	// Size is the size of the version opened (its stored bytes), or -1
	// when the server did not say.
	Size int64
	// Ranged is true when Body starts at the requested offset (false: it
	// starts at 0 and the caller skips).
	Ranged bool
}

// errETagChanged is returned by open when the object no longer has the
// expected ETag; errGone when it no longer exists.
// errBeyondEnd (which is also an errETagChanged) when a ranged GET starts
// past the end of the object.
var (
	errETagChanged = errors.New("object changed since it was checkpointed (ETag differs)")
	errGone        = errors.New("object no longer exists")
	errUnreadable  = errors.New("object cannot be read") // never will be: a bad object, not retried
	errBeyondEnd   = errors.New("offset beyond the end of the object")
	// errNoDirectory: the input's directory itself does not exist (a
	// folder under it that does not is an empty table or CDC path).
	errNoDirectory = errors.New("does not exist")
)

// source is a bucket, or a local directory laid out like one.
type source interface {
	// list returns one page of objects under prefix with keys greater than
	// startAfter, in key order, and the token for the next page ("" = last).
	list(ctx context.Context, prefix, startAfter, token string) ([]object, string, error)
	// open opens key at byte offset (a ranged GET when offset > 0). With a
	// non-empty etag the object must still have it.
	open(ctx context.Context, key string, offset int64, etag string) (*opened, error)
	bucket() string
	describe(key string) string
}

// ---- S3 ----

type s3API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

type s3Source struct {
	client        s3API
	bucketName    string
	expectedOwner *string
	pageSize      int32
	// counts LIST requests, for the benchmark and metrics
	lists func()
	// timeout bounds a listing, the wait for a GetObject's answer and each
	// wait for body bytes (0: none).
	timeout time.Duration
}

// errNoAnswer marks a request S3 did not answer within request_timeout; it
// wraps os.ErrDeadlineExceeded, a net.Error, so the input treats it as the
// source being unreachable.
func (s *s3Source) errNoAnswer(what string) error {
	return fmt.Errorf("%s: no answer within request_timeout (%v): %w", what, s.timeout, os.ErrDeadlineExceeded)
}

func (s *s3Source) bucket() string { return s.bucketName }

// describe names the object in log lines and error texts: quoted, its
// control characters escaped, when the key holds any (safetext.Quote), so
// that a key cannot forge a log line.
func (s *s3Source) describe(key string) string {
	return safetext.Quote(fmt.Sprintf("s3://%s/%s", s.bucketName, key))
}

func (s *s3Source) list(ctx context.Context, prefix, startAfter, token string) ([]object, string, error) {
	// Keys URL-encoded in the answer, as the AWS CLI asks for them: S3
	// accepts keys holding control characters, which it sends otherwise as
	// character references no XML 1.0 parser accepts (the SDK's fails the
	// whole page: "illegal character code U+0001"), so one such object
	// would stop every listing of its folder. Decoded below, only when the
	// answer says it is encoded (a stand-in may ignore the parameter).
	in := &s3.ListObjectsV2Input{Bucket: &s.bucketName, Prefix: aws.String(prefix), ExpectedBucketOwner: s.expectedOwner,
		EncodingType: types.EncodingTypeUrl}
	if s.pageSize > 0 {
		in.MaxKeys = aws.Int32(s.pageSize)
	}
	if strings.HasPrefix(token, "\x00") {
		in.StartAfter = aws.String(token[1:])
	} else if token != "" {
		in.ContinuationToken = &token
	} else if startAfter != "" {
		in.StartAfter = &startAfter
	}
	if s.lists != nil {
		s.lists()
	}
	lctx, cancel := ctx, context.CancelFunc(func() {})
	if s.timeout > 0 {
		lctx, cancel = context.WithTimeout(ctx, s.timeout)
	}
	out, err := s.client.ListObjectsV2(lctx, in)
	timedOut := lctx.Err() != nil && ctx.Err() == nil
	cancel()
	if err != nil {
		if timedOut {
			return nil, "", s.errNoAnswer(fmt.Sprintf("listing s3://%s/%s", s.bucketName, prefix))
		}
		return nil, "", fmt.Errorf("listing s3://%s/%s: %w", s.bucketName, prefix, explainS3(err))
	}
	encoded := out.EncodingType == types.EncodingTypeUrl
	objs := make([]object, 0, len(out.Contents))
	for _, o := range out.Contents {
		k := aws.ToString(o.Key)
		if encoded {
			// Form encoding, as S3 writes it ("+" a space, "%2B" a plus).
			dk, err := url.QueryUnescape(k)
			if err != nil {
				return nil, "", fmt.Errorf("listing s3://%s/%s: key %q is not URL-encoded although the answer says so: %w", s.bucketName, prefix, k, err)
			}
			k = dk
		}
		if !utf8.ValidString(k) {
			return nil, "", fmt.Errorf("listing s3://%s/%s: key %q is not valid UTF-8", s.bucketName, prefix, k)
		}
		objs = append(objs, object{Key: k, Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag), LastModified: aws.ToTime(o.LastModified)})
	}
	next := ""
	if aws.ToBool(out.IsTruncated) {
		next = aws.ToString(out.NextContinuationToken)
		if next == "" && len(objs) > 0 { // stand-ins without tokens
			return objs, "\x00" + objs[len(objs)-1].Key, nil
		}
	}
	return objs, next, nil
}

func (s *s3Source) open(ctx context.Context, key string, offset int64, etag string) (*opened, error) {
	in := &s3.GetObjectInput{Bucket: &s.bucketName, Key: &key, ExpectedBucketOwner: s.expectedOwner}
	if offset > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	if etag != "" {
		in.IfMatch = aws.String(etag)
	}
	// The body is read long after GetObject returns, under the request's
	// context: that context ends when the body is closed, or when S3 does
	// not answer in time (the timer, stopped once the answer is in).
	gctx, cancel := context.WithCancel(ctx)
	var timer *time.Timer
	if s.timeout > 0 {
		timer = time.AfterFunc(s.timeout, cancel)
	}
	out, err := s.client.GetObject(gctx, in)
	if timer != nil && !timer.Stop() && ctx.Err() == nil {
		cancel()
		if err == nil {
			out.Body.Close()
		}
		return nil, s.errNoAnswer(fmt.Sprintf("reading %s at offset %d", s.describe(key), offset))
	}
	if err != nil {
		cancel()
		switch {
		case apiCode(err) == "PreconditionFailed":
			return nil, fmt.Errorf("%s: %w (expected %s)", s.describe(key), errETagChanged, etag)
		case apiCode(err) == "NoSuchKey":
			return nil, fmt.Errorf("%s: %w (deleted between listing and reading?)", s.describe(key), errGone)
		case apiCode(err) == "InvalidRange" || httpStatus(err) == 416:
			// 416 whatever the code: a server or proxy that sends no
			// error body (the SDK then names the status) means the same.
			return nil, fmt.Errorf("%s: offset %d is beyond the end of the object: %w (%w)", s.describe(key), offset, errETagChanged, errBeyondEnd)
		}
		return nil, fmt.Errorf("reading %s at offset %d: %w", s.describe(key), offset, explainS3(err))
	}
	if got := aws.ToString(out.ETag); etag != "" && got != "" && strings.Trim(got, `"`) != strings.Trim(etag, `"`) {
		// A store that ignores If-Match answers with the object as it is
		// now: its bytes at offset are not the rest of the one being read.
		out.Body.Close()
		cancel()
		return nil, fmt.Errorf("%s: %w (expected %s, the server sent %s)", s.describe(key), errETagChanged, etag, got)
	}
	return &opened{Body: &cancelBody{ReadCloser: out.Body, cancel: cancel}, ETag: aws.ToString(out.ETag), LastModified: aws.ToTime(out.LastModified).UTC(),
		ContentEncoding: aws.ToString(out.ContentEncoding), Size: objectSize(out, offset), Ranged: offset > 0 && !rangeIgnored(out)}, nil
}

// rangeIgnored tells a 200 answer to a ranged GET: HTTP lets a server ignore
// Range and send the whole object (RFC 9110 14.2), which then starts at 0.
func rangeIgnored(out *s3.GetObjectOutput) bool {
	if r, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok {
		return r.StatusCode == 200
	}
	return false
}

// objectSize is the size of the object a GET answered with: the total of
// its Content-Range ("bytes 10-99/100") for a ranged GET, its length
// otherwise; -1 when the answer does not say.
func objectSize(out *s3.GetObjectOutput, offset int64) int64 {
	if offset == 0 {
		if out.ContentLength != nil {
			return *out.ContentLength
		}
		return -1
	}
	if rangeIgnored(out) && out.ContentLength != nil {
		return *out.ContentLength // the whole object
	}
	cr := aws.ToString(out.ContentRange)
	if i := strings.LastIndexByte(cr, '/'); i >= 0 {
		if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
			return n
		}
	}
	if out.ContentLength != nil {
		return offset + *out.ContentLength
	}
	return -1
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus is the HTTP status of an S3 error answer, 0 without one.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// explainS3 adds a hint to the S3 errors users meet most.
func explainS3(err error) error {
	switch apiCode(err) {
	case "NoSuchBucket":
		return fmt.Errorf("%w (the bucket does not exist)", err)
	case "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return fmt.Errorf("%w (check the credentials, the bucket policy and expected_bucket_owner)", err)
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
		return fmt.Errorf("%w (the bucket is probably in another region: check region)", err)
	}
	return err
}

// ---- local directory ----

// dirSource serves a local directory with the same layout: keys are paths
// relative to root with "/" separators, listed in byte order like S3. The
// ETag is "<size hex>-<mtime ns hex>" (no content hash: files are not read
// twice), so a rewrite that keeps size and mtime is not detected.
type dirSource struct {
	root string
}

func (d *dirSource) bucket() string { return "" }

// path is the file of key.
func (d *dirSource) path(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key))
}

// describe names the file of key in log lines and error texts, quoted when
// it holds control characters (see s3Source.describe).
func (d *dirSource) describe(key string) string { return safetext.Quote(d.path(key)) }

// quotePath returns err, an error of the os package naming a file, with
// that name quoted when it holds control characters (a file name in the
// directory is data: see s3Source.describe). errors.Is and errors.As see
// the original error.
func quotePath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && safetext.Quote(pe.Path) != pe.Path {
		if top, ok := err.(*fs.PathError); ok {
			return &quotedPathError{top}
		}
	}
	return err
}

type quotedPathError struct{ pe *fs.PathError }

func (e *quotedPathError) Error() string {
	return e.pe.Op + " " + safetext.Quote(e.pe.Path) + ": " + e.pe.Err.Error()
}
func (e *quotedPathError) Unwrap() error { return e.pe }

// relativeTo says, for a relative path, which working directory it is
// read from.
func relativeTo(p string) string {
	if filepath.IsAbs(p) {
		return ""
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	return " (relative to the working directory " + safetext.Quote(wd) + ")"
}

func localETag(fi fs.FileInfo) string {
	return fmt.Sprintf("%x-%x", fi.Size(), fi.ModTime().UnixNano())
}

// list walks the directory that holds prefix and returns every regular file
// whose key starts with prefix and sorts after startAfter, in one page.
// Hidden files and folders below the folder of prefix are not listed (see
// hidden).
//
// The folder's path is checked through an os.Root of the directory:
// symlinks inside it are followed (a folder on the way to a table may be
// one), but a path that leads out of it, e.g. bucket_folder a symlink to
// another folder, is an error ("path escapes from parent"), never a read.
// Symlinked folders below it are not walked. A symlink met during the
// walk is listed as the file it leads to when that is a file inside the
// directory; otherwise it is listed as itself and open reports it as a bad
// object (errUnreadable).
func (d *dirSource) list(_ context.Context, prefix, startAfter, _ string) ([]object, string, error) {
	dir := prefix
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		dir = dir[:i]
	} else {
		dir = ""
	}
	if dir != "" && !filepath.IsLocal(filepath.FromSlash(dir)) {
		return nil, "", fmt.Errorf("prefix %q escapes the directory %s", prefix, d.root)
	}
	base := filepath.Join(d.root, filepath.FromSlash(dir))
	root, err := os.OpenRoot(d.root)
	if errors.Is(err, fs.ErrNotExist) {
		// Not an empty listing: a full load would complete every table
		// with no rows, and never be done once the directory is there.
		return nil, "", fmt.Errorf("listing directory %s: directory %s %w%s", base, safetext.Quote(d.root), errNoDirectory, relativeTo(d.root))
	}
	if err != nil {
		return nil, "", fmt.Errorf("listing directory %s: %w", base, err)
	}
	defer root.Close()
	walkFrom := "."
	if dir != "" {
		walkFrom = path.Clean(dir)
	}
	// root.Stat proves that walkFrom stays inside the directory (os.Root
	// refuses every absolute symlink, even one leading inside it, so such a
	// path is resolved and checked by resolveInside). The walk then reads
	// the folder's real path with filepath.WalkDir, which stats only the
	// entries it is asked about: the files after the mark, not the
	// thousands a long CDC tail leaves below it (a Root's ReadDir stats
	// every entry). Listing only gives names and sizes; every read goes
	// through the Root (open).
	if _, serr := root.Stat(walkFrom); serr != nil && !errors.Is(serr, fs.ErrNotExist) {
		if _, ok := d.resolveInside(walkFrom); !ok {
			return nil, "", fmt.Errorf("listing directory %s: %w", base, serr)
		}
	}
	walkBase, err := filepath.EvalSymlinks(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("listing directory %s: %w", base, quotePath(err))
	}
	var objs []object
	err = filepath.WalkDir(walkBase, func(fp string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && fp == walkBase {
				return fs.SkipAll
			}
			return err
		}
		key := walkFrom
		if fp != walkBase {
			rel, rerr := filepath.Rel(walkBase, fp)
			if rerr != nil {
				return rerr
			}
			key = path.Join(walkFrom, filepath.ToSlash(rel))
		}
		if de.IsDir() {
			// Prune directories that cannot hold matching keys, and
			// hidden ones below the folder.
			if key != walkFrom && (!strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") || hidden(de.Name())) {
				return fs.SkipDir
			}
			return nil
		}
		if hidden(de.Name()) {
			return nil
		}
		link := de.Type()&fs.ModeSymlink != 0
		if !de.Type().IsRegular() && !link || !strings.HasPrefix(key, prefix) || key <= startAfter {
			return nil
		}
		if !utf8.ValidString(key) {
			return fmt.Errorf("file name %q is not valid UTF-8", d.path(key))
		}
		var fi fs.FileInfo
		if link {
			// Listed either way: a link to a file inside the directory is
			// read as that file; any other link is a bad object when it
			// is opened (logged and counted), never passed over silently.
			fi, err = d.stat(root, key)
			if err != nil || !fi.Mode().IsRegular() {
				fi, err = root.Lstat(filepath.FromSlash(key))
			}
		} else {
			fi, err = de.Info()
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		objs = append(objs, object{Key: key, Size: fi.Size(), ETag: localETag(fi), LastModified: fi.ModTime().UTC()})
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing directory %s: %w", base, quotePath(err))
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	return objs, "", nil
}

// hidden tells a file or folder whose name starts with ".": not data, as
// for Spark and Hadoop. Tools that copy into the folder write such files
// while they copy (rsync's ".<name>.XXXXXX"), as do editors (swap files);
// one read as a CDC file would sort before the CDC files and count as late.
func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// resolveInside returns the path name leads to, relative to the directory,
// when that stays inside it. os.Root refuses every absolute symlink ("path
// escapes from parent"), even one whose target is inside the directory (as
// `ln -s /srv/drop/run-42 /srv/drop/current` makes): such a name is retried
// under its resolved path. The result is only a candidate: the stat or open
// still goes through the Root, which refuses whatever leads out of it (also
// a link swapped in after the resolution).
func (d *dirSource) resolveInside(name string) (string, bool) {
	realRoot, err := filepath.EvalSymlinks(d.root)
	if err != nil {
		return "", false
	}
	res, err := filepath.EvalSymlinks(filepath.Join(d.root, filepath.FromSlash(name)))
	if err != nil {
		return "", false
	}
	rel, err := filepath.Rel(realRoot, res)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// stat stats name through root, following symlinks (an absolute one only
// while it stays inside the directory, see resolveInside).
func (d *dirSource) stat(root *os.Root, name string) (fs.FileInfo, error) {
	fi, err := root.Stat(filepath.FromSlash(name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		if r, ok := d.resolveInside(name); ok {
			return root.Stat(filepath.FromSlash(r))
		}
	}
	return fi, err
}

// open opens key through an os.Root of the directory, so a file replaced by
// a symlink leading out of it after the listing is refused, not read.
func (d *dirSource) open(_ context.Context, key string, offset int64, etag string) (*opened, error) {
	if !filepath.IsLocal(filepath.FromSlash(key)) {
		return nil, fmt.Errorf("key %q escapes the directory %s", key, d.root)
	}
	p := d.describe(key)
	root, err := os.OpenRoot(d.root)
	err = quotePath(err)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (deleted between listing and reading?)", p, errGone)
	}
	if err != nil {
		return nil, err
	}
	defer root.Close() // f stays open
	f, err := root.Open(filepath.FromSlash(key))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		if r, ok := d.resolveInside(key); ok {
			f, err = root.Open(filepath.FromSlash(r))
		}
	}
	err = quotePath(err)
	if err != nil {
		if li, lerr := root.Lstat(filepath.FromSlash(key)); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: %w: a symbolic link to nothing (%v)", p, errUnreadable, err)
			}
			return nil, fmt.Errorf("%s: %w: a symbolic link leading out of the directory %s is never read (%v)", p, errUnreadable, d.root, err)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (deleted between listing and reading?)", p, errGone)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w: not a regular file (%s)", p, errUnreadable, fi.Mode().Type())
	}
	tag := localETag(fi)
	if etag != "" && tag != etag {
		f.Close()
		return nil, fmt.Errorf("%s: %w (expected %s, found %s)", p, errETagChanged, etag, tag)
	}
	ranged := false
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		ranged = true
	}
	return &opened{Body: f, ETag: tag, LastModified: fi.ModTime().UTC(), Size: fi.Size(), Ranged: ranged}, nil
}

// joinPrefix joins bucket_folder and a table or CDC path into a key prefix
// ending in "/".
func joinPrefix(folder, p string) string {
	p = strings.Trim(path.Join(strings.Trim(folder, "/"), strings.Trim(p, "/")), "/")
	if p == "" || p == "." {
		return ""
	}
	return p + "/"
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// cancelBody ends its request's context when closed: closing it also
// unblocks a Read waiting for bytes that do not come.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	b.cancel()
	return b.ReadCloser.Close()
}
