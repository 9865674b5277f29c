// Command acksink runs the immediately-acknowledging Kinesis endpoint of
// package acksink until SIGTERM, printing its URL on the first line.
//
//	go run ./tests/acksink/cmd/acksink -listen 127.0.0.1:4600 -shards 2
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/dmsbridge/dmsbridge/tests/acksink"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	shards := flag.Int("shards", 2, "number of shards the stream reports")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the sink to this file until it stops")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "acksink:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	s, err := acksink.Start(*listen, *shards)
	if err != nil {
		fmt.Fprintln(os.Stderr, "acksink:", err)
		os.Exit(1)
	}
	fmt.Println(s.URL())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	_ = s.Close()
	fmt.Fprintf(os.Stderr, "acksink: %d records, %d bytes\n", s.Records(), s.Bytes())
}
