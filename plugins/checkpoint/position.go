// Package checkpoint holds the aws_s3_dms input's resumable position, a
// tracker that turns out-of-order acknowledgements into the highest
// contiguous acknowledged position, and durable stores for it (a local file
// written atomically, or one S3 object written with conditional requests).
// It does not import Benthos.
package checkpoint

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Phase of the migration a position belongs to. Full load sorts before CDC.
type Phase int

const (
	PhaseNone     Phase = 0
	PhaseFullLoad Phase = 1
	PhaseCDC      Phase = 2
)

// String is the dms_phase metadata value.
func (p Phase) String() string {
	switch p {
	case PhaseFullLoad:
		return "full-load"
	case PhaseCDC:
		return "cdc"
	}
	return "none"
}

// Position is where processing stands: the next unread row of one object.
type Position struct {
	Phase Phase `json:"phase"`
	// Seq is the table's index in the definition during the full load, and
	// the number of late CDC files processed so far during CDC (so that a
	// late file, processed after higher keys, still sorts after them).
	Seq  int    `json:"seq"`
	Key  string `json:"key"`
	ETag string `json:"etag,omitempty"`
	// Offset and Line are those of the next row to read in the (decompressed)
	// object; Done means the whole object is processed.
	Offset int64 `json:"offset"`
	Line   int64 `json:"line"`
	Done   bool  `json:"done,omitempty"`
}

// String renders the position for logs.
func (p Position) String() string {
	state := fmt.Sprintf("offset %d (line %d)", p.Offset, p.Line)
	if p.Done {
		state = "done"
	}
	return fmt.Sprintf("%s #%d %q %s", p.Phase, p.Seq, p.Key, state)
}

