// Command kinesis-proxy runs the dmsbridge Kinesis fault and shard-limit proxy (package
// github.com/dmsbridge/dmsbridge/tests/kinesisproxy) in front of a Kinesis stand-in such as kinesalite.
//
// It enforces real Kinesis per-shard write limits (token buckets, default 1000 records/s and 1 MiB/s per shard),
// answering PutRecords entries that do not fit with ProvisionedThroughputExceededException (those records are not
// written), and can inject per-entry errors, HTTP 500s, dropped connections and latency.
//
// Usage:
//
//	go run ./tests/kinesisproxy/cmd/kinesis-proxy -upstream http://127.0.0.1:4567 [flags]
//
// The first line on stdout is the proxy's base URL (e.g. http://127.0.0.1:40123); point the Kinesis client's
// endpoint at it (e.g. KINESIS_ENDPOINT=$(that URL), or `aws --endpoint-url`). The proxy runs until SIGTERM or
// SIGINT, then prints its counters as JSON on stderr and exits 0.
//
// Flags (defaults as in kinesisproxy.Config):
//
//	-upstream URL                 Kinesis stand-in base URL (required)
//	-listen ADDR                  listen address (default 127.0.0.1:0 = free port)
//	-records-per-second N         per-shard record rate; 0 = 1000, negative = unlimited
//	-bytes-per-second N           per-shard byte rate (data + partition key); 0 = 1048576, negative = unlimited
//	-burst DUR                    bucket depth as time at the rate (default 1s)
//	-throttle-rate F              fraction of entries rejected with ProvisionedThroughputExceededException
//	-internal-failure-rate F      fraction of entries rejected with InternalFailure
//	-http500-rate F               fraction of Kinesis requests answered HTTP 500 (not forwarded)
//	-drop-rate F                  fraction of Kinesis requests whose connection is closed (not forwarded)
//	-latency DUR                  delay before answering every request
//	-seed N                       seed for the random choices
//	-shard-refresh DUR            shard list cache lifetime per stream (default 2s)
//
// Example, a benchmark that must see back-pressure at 2 shards x 1000 records/s and 1% dropped connections:
//
//	kinesis-proxy -upstream http://127.0.0.1:4567 -drop-rate 0.01 > proxy.url &
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/dmsbridge/dmsbridge/tests/kinesisproxy"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, stop))
}

// run parses args, starts the proxy, writes its URL to stdout, waits for stop, then writes the counters to stderr.
// It returns the exit code: 0 after a clean stop, 2 for bad flags or a bad configuration.
func run(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	fs := flag.NewFlagSet("kinesis-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c kinesisproxy.Config
	fs.StringVar(&c.Upstream, "upstream", "", "Kinesis stand-in base URL, e.g. http://127.0.0.1:4567 (required)")
	fs.StringVar(&c.Listen, "listen", kinesisproxy.DefaultListen, "listen address")
	fs.Float64Var(&c.RecordsPerSecond, "records-per-second", 0, "per-shard records/s; 0 = 1000, <0 = unlimited")
	fs.Float64Var(&c.BytesPerSecond, "bytes-per-second", 0, "per-shard bytes/s (data + key); 0 = 1 MiB, <0 = unlimited")
	fs.DurationVar(&c.Burst, "burst", kinesisproxy.DefaultBurst, "bucket depth as time at the rate")
	fs.Float64Var(&c.ThrottleRate, "throttle-rate", 0, "fraction [0,1] of entries rejected with ProvisionedThroughputExceededException")
	fs.Float64Var(&c.InternalFailureRate, "internal-failure-rate", 0, "fraction [0,1] of entries rejected with InternalFailure")
	fs.Float64Var(&c.HTTP500Rate, "http500-rate", 0, "fraction [0,1] of Kinesis requests answered HTTP 500")
	fs.Float64Var(&c.DropRate, "drop-rate", 0, "fraction [0,1] of Kinesis requests whose connection is closed unanswered")
	fs.DurationVar(&c.Latency, "latency", 0, "delay added before answering every request")
	fs.Int64Var(&c.Seed, "seed", 0, "seed for the random choices")
	fs.DurationVar(&c.ShardRefresh, "shard-refresh", kinesisproxy.DefaultShardRefresh, "shard list cache lifetime per stream")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kinesis-proxy: unexpected arguments %q\n", fs.Args())
		return 2
	}

	p, err := kinesisproxy.Start(c)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	fmt.Fprintln(stdout, p.URL())

	<-stop
	_ = p.Close()
	b, _ := json.Marshal(p.Stats())
	fmt.Fprintf(stderr, "kinesis-proxy stats: %s\n", b)
	return 0
}
