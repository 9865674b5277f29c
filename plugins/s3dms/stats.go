package s3dms

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/checkpoint"
)

// Table states, as DMS names them (TableState) and as the dms_table_state
// gauge encodes them.
const (
	StateBeforeLoad = 0
	StateFullLoad   = 1
	StateCompleted  = 2
)

// StateName is DMS's name of a table state.
func StateName(s int) string {
	switch s {
	case StateFullLoad:
		return "Full load"
	case StateCompleted:
		return "Table completed"
	}
	return "Before load"
}

// TableStats are one table's full-load figures.
type TableStats struct {
	Schema         string     `json:"schema"`
	Table          string     `json:"table"`
	State          int        `json:"state"`
	StateName      string     `json:"state_name"`
	FullLoadRows   int64      `json:"full_load_rows"`
	BytesDone      int64      `json:"bytes_done"`
	BytesTotal     int64      `json:"bytes_total"`
	FilesDone      int64      `json:"files_done"`
	FilesTotal     int64      `json:"files_total"`
	FullLoadStart  *time.Time `json:"full_load_start,omitempty"`
	FullLoadFinish *time.Time `json:"full_load_end,omitempty"`
}

// CDCStats are the CDC figures of one input.
type CDCStats struct {
	Rows           int64      `json:"rows"`
	FilesProcessed int64      `json:"files_processed"`
	FilesPending   int64      `json:"files_pending"`
	LateFiles      int64      `json:"late_files"`
	NewestFileTime *time.Time `json:"newest_file_last_modified,omitempty"`
	LagSeconds     float64    `json:"lag_seconds"`
}

// Snapshot is a copy of one input's statistics.
type Snapshot struct {
	Label  string       `json:"label"`
	Phase  string       `json:"phase"`
	Tables []TableStats `json:"tables"`
	CDC    CDCStats     `json:"cdc"`
}

var (
	registryMu sync.Mutex
	registry   = map[string]*stats{}
)

// Stats returns a snapshot of every running aws_s3_dms input, keyed by its
// component label ("aws_s3_dms" when it has none; "<label>#2", "#3"... when
// several running inputs share a label, as in streams mode).
func Stats() map[string]Snapshot {
	registryMu.Lock()
	all := make([]*stats, 0, len(registry))
	for _, s := range registry {
		all = append(all, s)
	}
	registryMu.Unlock()
	out := make(map[string]Snapshot, len(all))
	for _, s := range all {
		snap := s.snapshot()
		out[snap.Label] = snap
	}
	return out
}

// stats holds the figures and mirrors them into Benthos metrics.
type stats struct {
	label string
	mu    sync.Mutex
	phase string
	// tables in definition order
	tables []*TableStats
	cdc    CDCStats
	// figs are the tables' checkpoint figures (see figView): chunks never
	// changed once handed out, and the rows of table figsAt kept apart.
	figs   [][]checkpoint.TableFigures
	figsAt int
	figsN  int64
	// The late files counted in cdc.LateFiles, split by how a restart
	// finds them again: lateBase restored from the checkpoint, lateSkipped
	// skipped since (the checkpoint's record of listed keys holds them at
	// once, so they are never reported again: stored as they are counted),
	// lateDone processed since (found late again until the position passes
	// them: stored with the position, like every other figure).
	lateBase, lateSkipped, lateDone int64

	mState, mRows, mBytesDone, mBytesTotal, mFilesDone, mFilesTotal *service.MetricGauge
	mCDCProcessed, mCDCPending, mCDCLate, mCDCRows                  *service.MetricGauge
	mLag                                                            *service.MetricGauge
	mStart, mEnd, mLastUpdate                                       *service.MetricGauge
	mInputStarted                                                   *service.MetricGauge
	mLists, mBadFiles, mLongRows, mCkErrors                         *service.MetricCounter
	mCkFailing                                                      *service.MetricGauge
}

