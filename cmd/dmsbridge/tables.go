package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/urfave/cli/v2"
)

// TableStats is one row of `dmsbridge tables`: DMS's table statistics for one
// schema.table of one stream.
type TableStats struct {
	Stream        string  `json:"stream,omitempty"`
	Schema        string  `json:"schema"`
	Table         string  `json:"table"`
	State         string  `json:"table_state"`
	FullLoadRows  int64   `json:"full_load_rows"`
	Inserts       int64   `json:"inserts"`
	Updates       int64   `json:"updates"`
	Deletes       int64   `json:"deletes"`
	Errors        int64   `json:"errors"`
	LoadPercent   float64 `json:"full_load_percent"`
	FullLoadStart string  `json:"full_load_start,omitempty"`
	FullLoadEnd   string  `json:"full_load_end,omitempty"`
	LastUpdate    string  `json:"last_update_time,omitempty"`
}

// The metric names the input (aws_s3_dms) and the processor
// (dms_csv_to_json) publish per schema and table.
const (
	mState         = "dms_table_state"
	mFullLoadRows  = "dms_full_load_rows"
	mBytesDone     = "dms_full_load_bytes_done"
	mBytesTotal    = "dms_full_load_bytes_total"
	mLoadStart     = "dms_full_load_start_unix"
	mLoadEnd       = "dms_full_load_end_unix"
	mRows          = "dms_csv_to_json_rows"
	mErrors        = "dms_csv_to_json_errors"
	mLastUpdate    = "dms_table_last_update_unix"
	mInputStarted  = "dms_table_input_started_unix_ms"
	statePrefixEnv = "DMSBRIDGE_METRICS_PREFIX"
)

var stateNames = map[int64]string{0: "Before load", 1: "Full load", 2: "Table completed"}

// defaultWatch is the refresh interval of a bare --watch.
const defaultWatch = 2 * time.Second

func tablesCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "url", Value: "http://localhost:4195", Usage: "base URL of the instance's HTTP server"},
		&cli.StringFlag{Name: "prefix", Value: "", EnvVars: []string{statePrefixEnv}, Usage: "metric name prefix set in the prometheus exporter (found in /metrics when not given and only one is in use)"},
		&cli.StringFlag{Name: "format", Value: "text", Usage: "text or json"},
		&cli.DurationFlag{Name: "watch", Usage: "refresh at this interval (" + defaultWatch.String() + " when given alone) until interrupted"},
	}
	return &cli.Command{
		Name:  "tables",
		Usage: "Print DMS-style table statistics of a running dmsbridge (run or streams mode)",
		Description: `Reads /metrics (the prometheus metrics exporter) of a running instance and prints,
per stream and schema.table: TableState, FullLoadRows, Inserts, Updates, Deletes, errors,
full-load progress, full-load start and end, and LastUpdateTime. In streams mode only
the streams GET /streams lists are shown (a deleted stream's metrics stay in /metrics), each
with the tables its running input reads (a table dropped from a stream's definition by an
update, PUT /streams/{id}, is left out; its metrics stay too). Rows
the processor could not attribute to a table (unknown table, malformed CDC row, missing
metadata) are counted as errors on a "(no table)" row of their stream.

The figures count rows as dmsbridge reads them (FullLoadRows, progress, TableState) and
types them (Inserts, Updates, Deletes, errors): they run ahead of what Kinesis has
acknowledged by the batches in flight, so a table can show "Table completed" while its
last rows wait for Kinesis (an outage, throttling). kinesis_records_written in /metrics
counts what Kinesis took; the figures stored with the checkpoint are acknowledged ones.
Across a restart the input's figures (TableState, FullLoadRows, progress, full-load start
and end) carry on from the checkpoint, as DMS's do; Inserts, Updates, Deletes and errors
are the processor's counters and start from zero with the process.

When the instance is not ready (/ready answers 503: a component not connected, e.g. Kinesis
refusing writes, S3 refusing the input, a lapsed checkpoint lease), each component's error is
written to stderr after the table ("not ready: output kinesis: ..."): the figures alone stay as
they were when a failure stops the pipeline. The exit code stays 0.

With --watch it refreshes until interrupted (on a terminal each refresh replaces the last; into a
pipe or a file they follow one another, without escape codes); a failed refresh is reported and
the next one tried. An instance behind http.basic_auth is reached with --url http://user:password@host:port;
the password is never printed (errors and the --watch header show the URL without it).

  dmsbridge tables --url http://localhost:4195
  dmsbridge tables --watch
  dmsbridge tables --watch 5s
  dmsbridge tables --format json`,
		Flags: flags,
		// --watch takes an optional interval, which urfave/cli's flags cannot
		// express: the arguments are parsed here, with the same flags.
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			opts, err := parseTablesArgs(flags, c.Args().Slice())
			if errors.Is(err, flag.ErrHelp) {
				cli.HelpPrinter(c.App.Writer, cli.CommandHelpTemplate, c.Command)
				return nil
			}
			if err != nil {
				return cli.Exit("tables: "+err.Error(), 2)
			}
			ctx := c.Context
			if ctx == nil {
				ctx = context.Background()
			}
			return runTables(ctx, c.App.Writer, c.App.ErrWriter, opts)
		},
	}
}

