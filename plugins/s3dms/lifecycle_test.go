package s3dms

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/tcpproxy"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// lifecycleData puts 4 full-load files of 50 rows (hr/zeta) and 3 CDC files
// of 20 rows, and returns every row as key|body.
func lifecycleData(t *testing.T, b backend) map[string]bool {
	all := map[string]bool{}
	for f := 0; f < 4; f++ {
		var sb strings.Builder
		key := fmt.Sprintf("dms/hr/zeta/LOAD%03d.csv", f)
		for i := 0; i < 50; i++ {
			fmt.Fprintf(&sb, "%d,v%d\n", f*50+i, i)
			all[fmt.Sprintf("%s|%d,v%d", key, f*50+i, i)] = true
		}
		b.put(t, key, []byte(sb.String()))
	}
	for f := 0; f < 3; f++ {
		var sb strings.Builder
		key := fmt.Sprintf("dms/changes/CDC%05d.csv", f)
		for i := 0; i < 20; i++ {
			fmt.Fprintf(&sb, "INSERT,zeta,hr,%d,c%d\n", 1000+f*20+i, i)
			all[fmt.Sprintf("%s|INSERT,zeta,hr,%d,c%d", key, 1000+f*20+i, i)] = true
		}
		b.put(t, key, []byte(sb.String()))
	}
	return all
}

// TestStopInEveryStateResumes stops a stream of the input in each state of
// its life (connecting while S3 is down, mid full load, tailing CDC, backing
// off redeliveries, batches not yet acknowledged), then starts it again on
// the same checkpoint. Each stop must end within the stop timeout, leave no
// goroutine of the input and no open file behind, and the restart must
// deliver every row the first run did not acknowledge: nothing is lost.
func TestStopInEveryStateResumes(t *testing.T) {
	states := []struct {
		name string
		// handle is the consumer of the first run; ready says when to stop.
		handle func(n *atomic.Int64) func([]got) error
		ready  func(n *atomic.Int64, p *tcpproxy.Proxy, since time.Duration) bool
		down   bool // S3 down (versitygw only) during the first run
	}{
		{name: "connecting during an S3 outage", down: true,
			handle: func(n *atomic.Int64) func([]got) error { return nil },
			// Connect has been tried again (once a second) a few times.
			ready: func(_ *atomic.Int64, p *tcpproxy.Proxy, since time.Duration) bool {
				return p != nil && p.Stats().Refused >= 3 && since > 2500*time.Millisecond
			}},
		{name: "mid full load",
			handle: func(n *atomic.Int64) func([]got) error {
				return func(b []got) error { n.Add(int64(len(b))); time.Sleep(5 * time.Millisecond); return nil }
			},
			ready: func(n *atomic.Int64, _ *tcpproxy.Proxy, _ time.Duration) bool { return n.Load() >= 70 }},
		{name: "tailing CDC",
			handle: func(n *atomic.Int64) func([]got) error {
				return func(b []got) error { n.Add(int64(len(b))); return nil }
			},
			ready: func(n *atomic.Int64, _ *tcpproxy.Proxy, _ time.Duration) bool { return n.Load() >= 260 }},
		{name: "backing off redeliveries",
			handle: func(n *atomic.Int64) func([]got) error {
				return func(b []got) error {
					if strings.Contains(b[0].Key, "LOAD001") {
						n.Add(1)
						return errors.New("rejected")
					}
					return nil
				}
			},
			ready: func(n *atomic.Int64, _ *tcpproxy.Proxy, _ time.Duration) bool { return n.Load() >= 4 }},
		{name: "acknowledgements pending",
			handle: func(n *atomic.Int64) func([]got) error {
				return func(b []got) error { n.Add(int64(len(b))); time.Sleep(300 * time.Millisecond); return nil }
			},
			ready: func(n *atomic.Int64, _ *tcpproxy.Proxy, _ time.Duration) bool { return n.Load() >= 30 }},
	}
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b backend) {
				if st.down && b.name() != "versitygw" {
					return
				}
				all := lifecycleData(t, b)
				ckDir := t.TempDir()
				extra := "batch_size: 10\npoll_interval: 100ms\ncheckpoint:\n  store: file\n  directory: " + ckDir + "\n  interval: 0s\n"
				yaml := baseYAML(b, extra)
				var proxy *tcpproxy.Proxy
				if sb, ok := b.(*s3Backend); ok {
					var err error
					if proxy, err = tcpproxy.Start("", strings.TrimPrefix(sb.ep, "http://")); err != nil {
						t.Fatal(err)
					}
					defer proxy.Close()
					yaml = strings.Replace(yaml, "endpoint: "+sb.ep, "endpoint: "+proxy.URL(), 1)
					if st.down {
						proxy.Pause()
					}
				}
				fds := openFiles(t)
				var n atomic.Int64
				r := startStream(t, yaml, st.handle(&n))
				began := time.Now()
				for end := time.Now().Add(30 * time.Second); !st.ready(&n, proxy, time.Since(began)); time.Sleep(10 * time.Millisecond) {
					if time.Now().After(end) {
						t.Fatalf("never reached the state; logs:\n%s", r.logText())
					}
				}
				start := time.Now()
				r.stop(t)
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("stop took %v", d)
				}
				testutil.WaitNoPluginGoroutines(t, "input")
				if b.name() == "dir" {
					if f := openFiles(t); f > fds {
						t.Errorf("%d open files after the stop, %d before the start", f, fds)
					}
				}
				first := r.snapshot()
				if proxy != nil {
					proxy.Resume()
				}

				seen := map[string]bool{}
				for _, g := range first {
					seen[g.Key+"|"+g.Body] = true
				}
				r2 := startStream(t, yaml, nil)
				defer r2.stop(t)
				for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					for _, g := range r2.snapshot() {
						seen[g.Key+"|"+g.Body] = true
					}
					var missing []string
					for k := range all {
						if !seen[k] {
							missing = append(missing, k)
						}
					}
					if len(missing) == 0 && strings.Contains(r2.logText(), "aws_s3_dms reading") {
						break
					}
					if time.Now().After(end) {
						t.Fatalf("%d rows never delivered after the restart (first run delivered %d, second %d), e.g. %v\nlogs:\n%s", len(missing), len(first), len(r2.snapshot()), missing[:min(3, len(missing))], r2.logText())
					}
				}
				t.Logf("first run %d rows, second %d", len(first), len(r2.snapshot()))
			})
		})
	}
}
