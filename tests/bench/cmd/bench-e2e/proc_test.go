package main

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The wall time of a run into acksink ends at the sink's last answer when
// that falls between the last two polls, and at the poll otherwise.
func TestAckedWall(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	samples := []sample{{t: 1.95, n: 499_000}, {t: 2.00, n: 501_706}}
	for _, c := range []struct {
		name string
		last int64 // unix nanoseconds the sink reports
		want float64
	}{
		{"between the polls", t0.Add(1972 * time.Millisecond).UnixNano(), 1.972},
		{"no answer yet", 0, 2.00},
		{"before the last poll that missed completion", t0.Add(1900 * time.Millisecond).UnixNano(), 2.00},
		{"after the poll that saw completion", t0.Add(2100 * time.Millisecond).UnixNano(), 2.00},
		{"within the clock slack after the poll", t0.Add(2003 * time.Millisecond).UnixNano(), 2.00},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/count" {
					http.NotFound(w, r)
					return
				}
				fmt.Fprintf(w, `{"records":501706,"bytes":1,"last_unix_nano":%d}`, c.last)
			}))
			defer srv.Close()
			if got := ackedWall(srv.URL, t0, 2.00, samples); math.Abs(got-c.want) > 1e-6 {
				t.Fatalf("wall %.6f s, want %.6f s", got, c.want)
			}
		})
	}
	// A sink that cannot be read leaves the polled time.
	if got := ackedWall("http://127.0.0.1:1", t0, 2.00, samples); got != 2.00 {
		t.Fatalf("unreachable sink: wall %v, want the polled 2.00", got)
	}
}