type tablesOpts struct {
	url, prefix, format string
	watch               time.Duration
}

// parseTablesArgs parses the tables command's arguments with its flags; a
// --watch not followed by an interval means defaultWatch.
func parseTablesArgs(flags []cli.Flag, args []string) (tablesOpts, error) {
	set := flag.NewFlagSet("tables", flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range flags {
		if err := f.Apply(set); err != nil {
			return tablesOpts{}, err
		}
	}
	var norm []string
	for i, a := range args {
		if a == "--" {
			norm = append(norm, args[i:]...)
			break
		}
		if a == "--watch" || a == "-watch" {
			if i+1 >= len(args) || !isDuration(args[i+1]) {
				a += "=" + defaultWatch.String()
			}
		}
		norm = append(norm, a)
	}
	if err := set.Parse(norm); err != nil {
		return tablesOpts{}, err
	}
	if set.NArg() > 0 {
		return tablesOpts{}, fmt.Errorf("unexpected argument %q", set.Arg(0))
	}
	o := tablesOpts{
		url:    set.Lookup("url").Value.String(),
		prefix: set.Lookup("prefix").Value.String(),
		format: set.Lookup("format").Value.String(),
	}
	o.watch, _ = set.Lookup("watch").Value.(flag.Getter).Get().(time.Duration)
	if o.format != "text" && o.format != "json" {
		return tablesOpts{}, fmt.Errorf("--format must be text or json, not %q", o.format)
	}
	if o.watch < 0 {
		return tablesOpts{}, fmt.Errorf("--watch must not be negative, not %s", o.watch)
	}
	// Checked here, without quoting the value: it may hold a password
	// (user:password@, for an instance behind http.basic_auth), and
	// url.Parse's own error quotes the whole URL.
	u, err := url.Parse(o.url)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return tablesOpts{}, fmt.Errorf("--url must be an http(s) URL such as http://localhost:4195: %v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return tablesOpts{}, fmt.Errorf("--url must be an http(s) URL such as http://localhost:4195, got %s", u.Redacted())
	}
	return o, nil
}

// shownURL is the --url as printed: without the password of its user
// information.
func shownURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(--url)"
	}
	return u.Redacted()
}

func isDuration(s string) bool {
	_, err := time.ParseDuration(s)
	return err == nil
}

