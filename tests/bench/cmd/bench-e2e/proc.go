package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every Linux architecture Go supports for this tool.
const clockTicks = 100

// cpuSeconds is utime+stime of a process so far, from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return float64(ut+st) / clockTicks, nil
}

// peakRSS is VmHWM (the resident set's high-water mark) in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, err := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// proc is a child process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, log: logPath, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = lf, lf
	if err := p.cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { p.err = p.cmd.Wait(); lf.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to d, then SIGKILL. It returns the exit
// error of a graceful stop, or an error saying it had to be killed.
func (p *proc) stop(d time.Duration) error {
	if p.exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s after SIGTERM (killed)", p.name, d)
	}
}

// logTail is the end of the process's log, for error messages.
func (p *proc) logTail(n int) string {
	b, _ := os.ReadFile(p.log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

var httpc = &http.Client{Timeout: 5 * time.Second}

func get(url string) ([]byte, error) {
	resp, err := httpc.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}

// sinkCount is the records count of an acksink (GET /count).
func sinkCount(base string) (int64, error) {
	n, _, err := sinkState(base)
	return n, err
}

// sinkState is the records count of an acksink and when it last answered a
// request carrying records (zero before the first).
func sinkState(base string) (int64, time.Time, error) {
	b, err := get(base + "/count")
	if err != nil {
		return 0, time.Time{}, err
	}
	var c struct {
		Records      int64
		LastUnixNano int64 `json:"last_unix_nano"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, time.Time{}, err
	}
	var last time.Time
	if c.LastUnixNano > 0 {
		last = time.Unix(0, c.LastUnixNano)
	}
	return c.Records, last, nil
}

// ackedWall is the wall time of a run into acksink: from t0 to the sink's
// last acknowledgement, read right after the poll that saw the run
// complete. Polling alone sees completion up to one poll interval late
// (half of one on average: about 1 % of a 2 s run at 50 ms). The sink's
// stamp is used only where it falls between the last poll that had not
// seen completion and the one that did; otherwise the polled time stands.
func ackedWall(sinkURL string, t0 time.Time, polled float64, samples []sample) float64 {
	_, last, err := sinkState(sinkURL)
	if err != nil || last.IsZero() {
		return polled
	}
	w := last.Sub(t0).Seconds()
	lo := 0.0
	if len(samples) > 1 {
		lo = samples[len(samples)-2].t
	}
	const slack = 0.005 // the two clocks are read by two processes
	if w < lo-slack || w > polled+slack {
		return polled
	}
	return min(w, polled)
}

// metricSum sums every series of a metric in a Prometheus text page.
func metricSum(page []byte, name string) float64 {
	var sum float64
	for len(page) > 0 {
		line := page
		if i := bytes.IndexByte(page, '\n'); i >= 0 {
			line, page = page[:i], page[i+1:]
		} else {
			page = nil
		}
		if !bytes.HasPrefix(line, []byte(name)) {
			continue
		}
		rest := line[len(name):]
		if len(rest) == 0 || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if j := bytes.LastIndexByte(rest, ' '); j >= 0 {
			if v, err := strconv.ParseFloat(string(rest[j+1:]), 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// freeAddr is a loopback address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP waits until GET url answers 200, failing early if p exits.
func waitHTTP(p *proc, url string, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		if _, err := get(url); err == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited before %s answered: %v\n%s", p.name, url, p.err, p.logTail(3000))
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s: %s did not answer within %s\n%s", p.name, url, timeout, p.logTail(3000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type syscallRusage = syscall.Rusage

func tvSeconds(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }
