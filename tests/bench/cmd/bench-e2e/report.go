package main

import (
	"fmt"
	"math"
	"os"
	"strings"
)

const (
	mdBegin = "<!-- bench-e2e results: begin (written by make bench-e2e) -->"
	mdEnd   = "<!-- bench-e2e results: end -->"
)

// report is the results section, in Markdown (also printed as is).
func report(f facts, o options, rows int64, all, acks, bases []result, pairs []float64, base *result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Results of %s\n\n", f.date)
	fmt.Fprintf(&b, "Machine: %d cores (%s), Linux %s, %s. Load average (1, 5, 15 min) at the start %s, at the end %s: ",
		f.cores, f.cpuModel, f.kernel, f.goVersion, f.loadStart, f.loadEnd)
	b.WriteString("other work on the machine shares the cores, and the sink and the S3 server run on them too.\n\n")
	fmt.Fprintf(&b, "Data set: the reference data set (tests/refdata, scale %g): %s rows in 5 full-load and 4 CDC files, in a versitygw bucket "+
		"(the baseline reads the same files from disk).\n\n", o.scale, fmtInt(rows))
	b.WriteString("| Job | Sink | Wall s | Rows/s | CPU s | CPU s / M rows | Peak RSS MiB | Sink CPU s / M rows | Duplicates at sink |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range all {
		sink := "-"
		if r.sinkCPU > 0 {
			sink = fmt.Sprintf("%.1f", r.sinkPerM())
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f | %s | %.1f | %.1f | %.0f | %s | %d |\n",
			r.job, r.sink, r.wall, fmtInt(int64(math.Round(r.rate()))), r.cpu, r.cpuPerM(), r.rssMiB(), sink, r.dups)
	}
	rates := func(rs []result) string {
		var out []string
		for _, r := range rs {
			out = append(out, fmtInt(int64(math.Round(r.rate()))))
		}
		return strings.Join(out, ", ")
	}
	if len(acks) > 1 {
		fmt.Fprintf(&b, "\ndmsbridge → acksink, %d runs (rows/s, fastest first): %s; the table shows the median run.\n", len(acks), rates(acks))
	}
	if len(bases) > 1 {
		fmt.Fprintf(&b, "Core baseline, %d runs (rows/s, fastest first), each right after a dmsbridge run: %s; the table shows the median run.\n", len(bases), rates(bases))
	}
	med := all[0]
	if base != nil {
		b.WriteString("\n| dmsbridge → acksink vs core baseline | Ratio |\n|---|---:|\n")
		fmt.Fprintf(&b, "| Throughput (rows/s) | %.1f× |\n", med.rate()/base.rate())
		fmt.Fprintf(&b, "| CPU per row | %.2f× (%.1f× less) |\n", med.cpuPerM()/base.cpuPerM(), base.cpuPerM()/med.cpuPerM())
		fmt.Fprintf(&b, "| Peak RSS | %.2f× |\n", med.rssMiB()/base.rssMiB())
		if len(pairs) > 1 {
			var ps []string
			for _, p := range pairs {
				ps = append(ps, fmt.Sprintf("%.1f×", p))
			}
			fmt.Fprintf(&b, "\nThroughput ratio of each dmsbridge run to the baseline run right after it, in run order: %s.\n", strings.Join(ps, ", "))
		}
	}
	b.WriteString("\nTargets:\n\n")
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**MISSED**"
	}
	fmt.Fprintf(&b, "- dmsbridge → acksink ≥ %s rows/s: %s (%s rows/s)\n", fmtInt(targetRowsPerSec), verdict(med.rate() >= targetRowsPerSec), fmtInt(int64(math.Round(med.rate()))))
	if base != nil {
		ratio := med.rate() / base.rate()
		fmt.Fprintf(&b, "- dmsbridge ≥ %d× the core-components baseline: %s (%.1f×)\n", targetRatio, verdict(ratio >= targetRatio), ratio)
	}
	b.WriteString("\nWall time runs from the process start to the last record acknowledged (dmsbridge: `kinesis_records_written` " +
		"reaches the row count; baseline: the acksink count does), polled every " + o.poll.String() + "; into acksink the end is the sink's " +
		"own time of its last answer (read right after the poll that saw completion, which alone would be up to one poll late), " +
		"into kinesalite the poll's, interpolated. " +
		"CPU is utime+stime of the pipeline process from /proc/PID/stat at that moment (the baseline, which exits by itself: " +
		"its rusage at exit), peak RSS its VmHWM (baseline: ru_maxrss). Duplicates are records the sink received more than once " +
		"(requests re-sent after an unknown outcome); they are not counted in rows/s.\n\n")
	b.WriteString("![Throughput over time](bench-e2e.svg)\n")
	return b.String()
}