// runTables prints the table statistics once or, with a watch interval, at
// that interval until ctx ends; in watch mode a failed fetch is reported on
// w (with its time) and the next refresh tried.
func runTables(ctx context.Context, w, errW io.Writer, o tablesOpts) error {
	for {
		stats, err := fetchTableStats(ctx, o.url, o.prefix)
		if ctx.Err() != nil {
			return nil
		}
		if o.watch <= 0 {
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if err := printTableStats(w, o.format, stats); err != nil {
				return err
			}
			reportNotReady(ctx, errW, o.url)
			return nil
		}
		now := time.Now().UTC().Format(time.RFC3339)
		if o.format == "text" {
			if isTerminal(w) {
				fmt.Fprint(w, "\033[H\033[2J") // home, clear: each refresh replaces the last
			}
			fmt.Fprintf(w, "%s  %s\n\n", now, shownURL(o.url))
		}
		if err != nil {
			fmt.Fprintf(errW, "%s  %v (retrying every %s)\n", now, err, o.watch)
		} else if err := printTableStats(w, o.format, stats); err != nil {
			return err
		} else {
			reportNotReady(ctx, errW, o.url)
		}
		t := time.NewTimer(o.watch)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// isTerminal reports whether w is a terminal (a character device), where
// --watch clears the screen for each refresh; into a pipe or a file the
// refreshes follow one another, without escape codes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// reportNotReady writes to w what /ready of the instance reports when it is
// not ready (a component not connected, with its error): the table figures
// stay as they were when a failure stops the pipeline. Nothing is written
// when it is ready or /ready cannot be read.
func reportNotReady(ctx context.Context, w io.Writer, base string) {
	client := &http.Client{Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/ready", nil)
	if err != nil {
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var res struct {
		Error    string `json:"error"`
		Statuses []struct {
			Label     string `json:"label"`
			Path      string `json:"path"`
			Connected bool   `json:"connected"`
			Error     string `json:"error"`
		} `json:"statuses"`
	}
	if json.Unmarshal(body, &res) != nil {
		// streams mode: "streams a, b are not connected"
		fmt.Fprintf(w, "not ready: %s\n", strings.TrimSpace(string(body)))
		return
	}
	if res.Error != "" {
		fmt.Fprintf(w, "not ready: %s\n", res.Error)
	}
	for _, st := range res.Statuses {
		if st.Connected {
			continue
		}
		name := strings.TrimSpace(st.Path + " " + st.Label)
		if st.Error == "" {
			st.Error = "not connected"
		}
		fmt.Fprintf(w, "not ready: %s: %s\n", name, st.Error)
	}
}

func fetchTableStats(ctx context.Context, base, prefix string) ([]TableStats, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	url := strings.TrimRight(base, "/") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("tables: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("tables: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("tables: GET %s: %s: %s%s", shownURL(url), resp.Status, strings.TrimSpace(string(b)), refusalHint(resp.StatusCode, req.URL.User != nil))
	}
	stats, err := parseTableStats(resp.Body, prefix)
	if err != nil {
		return nil, err
	}
	if live, ok := liveStreams(ctx, client, base); ok {
		kept := stats[:0]
		for _, s := range stats {
			if s.Stream == "" || live[s.Stream] {
				kept = append(kept, s)
			}
		}
		stats = kept
	}
	return stats, nil
}

// refusalHint is what to do about a refused GET /metrics, when known.
func refusalHint(status int, withUser bool) string {
	switch {
	case status == http.StatusUnauthorized && withUser:
		return " (the user or password in --url is refused)"
	case status == http.StatusUnauthorized:
		return " (the instance asks for a user and password: give them in --url, as http://user:password@host:port)"
	case status == http.StatusNotFound:
		return " (is the prometheus metrics exporter enabled?)"
	}
	return ""
}

// liveStreams returns the streams of a streams-mode instance (GET /streams)
// and true; false when the instance does not list streams (run mode answers
// 404) or the list cannot be had, and then no row is dropped. A deleted
// stream's series stay in /metrics (Prometheus series are never removed):
// without this its tables would show their last state, e.g. "Full load",
// forever.
func liveStreams(ctx context.Context, client *http.Client, base string) (map[string]bool, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/streams", nil)
	if err != nil {
		return nil, false
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false
	}
	var list map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&list); err != nil || list == nil {
		return nil, false
	}
	live := make(map[string]bool, len(list))
	for id := range list {
		live[id] = true
	}
	return live, true
}

type tableKey struct{ stream, schema, table string }

// The "(no table)" row of a stream counts the processor errors that no table
// can be blamed for (unknown table, malformed CDC row, missing metadata): the
// series with schema="" and table="".
const (
	noTableSchema = "-"
	noTableName   = "(no table)"
)

// inputFigures are one component's per-table gauges: what one aws_s3_dms
// input (one label and path) publishes for one table.
type inputFigures struct {
	label, path         string
	input               bool // holds at least one input-only gauge
	state               int64
	rows                int64
	bytesDone, bytesTot float64
	start, end, last    float64
	started             float64 // when the input publishing it started (Unix ms), 0 if unknown
}

// freshness orders the inputs publishing one table: the newest of the times
// it set. Series of an input that is gone (a stream updated with another
// label, a broker's input renamed) are never removed from /metrics, so its
// last figures stay next to the running input's.
func (f *inputFigures) freshness() float64 { return maxf(f.last, maxf(f.start, f.end)) }

// fresher reports whether a is to be shown rather than b: the freshest, then
// the one furthest in the load, then (only to be deterministic) by label and
// path.
func fresher(a, b *inputFigures) bool {
	if fa, fb := a.freshness(), b.freshness(); fa != fb {
		return fa > fb
	}
	if a.state != b.state {
		return a.state > b.state
	}
	if a.label != b.label {
		return a.label > b.label
	}
	return a.path > b.path
}

// parseTableStats turns /metrics into one row per stream and table.
//
// The input's figures (dms_table_state, dms_full_load_*) are gauges of one
// component: when several label/path combinations publish the same table,
// the row shows the freshest one whole, never a sum. The processor's
// dms_csv_to_json_rows and _errors are counters split by operation, reason
// and processor: they add up. LastUpdate is the newest update of the shown
// input and of any processor.
func parseTableStats(r io.Reader, prefix string) ([]TableStats, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("tables: the metrics are not in the Prometheus text format: %w", err)
	}
	type acc struct {
		s       TableStats
		comps   map[[2]string]*inputFigures // by label, path
		noTable bool
		errSeen bool
	}
	rows := map[tableKey]*acc{}
	get := func(k tableKey) *acc {
		a, ok := rows[k]
		if !ok {
			a = &acc{s: TableStats{Stream: k.stream, Schema: k.schema, Table: k.table}, comps: map[[2]string]*inputFigures{}}
			if k.schema == "" && k.table == "" {
				a.noTable = true
				a.s.Schema, a.s.Table = noTableSchema, noTableName
			}
			rows[k] = a
		}
		return a
	}
	// newest is, per stream and component path, the start of the input
	// that publishes there now: a table whose figures an input started
	// before it published (a stream updated with a definition without the
	// table, whose series stay in /metrics) is no longer read.
	newest := map[[2]string]float64{}
	prefix = metricPrefix(prefix)
	if prefix == "" {
		prefix = foundPrefix(families)
	}
	for name, fam := range families {
		name = strings.TrimPrefix(name, prefix)
		switch name {
		case mState, mFullLoadRows, mBytesDone, mBytesTotal, mLoadStart, mLoadEnd, mLastUpdate, mRows, mErrors, mInputStarted:
		default:
			continue
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			k := tableKey{labels["stream"], labels["schema"], labels["table"]}
			if k.schema == "" && k.table == "" && name != mErrors && name != mLastUpdate {
				// Only the processor's errors are counted without a table (an
				// empty label is the same as none in Prometheus).
				continue
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			a := get(k)
			ck := [2]string{labels["label"], labels["path"]}
			c := a.comps[ck]
			if c == nil {
				c = &inputFigures{label: ck[0], path: ck[1]}
				a.comps[ck] = c
			}
			switch name {
			case mState:
				c.state, c.input = int64(v), true
			case mFullLoadRows:
				c.rows, c.input = int64(v), true
			case mBytesDone:
				c.bytesDone, c.input = v, true
			case mBytesTotal:
				c.bytesTot, c.input = v, true
			case mLoadStart:
				c.start, c.input = v, true
			case mLoadEnd:
				c.end, c.input = v, true
			case mLastUpdate:
				c.last = maxf(c.last, v)
			case mInputStarted:
				c.started, c.input = v, true
				sk := [2]string{k.stream, ck[1]}
				newest[sk] = maxf(newest[sk], v)
			case mRows:
				switch labels["operation"] {
				case "insert":
					a.s.Inserts += int64(v)
				case "update":
					a.s.Updates += int64(v)
				case "delete":
					a.s.Deletes += int64(v)
				}
			case mErrors:
				a.s.Errors += int64(v)
				a.errSeen = true
			}
		}
	}
	out := make([]TableStats, 0, len(rows))
	for _, a := range rows {
		if a.noTable && !a.errSeen {
			continue
		}
		var shown *inputFigures
		var last float64
		inputs, current := 0, 0
		for _, c := range a.comps {
			if c.input {
				inputs++
				if c.started > 0 && c.started < newest[[2]string{a.s.Stream, c.path}] {
					continue // an earlier input's, for a table no longer read
				}
				current++
			}
			if !c.input {
				last = maxf(last, c.last) // a processor's
			} else if shown == nil || fresher(c, shown) {
				shown = c
			}
		}
		if inputs > 0 && current == 0 {
			continue // no running input reads the table any more
		}
		if !a.noTable {
			a.s.State = stateNames[0]
		}
		var start, end float64
		if shown != nil {
			a.s.State = stateNames[shown.state]
			a.s.FullLoadRows = shown.rows
			if shown.bytesTot > 0 {
				a.s.LoadPercent = 100 * shown.bytesDone / shown.bytesTot
			} else if shown.state == 2 {
				// Completed, its sizes unknown: the input restored it from
				// its checkpoint (a restart, a stream updated), which stores
				// no sizes. The load is whole.
				a.s.LoadPercent = 100
			}
			start, end, last = shown.start, shown.end, maxf(last, shown.last)
		}
		a.s.FullLoadStart, a.s.FullLoadEnd, a.s.LastUpdate = unixTime(start), unixTime(end), unixTime(last)
		out = append(out, a.s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Stream != out[j].Stream {
			return out[i].Stream < out[j].Stream
		}
		if ni, nj := out[i].Table == noTableName && out[i].Schema == noTableSchema, out[j].Table == noTableName && out[j].Schema == noTableSchema; ni != nj {
			return nj // a stream's "(no table)" row comes after its tables
		}
		if out[i].Schema != out[j].Schema {
			return out[i].Schema < out[j].Schema
		}
		return out[i].Table < out[j].Table
	})
	return out, nil
}

// foundPrefix is the prefix an exporter set before dmsbridge's table
// metrics, when none is given: "" when they are there without one, or
// when more than one prefix is in use (which is meant cannot be told).
func foundPrefix(families map[string]*dto.MetricFamily) string {
	found := map[string]bool{}
	for name := range families {
		for _, m := range []string{mState, mRows, mErrors} {
			if p, ok := strings.CutSuffix(name, m); ok {
				if p == "" {
					return ""
				}
				found[p] = true
			}
		}
	}
	if len(found) != 1 {
		return ""
	}
	for p := range found {
		return p
	}
	return ""
}

var invalidMetricChars = regexp.MustCompile(`[^a-zA-Z0-9_:]`)

// metricPrefix is prefix as the prometheus exporter writes it in metric
// names: every character outside [a-zA-Z0-9_:] becomes "_", and a leading
// digit gets a "_" before it.
func metricPrefix(prefix string) string {
	prefix = invalidMetricChars.ReplaceAllString(prefix, "_")
	if prefix != "" && prefix[0] >= '0' && prefix[0] <= '9' {
		prefix = "_" + prefix
	}
	return prefix
}

func maxf(a, b float64) float64 {
	if b > a {
		return b
	}
	return a
}

func unixTime(v float64) string {
	if v <= 0 {
		return ""
	}
	return time.Unix(int64(v), 0).UTC().Format(time.RFC3339)
}

func printTableStats(w io.Writer, format string, stats []TableStats) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(stats)
	case "text":
	default:
		return cli.Exit(fmt.Sprintf("tables: --format must be text or json, not %q", format), 2)
	}
	if len(stats) == 0 {
		_, err := fmt.Fprintln(w, "no table statistics yet (is an aws_s3_dms input or dms_csv_to_json processor running?)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	withStream := false
	for _, s := range stats {
		if s.Stream != "" {
			withStream = true
		}
	}
	head := "SCHEMA\tTABLE\tSTATE\tFULL LOAD ROWS\tINSERTS\tUPDATES\tDELETES\tERRORS\tLOAD %\tFULL LOAD START\tFULL LOAD END\tLAST UPDATE"
	if withStream {
		head = "STREAM\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, s := range stats {
		if withStream {
			fmt.Fprintf(tw, "%s\t", s.Stream)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\n", s.Schema, s.Table, dash(s.State),
			s.FullLoadRows, s.Inserts, s.Updates, s.Deletes, s.Errors, s.LoadPercent,
			dash(s.FullLoadStart), dash(s.FullLoadEnd), dash(s.LastUpdate))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
