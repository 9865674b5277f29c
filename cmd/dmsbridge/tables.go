package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

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
	statePrefixEnv = "DMSBRIDGE_METRICS_PREFIX"
)

var stateNames = map[int64]string{0: "Before load", 1: "Full load", 2: "Table completed"}

func tablesCommand() *cli.Command {
	return &cli.Command{
		Name:  "tables",
		Usage: "Print DMS-style table statistics of a running dmsbridge (run or streams mode)",
		Description: `Reads /metrics (the prometheus metrics exporter) of a running instance and prints,
per stream and schema.table: TableState, FullLoadRows, Inserts, Updates, Deletes, errors,
full-load progress, full-load start and end, and LastUpdateTime.

  dmsbridge tables --url http://localhost:4195
  dmsbridge tables --watch 2s
  dmsbridge tables --format json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: "http://localhost:4195", Usage: "base URL of the instance's HTTP server"},
			&cli.StringFlag{Name: "prefix", Value: "", EnvVars: []string{statePrefixEnv}, Usage: "metric name prefix set in the prometheus exporter"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "text or json"},
			&cli.DurationFlag{Name: "watch", Usage: "refresh at this interval until interrupted"},
		},
		Action: func(c *cli.Context) error {
			for {
				stats, err := fetchTableStats(c.String("url"), c.String("prefix"))
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				if c.Duration("watch") > 0 && c.String("format") == "text" {
					fmt.Fprint(c.App.Writer, "\033[H\033[2J")
					fmt.Fprintf(c.App.Writer, "%s  %s\n\n", time.Now().UTC().Format(time.RFC3339), c.String("url"))
				}
				if err := printTableStats(c.App.Writer, c.String("format"), stats); err != nil {
					return err
				}
				if c.Duration("watch") <= 0 {
					return nil
				}
				time.Sleep(c.Duration("watch"))
			}
		},
	}
}

func fetchTableStats(base, prefix string) ([]TableStats, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	url := strings.TrimRight(base, "/") + "/metrics"
	resp, err := client.Get(url)
	if err != nil {
		return nil, fmt.Errorf("tables: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("tables: GET %s: %s: %s (is the prometheus metrics exporter enabled?)", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return parseTableStats(resp.Body, prefix)
}

type tableKey struct{ stream, schema, table string }

func parseTableStats(r io.Reader, prefix string) ([]TableStats, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("tables: the metrics are not in the Prometheus text format: %w", err)
	}
	type acc struct {
		s                   TableStats
		bytesDone, bytesTot float64
		start, end, last    float64
		seen                bool
	}
	rows := map[tableKey]*acc{}
	get := func(k tableKey) *acc {
		a, ok := rows[k]
		if !ok {
			a = &acc{s: TableStats{Stream: k.stream, Schema: k.schema, Table: k.table, State: stateNames[0]}}
			rows[k] = a
		}
		return a
	}
	for name, fam := range families {
		name = strings.TrimPrefix(name, prefix)
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["schema"] == "" && labels["table"] == "" {
				continue
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			a := get(tableKey{labels["stream"], labels["schema"], labels["table"]})
			switch name {
			case mState:
				a.s.State = stateNames[int64(v)]
				a.seen = true
			case mFullLoadRows:
				a.s.FullLoadRows += int64(v)
			case mBytesDone:
				a.bytesDone += v
			case mBytesTotal:
				a.bytesTot += v
			case mLoadStart:
				a.start = maxf(a.start, v)
			case mLoadEnd:
				a.end = maxf(a.end, v)
			case mLastUpdate:
				a.last = maxf(a.last, v)
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
			}
		}
	}
	out := make([]TableStats, 0, len(rows))
	for _, a := range rows {
		if a.bytesTot > 0 {
			a.s.LoadPercent = 100 * a.bytesDone / a.bytesTot
		}
		a.s.FullLoadStart, a.s.FullLoadEnd, a.s.LastUpdate = unixTime(a.start), unixTime(a.end), unixTime(a.last)
		out = append(out, a.s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Stream != out[j].Stream {
			return out[i].Stream < out[j].Stream
		}
		if out[i].Schema != out[j].Schema {
			return out[i].Schema < out[j].Schema
		}
		return out[i].Table < out[j].Table
	})
	return out, nil
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\n", s.Schema, s.Table, s.State,
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
