// Package tcpproxy is a TCP forwarder for tests that can cut the network
// between a client and a server on demand: Pause resets every open
// connection and every new one until Resume, as a broken network or a server
// that went away would. Nothing is forwarded while paused. SetDownRate slows
// the server-to-client direction, so that transfers are still under way when
// the cut comes.
package tcpproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what the proxy did.
type Stats struct {
	Accepted int64 // connections accepted (forwarded or not)
	Refused  int64 // connections reset at once because the proxy was paused
	Cut      int64 // open connections reset by Pause
	Open     int64 // connections being forwarded now
	Down     int64 // bytes forwarded server to client
}

// Proxy forwards every connection accepted on its listener to Upstream.
type Proxy struct {
	upstream string
	ln       net.Listener

	mu     sync.Mutex
	paused bool
	conns  map[net.Conn]net.Conn // client -> upstream

	accepted, refused, cut atomic.Int64
	downRate, down         atomic.Int64
	wg                     sync.WaitGroup
}

// Start listens on listen ("127.0.0.1:0" when empty) and forwards to upstream
// (host:port).
func Start(listen, upstream string) (*Proxy, error) {
	if upstream == "" {
		return nil, errors.New("tcpproxy: empty upstream")
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &Proxy{upstream: upstream, ln: ln, conns: map[net.Conn]net.Conn{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the host:port clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is "http://" + Addr.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Pause resets every open connection and, until Resume, every new one.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	for c, u := range p.conns {
		reset(c)
		reset(u)
		p.cut.Add(1)
		delete(p.conns, c)
	}
}

// Resume forwards new connections again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// SetDownRate limits every connection's server-to-client bytes per second
// from now on; 0 (the default) means unlimited.
func (p *Proxy) SetDownRate(bytesPerSecond int64) { p.downRate.Store(bytesPerSecond) }

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := int64(len(p.conns))
	p.mu.Unlock()
	return Stats{Accepted: p.accepted.Load(), Refused: p.refused.Load(), Cut: p.cut.Load(), Open: open, Down: p.down.Load()}
}

// Close stops listening and resets every open connection.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c, u := range p.conns {
		c.Close()
		u.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// reset closes c with an RST rather than a FIN, like a dead peer.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.mu.Lock()
		paused := p.paused
		p.mu.Unlock()
		if paused {
			p.refused.Add(1)
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	u, err := net.Dial("tcp", p.upstream)
	if err != nil {
		reset(c)
		return
	}
	p.mu.Lock()
	if p.paused {
		p.mu.Unlock()
		p.refused.Add(1)
		reset(c)
		u.Close()
		return
	}
	p.conns[c] = u
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close so the other direction can finish its answer.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(u, c)
	go func() {
		_ = p.copyDown(c, u)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
	u.Close()
}

// copyDown copies server to client, at most downRate bytes per second when set
// (in tenth-of-a-second slices).
func (p *Proxy) copyDown(dst, src net.Conn) error {
	buf := make([]byte, 32<<10)
	for {
		n := len(buf)
		rate := p.downRate.Load()
		if rate > 0 && int64(n) > rate/10 {
			n = int(max(rate/10, 1))
		}
		start := time.Now()
		k, err := src.Read(buf[:n])
		if k > 0 {
			w, werr := dst.Write(buf[:k])
			p.down.Add(int64(w))
			if werr != nil {
				return werr
			}
			if rate > 0 {
				if wait := time.Duration(float64(k)/float64(rate)*float64(time.Second)) - time.Since(start); wait > 0 {
					time.Sleep(wait)
				}
			}
		}
		if err != nil {
			return err
		}
	}
}