func newStats(label string, m *service.Metrics, tables [][2]string) *stats {
	if label == "" {
		label = "aws_s3_dms"
	}
	s := &stats{
		label:         label,
		phase:         "starting",
		mState:        m.NewGauge("dms_table_state", "schema", "table"),
		mRows:         m.NewGauge("dms_full_load_rows", "schema", "table"),
		mBytesDone:    m.NewGauge("dms_full_load_bytes_done", "schema", "table"),
		mBytesTotal:   m.NewGauge("dms_full_load_bytes_total", "schema", "table"),
		mFilesDone:    m.NewGauge("dms_full_load_files_done", "schema", "table"),
		mFilesTotal:   m.NewGauge("dms_full_load_files_total", "schema", "table"),
		mCDCProcessed: m.NewGauge("dms_cdc_files_processed"),
		mCDCPending:   m.NewGauge("dms_cdc_files_pending"),
		mCDCLate:      m.NewGauge("dms_cdc_late_files"),
		mCDCRows:      m.NewGauge("dms_cdc_rows"),
		mLag:          m.NewGauge("dms_cdc_lag_seconds"),
		mStart:        m.NewGauge("dms_full_load_start_unix", "schema", "table"),
		mEnd:          m.NewGauge("dms_full_load_end_unix", "schema", "table"),
		mLastUpdate:   m.NewGauge("dms_table_last_update_unix", "schema", "table"),
		mInputStarted: m.NewGauge("dms_table_input_started_unix_ms", "schema", "table"),
		mLists:        m.NewCounter("dms_s3_list_requests"),
		mBadFiles:     m.NewCounter("dms_bad_files"),
		mLongRows:     m.NewCounter("dms_rows_too_long"),
		mCkErrors:     m.NewCounter("dms_checkpoint_save_errors"),
		mCkFailing:    m.NewGauge("dms_checkpoint_save_failing"),
	}
	// Exported at 0 from the start: an absent series reads as "no data",
	// not as "none happened", in dashboards and alerts.
	for _, c := range []*service.MetricCounter{s.mLists, s.mBadFiles, s.mLongRows, s.mCkErrors} {
		c.Incr(0)
	}
	for _, g := range []*service.MetricGauge{s.mCDCProcessed, s.mCDCPending, s.mCDCLate, s.mCDCRows, s.mLag, s.mCkFailing} {
		g.Set(0)
	}
	started := startedMs()
	for _, t := range tables {
		s.tables = append(s.tables, &TableStats{Schema: t[0], Table: t[1], StateName: StateName(StateBeforeLoad)})
		// Every figure, not only the state: in streams mode a stream
		// updated (PUT) or re-created under its id publishes under the
		// labels of the input before it, whose figures would otherwise
		// stay next to this one's "Before load" until it sets its own.
		for _, g := range []*service.MetricGauge{s.mState, s.mRows, s.mBytesDone, s.mBytesTotal, s.mFilesDone, s.mFilesTotal, s.mStart, s.mEnd, s.mLastUpdate} {
			g.Set(0, t[0], t[1])
		}
		// Which input publishes the table now: a table no longer read (a
		// stream updated with a definition without it) keeps the start of
		// the input before, and `dmsbridge tables` leaves it out.
		s.mInputStarted.Set(started, t[0], t[1])
	}
	s.rebuildFigs()
	registryMu.Lock()
	// Several inputs with the same label (streams mode) get "#2", "#3"...
	key := label
	for n := 2; registry[key] != nil; n++ {
		key = fmt.Sprintf("%s#%d", label, n)
	}
	s.label = key
	registry[key] = s
	registryMu.Unlock()
	return s
}

// figChunk is the number of tables per chunk of a figView.
const figChunk = 64

// figView is the statistics to store with a checkpoint, as they were at one
// moment. Every batch takes one (they are stored once it is acknowledged),
// so taking one costs the same with 10 tables or 10,000: the tables' figures
// are chunks shared between views (a change copies one chunk and the list
// of chunks, never the chunks handed out), and the row count of the table
// being loaded, which moves with every batch, is kept apart.
type figView struct {
	tables                                      [][]checkpoint.TableFigures
	rowsAt                                      int // -1: none
	rows                                        int64
	cdcRows, cdcFiles, lateFiles, newestCDCFile int64 // lateFiles: those processed, and the stored ones
}