// SortKey renders a row position as a string whose byte order is the
// processing order of the whole run:
//
//	<phase digit>/<seq, 5 digits>/<escaped key> <offset, 20 digits>
//
// Phase 1 is the full load (seq = table index in the definition), phase 2 is
// CDC (seq = late files processed so far). The key is written as is, except
// that bytes 0x00-0x21 (controls, space and '!') become "!" plus two hex
// digits; every key byte is then greater than the space that ends it, so a
// key that is a prefix of another sorts first, as it does in S3's listing.
func SortKey(phase Phase, seq int, key string, offset int64) string {
	var b strings.Builder
	b.Grow(len(key) + 32)
	fmt.Fprintf(&b, "%d/%05d/", int(phase), seq)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c <= '!' {
			const hex = "0123456789abcdef"
			b.WriteByte('!')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	fmt.Fprintf(&b, " %020d", offset)
	return b.String()
}

// State is what a store persists.
type State struct {
	Version int `json:"version"`
	// Source names the data the input that wrote it reads ("s3://bucket"
	// or "directory <dir>"), to tell its checkpoints from those of other
	// data; "" in a checkpoint of before 2026-11-29.
	Source string `json:"source,omitempty"`
	// Position is the highest contiguous acknowledged position.
	Position Position `json:"position"`
	// CDCStartAfter is the key after which CDC starts when Position is still
	// in the full load (cdc_start: now records the newest key at first start).
	CDCStartAfter string `json:"cdc_start_after,omitempty"`
	// CDCStartSet tells that CDCStartAfter was decided (it may be "").
	CDCStartSet bool `json:"cdc_start_set,omitempty"`
	// CDCHighWater is the greatest CDC key processed (late files aside):
	// CDC listing continues after it.
	CDCHighWater string `json:"cdc_high_water,omitempty"`
	// LateDone lists late CDC files already processed (late_files: process).
	LateDone []string `json:"late_done,omitempty"`
	// CDCSeen records the CDC keys already listed, so that a late file that
	// appears while the input is stopped is still found at the next start.
	CDCSeen *Seen `json:"cdc_seen,omitempty"`
	// Figures are the statistics DMS shows per table, as of Position, so
	// that they go on from there after a restart.
	Figures *Figures `json:"figures,omitempty"`
	// Owner and Written fence concurrent writers (s3 store) and make every
	// write's content, hence its ETag, unique.
	Owner   string `json:"owner,omitempty"`
	Written int64  `json:"written,omitempty"`
	// Heartbeat is the Unix time in ms of the last write by Owner; Released
	// is set by a clean shutdown.
	Heartbeat int64 `json:"heartbeat,omitempty"`
	Released  bool  `json:"released,omitempty"`
}

// Seen is a bounded record of listed CDC objects: every object listed with a
// LastModified at or after Since (Unix milliseconds) has its key in Keys.
// An object found later below the high-water mark, with a LastModified at or
// after Since and not in Keys, was not there when the input listed: a late
// file. Older objects are beyond the record (it keeps the newest SeenCap).
type Seen struct {
	Since int64    `json:"since"`
	Keys  []string `json:"keys,omitempty"`
}

// SeenCap bounds Seen.Keys, to keep every checkpoint write small.
const SeenCap = 256

// SeenSet maintains a Seen record: Add keys as they are listed, Snapshot to
// store. Not safe for concurrent use.
type SeenSet struct {
	since int64
	keys  map[string]int64 // key -> LastModified (Unix ms)
	snap  *Seen
}

// NewSeenSet starts a record that covers everything (Since 0).
func NewSeenSet() *SeenSet { return &SeenSet{keys: map[string]int64{}} }

// Has reports whether key was recorded.
func (s *SeenSet) Has(key string) bool { _, ok := s.keys[key]; return ok }

// Covers reports whether an object modified at mod (Unix ms) is within the
// record: if it had been listed, Has would know it.
func (s *SeenSet) Covers(mod int64) bool { return mod >= s.since }

// Add records a listed object. When the record outgrows SeenCap, the oldest
// modification times are dropped (all keys of a time together) and Since
// moves past them.
func (s *SeenSet) Add(key string, mod int64) {
	if mod < s.since {
		return
	}
	if old, ok := s.keys[key]; ok && old == mod {
		return
	}
	s.keys[key] = mod
	s.snap = nil
	for len(s.keys) > SeenCap {
		oldest := int64(math.MaxInt64)
		for _, m := range s.keys {
			oldest = min(oldest, m)
		}
		for k, m := range s.keys {
			if m == oldest {
				delete(s.keys, k)
			}
		}
		s.since = oldest + 1
	}
}

// Snapshot returns the record as stored; the value is shared and must not be
// changed.
func (s *SeenSet) Snapshot() *Seen {
	if s.snap == nil {
		keys := make([]string, 0, len(s.keys))
		for k := range s.keys {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s.snap = &Seen{Since: s.since, Keys: keys}
	}
	return s.snap
}

// Covers reports whether an object (key, modified at mod, Unix ms) lies
// within the record, so that Contains tells whether it had been listed: it
// was modified at or after Since and, once the record has dropped older
// objects (Since > 0), its key does not sort before every key it kept. The
// record then holds the newest objects by modification time; a key sorting
// before all of them is most likely one of the dropped ones (CDC names grow
// with time) modified again, e.g. copied onto itself to be re-encrypted,
// which the record cannot tell from a new one.
func (s *Seen) Covers(key string, mod int64) bool {
	return mod >= s.Since && (s.Since == 0 || len(s.Keys) == 0 || key > s.Keys[0])
}

// Contains reports whether a stored record holds key.
func (s *Seen) Contains(key string) bool {
	i := sort.SearchStrings(s.Keys, key)
	return i < len(s.Keys) && s.Keys[i] == key
}

// Figures are the input's statistics at a position: full-load rows and times
// per table, and the CDC counts.
type Figures struct {
	Tables    []TableFigures `json:"tables,omitempty"`
	CDCRows   int64          `json:"cdc_rows,omitempty"`
	CDCFiles  int64          `json:"cdc_files,omitempty"`
	LateFiles int64          `json:"late_files,omitempty"`
	// NewestCDCFile is the LastModified of the newest CDC file processed
	// (Unix ms), for the lag.
	NewestCDCFile int64 `json:"newest_cdc_file,omitempty"`
}

// TableFigures are one table's full-load figures; times are Unix ms, 0 when
// not reached.
type TableFigures struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Rows   int64  `json:"rows"`
	Start  int64  `json:"start,omitempty"`
	End    int64  `json:"end,omitempty"`
	// Files and Bytes are the table's full-load files and bytes, stored
	// once it is completed (its load is then whole: done = total).
	Files int64 `json:"files,omitempty"`
	Bytes int64 `json:"bytes,omitempty"`
}
