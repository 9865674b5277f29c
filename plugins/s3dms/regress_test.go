package s3dms

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dmsbridge/dmsbridge/plugins/checkpoint"
)

// TestResumeAtTheEndThrough416Variants: a checkpoint at the end of a plain
// object (saved before it was marked done) resumes with the next file also
// when the S3 server (or a proxy in front of it) answers the unsatisfiable
// range with a 416 whose body is empty or carries another code than
// InvalidRange: the status is what HTTP defines for it (RFC 9110 15.5.17).
func TestResumeAtTheEndThrough416Variants(t *testing.T) {
	b, etag, target := twoLoadFiles(t)
	for name, body := range map[string]string{
		"empty body": "",
		"other code": `<?xml version="1.0" encoding="UTF-8"?><Error><Code>RequestedRangeNotSatisfiable</Code><Message>Requested Range Not Satisfiable</Message></Error>`,
	} {
		t.Run(name, func(t *testing.T) {
			rp := httputil.NewSingleHostReverseProxy(target)
			rp.ModifyResponse = func(resp *http.Response) error {
				if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
					resp.Body.Close()
					resp.Body = io.NopCloser(strings.NewReader(body))
					resp.ContentLength = int64(len(body))
					resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
				}
				return nil
			}
			srv := httptest.NewServer(rp)
			defer srv.Close()
			r := resumeLoad1Through(t, b, srv.URL, etag, 8, 3)
			if got := strings.Join(keyBody(r.snapshot()), " "); got != "dms/hr/zeta/LOAD2.csv|3,c" {
				t.Fatalf("got %q\n%s", got, r.logText())
			}
			if strings.Contains(r.logText(), "level=ERROR") {
				t.Fatalf("errors logged:\n%s", r.logText())
			}
		})
	}
}

// TestResumeThroughAServerIgnoringRange: HTTP lets a server ignore Range
// and answer 200 with the whole object (RFC 9110 14.2; some gateways and
// caches do). A resumed file (mid-way, or at its end before it was marked
// done) must go on after its checkpointed offset, not re-read the object
// from its start as if it began there.
func TestResumeThroughAServerIgnoringRange(t *testing.T) {
	b, etag, target := twoLoadFiles(t)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Range") == "" {
			rp.ServeHTTP(w, r)
			return
		}
		// A server that ignores Range: 200 and the whole object.
		key := strings.TrimPrefix(r.URL.Path, "/"+b.bucket+"/")
		out, err := b.client.GetObject(r.Context(), &s3.GetObjectInput{Bucket: &b.bucket, Key: &key})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer out.Body.Close()
		body, _ := io.ReadAll(out.Body)
		w.Header().Set("ETag", aws.ToString(out.ETag))
		w.Header().Set("Last-Modified", aws.ToTime(out.LastModified).UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	}))
	defer srv.Close()
	for _, c := range []struct {
		offset, line int64
		want         string
	}{
		{4, 2, "dms/hr/zeta/LOAD1.csv|2,b dms/hr/zeta/LOAD2.csv|3,c"},
		{8, 3, "dms/hr/zeta/LOAD2.csv|3,c"},
	} {
		r := resumeLoad1Through(t, b, srv.URL, etag, c.offset, c.line)
		if got := strings.Join(keyBody(r.snapshot()), " "); got != c.want {
			t.Fatalf("offset %d: got %q, want %q\n%s", c.offset, got, c.want, r.logText())
		}
	}
}

// TestTableRemovedOnceTheFullLoadIsDone: the full load of both tables is
// done and CDC is tailing (no CDC file yet); the operator drops the second
// table from the definition and restarts with the same checkpoint.key. The
// full load is over: nothing of it is to be resumed, so the checkpoint
// matches the new definition and CDC goes on.
func TestTableRemovedOnceTheFullLoadIsDone(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	ckdir := t.TempDir()
	conf := func(def string) string {
		return b.yaml() + "bucket_folder: dms\ncdc_path: changes\ntable_definition: '" + def + "'\n" +
			"poll_interval: 50ms\ncheckpoint:\n  directory: " + ckdir + "\n  key: job.json\n  interval: 0s\n"
	}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,z\n"))
	b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("2,a\n"))
	r := startStream(t, conf(twoTables), nil)
	r.waitFor(t, 2, 5*time.Second)
	r.waitLog(t, "CDC: tailing", 5*time.Second)
	r.stop(t)
	zetaOnly := `{"TableCount":"1","Tables":[
 {"TableName":"zeta","TablePath":"hr/zeta/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"}]}`
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,3,c\n"))
	r2 := startStream(t, conf(zetaOnly), nil)
	defer r2.stop(t)
	select {
	case <-time.After(5 * time.Second):
	case err := <-r2.done:
		t.Fatalf("stopped: %v\n%s", err, r2.logText())
	}
	if got := strings.Join(keyBody(r2.snapshot()), " "); got != "dms/changes/CDC1.csv|I,zeta,hr,3,c" || strings.Contains(r2.logText(), "does not match") {
		t.Fatalf("got %q\n%s", got, r2.logText())
	}
}

// resumeLoad1Through saves a checkpoint at offset (line) of
// dms/hr/zeta/LOAD1.csv, version etag, and runs the full load with S3
// reached at endpoint until the input ends.
func resumeLoad1Through(t *testing.T, b *s3Backend, endpoint, etag string, offset, line int64) *runner {
	t.Helper()
	ckdir := t.TempDir()
	st := &checkpoint.State{Position: checkpoint.Position{Phase: checkpoint.PhaseFullLoad, Key: "dms/hr/zeta/LOAD1.csv", ETag: etag, Offset: offset, Line: line}}
	if err := (&checkpoint.File{Path: filepath.Join(ckdir, "job.json")}).Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(baseYAML(b, "mode: full-load\ncheckpoint:\n  directory: "+ckdir+"\n  key: job.json\n"), b.ep, endpoint, 1)
	r := startStream(t, yaml, nil)
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("offset %d: not done after 20 s, with %q\n%s", offset, keyBody(r.snapshot()), r.logText())
	}
	return r
}

// twoLoadFiles puts LOAD1.csv (rows 1, 2) and LOAD2.csv (row 3) of hr.zeta
// in versitygw and returns the backend, LOAD1.csv's ETag and the server's
// URL (for a proxy in front of it).
func twoLoadFiles(t *testing.T) (b *s3Backend, etag string, target *url.URL) {
	t.Helper()
	b = newS3Backend(t)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n"))
	b.put(t, "dms/hr/zeta/LOAD2.csv", []byte("3,c\n"))
	h, err := b.client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &b.bucket, Key: aws.String("dms/hr/zeta/LOAD1.csv")})
	if err != nil {
		t.Fatal(err)
	}
	target, _ = url.Parse(b.ep)
	return b, aws.ToString(h.ETag), target
}