// figures is the view as a checkpoint stores it, with skipped late files
// skipped (see stats.lateSkipped) added to its late files.
func (v figView) figures(skipped int64) *checkpoint.Figures {
	f := &checkpoint.Figures{CDCRows: v.cdcRows, CDCFiles: v.cdcFiles, LateFiles: v.lateFiles + skipped, NewestCDCFile: v.newestCDCFile}
	n := 0
	for _, c := range v.tables {
		n += len(c)
	}
	f.Tables = make([]checkpoint.TableFigures, 0, n)
	for _, c := range v.tables {
		f.Tables = append(f.Tables, c...)
	}
	if v.rowsAt >= 0 && v.rowsAt < len(f.Tables) {
		f.Tables[v.rowsAt].Rows = v.rows
	}
	return f
}

func unixMs(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.UnixMilli()
}

func (t *TableStats) figures() checkpoint.TableFigures {
	f := checkpoint.TableFigures{Schema: t.Schema, Table: t.Table, Rows: t.FullLoadRows, Start: unixMs(t.FullLoadStart), End: unixMs(t.FullLoadFinish)}
	if t.State == StateCompleted {
		// A table being loaded is listed again at a restart, which
		// counts its files and bytes anew; a completed one is not.
		f.Files, f.Bytes = t.FilesTotal, t.BytesTotal
	}
	return f
}

// rebuildFigs makes the tables' figures anew (s.mu held, or not shared).
func (s *stats) rebuildFigs() {
	s.figs = nil
	for i := 0; i < len(s.tables); i += figChunk {
		c := make([]checkpoint.TableFigures, 0, min(figChunk, len(s.tables)-i))
		for _, t := range s.tables[i:min(i+figChunk, len(s.tables))] {
			c = append(c, t.figures())
		}
		s.figs = append(s.figs, c)
	}
	s.figsAt, s.figsN = -1, 0
}

// publishFig makes table i's figures those of the views taken from now on
// (s.mu held): a copy of its chunk in a copy of the list of chunks.
func (s *stats) publishFig(i int) {
	figs := append([][]checkpoint.TableFigures(nil), s.figs...)
	c := append([]checkpoint.TableFigures(nil), figs[i/figChunk]...)
	c[i%figChunk] = s.tables[i].figures()
	figs[i/figChunk] = c
	s.figs = figs
}

// rowsMoved records that table i's row count changed (s.mu held).
func (s *stats) rowsMoved(i int) {
	if s.figsAt != i {
		if s.figsAt >= 0 {
			s.publishFig(s.figsAt)
		}
		s.figsAt = i
	}
	s.figsN = s.tables[i].FullLoadRows
}

// figures are the statistics to store with a checkpoint, as of now.
func (s *stats) figures() figView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return figView{tables: s.figs, rowsAt: s.figsAt, rows: s.figsN,
		cdcRows: s.cdc.Rows, cdcFiles: s.cdc.FilesProcessed, lateFiles: s.lateBase + s.lateDone, newestCDCFile: unixMs(s.cdc.NewestFileTime)}
}

