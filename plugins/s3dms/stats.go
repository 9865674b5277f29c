package s3dms

import (
	"fmt"
	"sync"
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

	mState, mRows, mBytesDone, mBytesTotal, mFilesDone, mFilesTotal *service.MetricGauge
	mCDCProcessed, mCDCPending, mCDCLate, mCDCRows                  *service.MetricGauge
	mLag                                                            *service.MetricGauge
	mStart, mEnd, mLastUpdate                                       *service.MetricGauge
	mLists, mBadFiles, mLongRows                                    *service.MetricCounter
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
		mLists:        m.NewCounter("dms_s3_list_requests"),
		mBadFiles:     m.NewCounter("dms_bad_files"),
		mLongRows:     m.NewCounter("dms_rows_too_long"),
	}
	// Exported at 0 from the start: an absent series reads as "no data",
	// not as "none happened", in dashboards and alerts.
	for _, c := range []*service.MetricCounter{s.mLists, s.mBadFiles, s.mLongRows} {
		c.Incr(0)
	}
	for _, g := range []*service.MetricGauge{s.mCDCProcessed, s.mCDCPending, s.mCDCLate, s.mCDCRows} {
		g.Set(0)
	}
	for _, t := range tables {
		s.tables = append(s.tables, &TableStats{Schema: t[0], Table: t[1], StateName: StateName(StateBeforeLoad)})
		s.mState.Set(StateBeforeLoad, t[0], t[1])
	}
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

// figures are the statistics to store with a checkpoint.
func (s *stats) figures() *checkpoint.Figures {
	ms := func(t *time.Time) int64 {
		if t == nil {
			return 0
		}
		return t.UnixMilli()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &checkpoint.Figures{CDCRows: s.cdc.Rows, CDCFiles: s.cdc.FilesProcessed, LateFiles: s.cdc.LateFiles,
		NewestCDCFile: ms(s.cdc.NewestFileTime), Tables: make([]checkpoint.TableFigures, len(s.tables))}
	for i, t := range s.tables {
		f.Tables[i] = checkpoint.TableFigures{Schema: t.Schema, Table: t.Table, Rows: t.FullLoadRows, Start: ms(t.FullLoadStart), End: ms(t.FullLoadFinish)}
	}
	return f
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
	if f != nil {
		byName := map[[2]string]checkpoint.TableFigures{}
		for _, t := range f.Tables {
			byName[[2]string{t.Schema, t.Table}] = t
		}
		for _, t := range s.tables {
			if tf, ok := byName[[2]string{t.Schema, t.Table}]; ok {
				t.FullLoadRows, t.FullLoadStart, t.FullLoadFinish = tf.Rows, at(tf.Start), at(tf.End)
			}
		}
		s.cdc.Rows, s.cdc.FilesProcessed, s.cdc.LateFiles, s.cdc.NewestFileTime = f.CDCRows, f.CDCFiles, f.LateFiles, at(f.NewestCDCFile)
	}
	for i, t := range s.tables {
		if i < completed {
			t.State = StateCompleted
			if t.FullLoadFinish == nil { // a checkpoint from before figures were stored
				now := time.Now().UTC()
				t.FullLoadFinish = &now
			}
		}
		t.StateName = StateName(t.State)
	}
	tables := make([]TableStats, len(s.tables))
	for i, t := range s.tables {
		tables[i] = *t
	}
	cdc := s.cdc
	s.mu.Unlock()
	for _, t := range tables {
		s.mState.Set(int64(t.State), t.Schema, t.Table)
		s.mRows.Set(t.FullLoadRows, t.Schema, t.Table)
		if t.FullLoadStart != nil {
			s.mStart.Set(t.FullLoadStart.Unix(), t.Schema, t.Table)
		}
		if t.FullLoadFinish != nil {
			s.mEnd.Set(t.FullLoadFinish.Unix(), t.Schema, t.Table)
		}
	}
	s.mCDCRows.Set(cdc.Rows)
	s.mCDCProcessed.Set(cdc.FilesProcessed)
	s.mCDCLate.Set(cdc.LateFiles)
}

func (s *stats) unregister() {
	registryMu.Lock()
	if registry[s.label] == s {
		delete(registry, s.label)
	}
	registryMu.Unlock()
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
	}
	if state == StateCompleted {
		t.FullLoadFinish = &now
		s.mEnd.Set(now.Unix(), t.Schema, t.Table)
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
	if s.cdc.NewestFileTime == nil || lastModified.After(*s.cdc.NewestFileTime) {
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
		lag = time.Since(*s.cdc.NewestFileTime).Seconds()
	}
	s.cdc.LagSeconds = lag
	s.mu.Unlock()
	s.mLag.Set(int64(lag))
}

func (s *stats) cdcPending(n int) {
	s.mu.Lock()
	s.cdc.FilesPending = int64(n)
	s.mu.Unlock()
	s.mCDCPending.Set(int64(n))
}

func (s *stats) lateFile() {
	s.mu.Lock()
	s.cdc.LateFiles++
	v := s.cdc.LateFiles
	s.mu.Unlock()
	s.mCDCLate.Set(v)
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
