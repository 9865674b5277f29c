package tcpproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echo serves lines back until the connection ends.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestForwardPauseResume(t *testing.T) {
	p, err := Start("", echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "hello"); err != nil || got != "hello\n" {
		t.Fatalf("before pause: %q %v", got, err)
	}
	if s := p.Stats(); s.Open != 1 {
		t.Fatalf("stats %+v, want 1 open", s)
	}

	p.Pause()
	// The open connection is cut: nothing more comes back.
	if got, err := roundTrip(c, "again"); err == nil {
		t.Fatalf("open connection still answers after Pause: %q", got)
	}
	// New connections are reset.
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		got, err := roundTrip(c2, "new")
		c2.Close()
		if err == nil {
			t.Fatalf("new connection answered while paused: %q", got)
		}
	}
	if s := p.Stats(); s.Cut != 1 || s.Refused != 1 || s.Open != 0 {
		t.Fatalf("stats %+v, want 1 cut, 1 refused, 0 open", s)
	}

	p.Resume()
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, "back"); err != nil || got != "back\n" {
		t.Fatalf("after resume: %q %v", got, err)
	}
	if s := p.Stats(); s.Accepted != 3 {
		t.Fatalf("stats %+v, want 3 accepted", s)
	}
}

func TestStartNeedsUpstream(t *testing.T) {
	if _, err := Start("", ""); err == nil {
		t.Fatal("Start with no upstream succeeded")
	}
}

func TestDownRate(t *testing.T) {
	// A server that sends 64 KiB at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write(make([]byte, 64<<10))
	}()
	p, err := Start("", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetDownRate(128 << 10) // 64 KiB take half a second
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != 64<<10 {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("64 KiB at 128 KiB/s arrived in %s", d)
	}
	if s := p.Stats(); s.Down != 64<<10 {
		t.Fatalf("stats %+v, want 65536 bytes down", s)
	}
}