// writeMarkdown replaces the results section of path (between the markers),
// appending one if the file has none.
func writeMarkdown(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	block := mdBegin + "\n" + section + mdEnd
	i, j := strings.Index(s, mdBegin), strings.Index(s, mdEnd)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(mdEnd):]
	} else {
		if s == "" {
			s = "# Benchmarks\n"
		}
		s = strings.TrimRight(s, "\n") + "\n\n## End-to-end results\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

// rateSeries is throughput in windows of w seconds: (window end, rows/s).
func rateSeries(samples []sample, end, w float64) [][2]float64 {
	at := func(t float64) float64 { // records at time t, linear between samples
		if len(samples) == 0 || t <= samples[0].t {
			if len(samples) > 0 && t >= samples[0].t {
				return float64(samples[0].n)
			}
			return 0
		}
		for i := 1; i < len(samples); i++ {
			if samples[i].t >= t {
				a, b := samples[i-1], samples[i]
				return float64(a.n) + float64(b.n-a.n)*(t-a.t)/(b.t-a.t)
			}
		}
		return float64(samples[len(samples)-1].n)
	}
	var out [][2]float64
	for t := 0.0; t < end-1e-9; t += w {
		e := math.Min(t+w, end)
		out = append(out, [2]float64{e, (at(e) - at(t)) / (e - t)})
	}
	return out
}

// chart is an SVG line chart of throughput over time (log scale) for each
// run, with a line at the target.
func chart(all []result) string {
	const (
		W, H               = 860, 420
		left, right        = 80, 230
		top, bottom        = 40, 50
		win                = 0.5
		yMinExp, yMaxExp   = 3.0, 6.0 // 1k .. 1M rows/s
		targetLabelPadding = 4
	)
	pw, ph := float64(W-left-right), float64(H-top-bottom)
	maxT := 0.0
	for _, r := range all {
		maxT = math.Max(maxT, r.wall)
	}
	maxT = niceCeil(maxT)
	x := func(t float64) float64 { return float64(left) + t/maxT*pw }
	y := func(v float64) float64 {
		lv := math.Log10(math.Max(v, math.Pow(10, yMinExp)))
		return float64(top) + (1-(lv-yMinExp)/(yMaxExp-yMinExp))*ph
	}
	colors := []string{"#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">make bench-e2e: throughput over time (rows/s per %.1f s window, log scale)</text>`+"\n", left, win)
	// Y grid: decades and 2x, 5x.
	for e := yMinExp; e <= yMaxExp; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v > math.Pow(10, yMaxExp) {
				break
			}
			yy := y(v)
			stroke, dash := "#ccc", ` stroke-dasharray="2,3"`
			if m == 1 {
				stroke, dash = "#999", ""
			}
			fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"%s/>`+"\n", left, float64(left)+pw, yy, yy, stroke, dash)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, yy+4, siLabel(v))
		}
	}
	// X grid.
	step := niceStep(maxT / 8)
	for t := 0.0; t <= maxT+1e-9; t += step {
		xx := x(t)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#eee"/>`+"\n", xx, xx, top, float64(top)+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", xx, float64(top)+ph+16, trimFloat(t))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">seconds since process start</text>`+"\n", float64(left)+pw/2, H-12)
	fmt.Fprintf(&b, `<text x="18" y="%.1f" text-anchor="middle" transform="rotate(-90 18 %.1f)">rows/s</text>`+"\n", float64(top)+ph/2, float64(top)+ph/2)
	// Target line.
	ty := y(targetRowsPerSec)
	fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#000" stroke-width="1.5" stroke-dasharray="8,4"/>`+"\n", left, float64(left)+pw, ty, ty)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">target %s rows/s</text>`+"\n", float64(left)+pw-targetLabelPadding, ty-targetLabelPadding, siLabel(targetRowsPerSec))
	// Series and legend.
	for i, r := range all {
		c := colors[i%len(colors)]
		pts := rateSeries(r.samples, r.wall, win)
		var path strings.Builder
		for j, p := range pts {
			// Step line: the rate holds over its window.
			x0 := x(p[0] - win)
			if j == 0 || p[0]-win < 0 {
				x0 = x(math.Max(0, p[0]-win))
			}
			if j == 0 {
				fmt.Fprintf(&path, "M%.1f,%.1f", x0, y(p[1]))
			} else {
				fmt.Fprintf(&path, " L%.1f,%.1f", x0, y(p[1]))
			}
			fmt.Fprintf(&path, " L%.1f,%.1f", x(p[0]), y(p[1]))
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", path.String(), c)
		ly := float64(top) + 14 + float64(i)*36
		lx := float64(left) + pw + 14
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", lx, lx+20, ly, ly, c)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+26, ly+4, xmlEscape(r.label()))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#555">%s rows/s, %.1f s</text>`+"\n", lx+26, ly+19, siLabel(r.rate()), r.wall)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func siLabel(v float64) string {
	switch {
	case v >= 1e6:
		return trimFloat(math.Round(v/1e5)/10) + "M"
	case v >= 1e3:
		return trimFloat(math.Round(v/1e2)/10) + "k"
	default:
		return trimFloat(math.Round(v))
	}
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0")
}

func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func niceCeil(v float64) float64 {
	s := niceStep(v / 8)
	return math.Max(s, math.Ceil(v/s)*s)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