// seed restores the statistics stored with a checkpoint (tables matched by
// name) and the table states its position implies: tables before the one
// being loaded, or all in CDC, are completed.
func (s *stats) seed(f *checkpoint.Figures, completed int) {
	at := func(ms int64) *time.Time {
		if ms == 0 {
			return nil
		}
		t := time.UnixMilli(ms).UTC()
		return &t
	}
	s.mu.Lock()
	byName := map[[2]string]checkpoint.TableFigures{}
	if f != nil {
		for _, t := range f.Tables {
			byName[[2]string{t.Schema, t.Table}] = t
		}
		for _, t := range s.tables {
			if tf, ok := byName[[2]string{t.Schema, t.Table}]; ok {
				t.FullLoadRows, t.FullLoadStart, t.FullLoadFinish = tf.Rows, at(tf.Start), at(tf.End)
			}
		}
		s.cdc.Rows, s.cdc.FilesProcessed, s.cdc.LateFiles, s.cdc.NewestFileTime = f.CDCRows, f.CDCFiles, f.LateFiles, at(f.NewestCDCFile)
		s.lateBase, s.lateSkipped, s.lateDone = f.LateFiles, 0, 0
	}
	recorded := f != nil && len(f.Tables) > 0
	for i, t := range s.tables {
		tf, known := byName[[2]string{t.Schema, t.Table}]
		// A table the recorded figures do not show loaded was added to the
		// definition after its place in the full load had passed (the
		// full load done, or resumed past it): it was never loaded, and
		// stays Before load.
		if i < completed && (!recorded || known && tf.End != 0) {
			t.State = StateCompleted
			if t.FullLoadFinish == nil { // a checkpoint from before figures were stored
				now := time.Now().UTC()
				t.FullLoadFinish = &now
			}
			if known {
				// Whole: every file and byte listed was done.
				t.FilesTotal, t.FilesDone, t.BytesTotal, t.BytesDone = tf.Files, tf.Files, tf.Bytes, tf.Bytes
			}
		}
		t.StateName = StateName(t.State)
	}
	s.rebuildFigs()
	tables := make([]TableStats, len(s.tables))
	for i, t := range s.tables {
		tables[i] = *t
	}
	cdc := s.cdc
	s.mu.Unlock()
	for _, t := range tables {
		s.mState.Set(int64(t.State), t.Schema, t.Table)
		s.mRows.Set(t.FullLoadRows, t.Schema, t.Table)
		s.mFilesTotal.Set(t.FilesTotal, t.Schema, t.Table)
		s.mFilesDone.Set(t.FilesDone, t.Schema, t.Table)
		s.mBytesTotal.Set(t.BytesTotal, t.Schema, t.Table)
		s.mBytesDone.Set(t.BytesDone, t.Schema, t.Table)
		// LastUpdateTime: the statistics restored last changed no earlier
		// than the table's load started or ended (later CDC changes are
		// the processor's, which sets its own).
		var last int64
		if t.FullLoadStart != nil {
			s.mStart.Set(t.FullLoadStart.Unix(), t.Schema, t.Table)
			last = t.FullLoadStart.Unix()
		}
		if t.FullLoadFinish != nil {
			s.mEnd.Set(t.FullLoadFinish.Unix(), t.Schema, t.Table)
			last = max(last, t.FullLoadFinish.Unix())
		}
		if last > 0 {
			s.mLastUpdate.Set(last, t.Schema, t.Table)
		}
	}
	s.mCDCRows.Set(cdc.Rows)
	s.mCDCProcessed.Set(cdc.FilesProcessed)
	s.mCDCLate.Set(cdc.LateFiles)
}

var lastStarted atomic.Int64

// startedMs is now in Unix milliseconds, made later than every value it
// returned before, so that an input started after another in the same
// millisecond is still the newer one.
func startedMs() int64 {
	for {
		last, now := lastStarted.Load(), time.Now().UnixMilli()
		if now <= last {
			now = last + 1
		}
		if lastStarted.CompareAndSwap(last, now) {
			return now
		}
	}
}

func (s *stats) unregister() {
	registryMu.Lock()
	if registry[s.label] == s {
		delete(registry, s.label)
	}
	registryMu.Unlock()
}

// closed sets the gauges of a live condition to 0 when the input closes: in
// streams mode the exporter outlives a deleted stream and keeps its series,
// and a store failing, files pending or a lag left at their last values
// would read (and alert) as live for the life of the process; nothing of a
// closed input fails, waits or lags. (An input that follows under the same
// labels, a stream updated, sets its own at its first save and poll.)
func (s *stats) closed() {
	s.mCkFailing.Set(0)
	s.mCDCPending.Set(0)
	s.mLag.Set(0)
}

func (s *stats) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

func (s *stats) tableState(i, state int) {
	s.mu.Lock()
	t := s.tables[i]
	t.State = state
	t.StateName = StateName(state)
	now := time.Now().UTC()
	if state == StateFullLoad && t.FullLoadStart == nil {
		t.FullLoadStart = &now
		s.mStart.Set(now.Unix(), t.Schema, t.Table)
		s.publishFig(i)
	}
	if state == StateCompleted {
		t.FullLoadFinish = &now
		s.mEnd.Set(now.Unix(), t.Schema, t.Table)
		s.publishFig(i)
	}
	s.mu.Unlock()
	s.mState.Set(int64(state), t.Schema, t.Table)
	s.mLastUpdate.Set(now.Unix(), t.Schema, t.Table)
}

