package s3dms

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// msgHandler keeps every log message as the input wrote it, before any
// handler quotes it: Benthos' logfmt logger writes the message unquoted when
// its output is a terminal (coloured), so that is what a person sees.
type msgHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *msgHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *msgHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *msgHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *msgHandler) WithGroup(string) slog.Handler      { return h }

func (h *msgHandler) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs...)
}

// An object key (or file name) holding a line break or a terminal escape
// must not reach a log line or an error text as it is: whoever can write to
// the bucket could forge log lines ("...\nlevel=error msg=...") or drive the
// terminal of whoever reads the log. The input names such a key quoted, with
// its control characters escaped, so the line stays one line and still says
// which object it is.
func TestHostileKeyCannotForgeLogLines(t *testing.T) {
	const hostile = "dms/hr/zeta/LOAD2\nlevel=error msg=\"FORGED\"\x1b[31m.csv"
	eachBackend(t, func(t *testing.T, b backend) {
		b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
		b.put(t, hostile, []byte("2,b\n"))
		b.put(t, "dms/hr/zeta/LOAD3.csv", []byte("3,c\n"))
		pc, err := inputSpec().ParseYAML(baseYAML(b, "mode: full-load\nbatch_size: 1\ncheckpoint:\n  store: none\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		h := &msgHandler{}
		in, err := newInput(pc, service.MockResources(service.MockResourcesOptUseLogger(service.NewLoggerFromSlog(slog.New(h)))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close(context.Background()) })
		if err := in.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := readAllDirect(t, in, 1)
		if err != nil {
			t.Fatal(err)
		}
		b.del(t, hostile) // listed already: its read fails and is logged, naming it
		more, err := readAllDirect(t, in, 1)
		got = append(got, more...)
		if err != nil || strings.Join(got, "|") != "1,a|3,c" {
			t.Fatalf("got %q %v", got, err)
		}
		named := false
		for _, m := range h.all() {
			if strings.ContainsAny(m, "\n\r\x1b") {
				t.Errorf("a log message carries the key's control characters as they are:\n%s", m)
			}
			// (versitygw lists the escape character as U+FFFD)
			if strings.Contains(m, `LOAD2\nlevel=error msg=\"FORGED\"`) && strings.Contains(m, `[31m.csv": object no longer exists`) {
				named = true
			}
		}
		if !named {
			t.Errorf("no log message names the object, quoted and escaped: %q", h.all())
		}
	})
}

// An os error naming a file of the directory (a listing or an open that
// fails) quotes a name holding control characters too, and is still the
// same error for errors.Is.
func TestQuotePathError(t *testing.T) {
	err := quotePath(&fs.PathError{Op: "open", Path: "/d/cdc\nlevel=error\x1b[31m", Err: fs.ErrPermission})
	if got, want := err.Error(), `open "/d/cdc\nlevel=error\x1b[31m": permission denied`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatal("errors.Is no longer sees fs.ErrPermission")
	}
	plain := &fs.PathError{Op: "open", Path: "/d/cdc_001", Err: fs.ErrPermission}
	if quotePath(plain) != error(plain) {
		t.Fatal("a printable path is changed")
	}
}