func (s *stats) tableTotals(i int, filesTotal, bytesTotal, filesDone, bytesDone int64) {
	s.mu.Lock()
	t := s.tables[i]
	t.FilesTotal, t.BytesTotal, t.FilesDone, t.BytesDone = filesTotal, bytesTotal, filesDone, bytesDone
	s.mu.Unlock()
	s.mFilesTotal.Set(filesTotal, t.Schema, t.Table)
	s.mBytesTotal.Set(bytesTotal, t.Schema, t.Table)
	s.mFilesDone.Set(filesDone, t.Schema, t.Table)
	s.mBytesDone.Set(bytesDone, t.Schema, t.Table)
}

func (s *stats) tableProgress(i int, rows, bytesDone, filesDone int64) {
	s.mu.Lock()
	t := s.tables[i]
	t.FullLoadRows += rows
	if rows != 0 {
		s.rowsMoved(i)
	}
	t.BytesDone += bytesDone
	t.FilesDone += filesDone
	r, b, f := t.FullLoadRows, t.BytesDone, t.FilesDone
	s.mu.Unlock()
	s.mRows.Set(r, t.Schema, t.Table)
	s.mBytesDone.Set(b, t.Schema, t.Table)
	s.mFilesDone.Set(f, t.Schema, t.Table)
	s.mLastUpdate.Set(time.Now().Unix(), t.Schema, t.Table)
}

func (s *stats) cdcRows(n int64) {
	s.mu.Lock()
	s.cdc.Rows += n
	v := s.cdc.Rows
	s.mu.Unlock()
	s.mCDCRows.Set(v)
}

func (s *stats) cdcFileDone(lastModified time.Time) {
	s.mu.Lock()
	s.cdc.FilesProcessed++
	// A file with no modification time (the checkpointed one, deleted
	// while the input was stopped: reported as a bad file) says nothing
	// of the lag.
	if !lastModified.IsZero() && (s.cdc.NewestFileTime == nil || lastModified.After(*s.cdc.NewestFileTime)) {
		lm := lastModified
		s.cdc.NewestFileTime = &lm
	}
	v := s.cdc.FilesProcessed
	s.mu.Unlock()
	s.mCDCProcessed.Set(v)
	s.refreshLag()
}

func (s *stats) refreshLag() {
	s.mu.Lock()
	lag := 0.0
	if s.cdc.NewestFileTime != nil {
		// A LastModified ahead of this host's clock (a skewed S3
		// clock, a local file's future mtime) is no lag at all.
		lag = max(0, time.Since(*s.cdc.NewestFileTime).Seconds())
	}
	s.cdc.LagSeconds = lag
	s.mu.Unlock()
	s.mLag.Set(int64(lag))
}

// lateFileDone records that a late file being processed was read to its
// end: from then on the checkpoint stores it (with the position).
func (s *stats) lateFileDone() {
	s.mu.Lock()
	s.lateDone++
	s.mu.Unlock()
}

// skippedLate is the number of late files skipped since the start.
func (s *stats) skippedLate() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lateSkipped
}

func (s *stats) cdcPending(n int) {
	s.mu.Lock()
	s.cdc.FilesPending = int64(n)
	s.mu.Unlock()
	s.mCDCPending.Set(int64(n))
}

// lateFile counts a late file as it is found; skipped tells it is not
// processed (late_files: skip).
func (s *stats) lateFile(skipped bool) {
	s.mu.Lock()
	s.cdc.LateFiles++
	if skipped {
		s.lateSkipped++
	}
	v := s.cdc.LateFiles
	s.mu.Unlock()
	s.mCDCLate.Set(v)
}

// table is a copy of table i's statistics (not of every table's, as
// snapshot makes: a full load logs one table's at each table's end).
func (s *stats) table(i int) TableStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.tables[i]
}

// cdcStats is a copy of the CDC statistics, the lag refreshed.
func (s *stats) cdcStats() CDCStats {
	s.refreshLag()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cdc
}

func (s *stats) snapshot() Snapshot {
	s.refreshLag()
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{Label: s.label, Phase: s.phase, CDC: s.cdc}
	for _, t := range s.tables {
		snap.Tables = append(snap.Tables, *t)
	}
	return snap
}
