package s3dms

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/checkpoint"
)

// errFinished tells that a full-load-only run has nothing more to read.
var errFinished = errors.New("full load finished")

func filepathHostname() (string, error) { return os.Hostname() }
func pid() int                          { return os.Getpid() }

// nextItem returns the next file (or control) to read. When blocking is
// false it returns false instead of waiting for the next CDC poll.
func (in *input) nextItem(ctx context.Context, blocking bool) (item, bool, error) {
	c := in.conf
	for {
		if in.finished {
			return item{}, false, errFinished
		}
		if in.phase == checkpoint.PhaseCDC && !in.cdcStarted {
			// Before any CDC file, also the one a restart resumes (queued
			// at Connect): startCDC counts it in its baseline and puts the
			// cdc-start signal ahead of it.
			if err := in.startCDC(ctx); err != nil {
				return item{}, false, err
			}
			continue
		}
		if len(in.queue) > 0 {
			it := in.queue[0]
			in.queue = in.queue[1:]
			if in.phase == checkpoint.PhaseCDC {
				in.stats.cdcPending(len(in.queue) + 1)
			}
			return it, true, nil
		}
		switch in.phase {
		case checkpoint.PhaseFullLoad:
			if in.tableIdx >= len(c.def.Tables) {
				if c.mode == "full-load" {
					in.finished = true
					in.stats.setPhase("finished")
					in.log.Infof("full load finished: %d tables (FULL_LOAD_ONLY_FINISHED)", len(c.def.Tables))
					continue
				}
				in.log.Infof("full load finished: %d tables; starting CDC", len(c.def.Tables))
				in.phase = checkpoint.PhaseCDC
				continue
			}
			if !in.tableReady {
				if err := in.listTable(ctx); err != nil {
					return item{}, false, err
				}
				in.tableReady = true
				continue
			}
			in.stats.tableState(in.tableIdx, StateCompleted)
			in.logProgress("completed")
			in.tableIdx++
			in.tableReady = false
		case checkpoint.PhaseCDC:
			now := time.Now()
			if !now.Before(in.nextLate) {
				if err := in.lateCheck(ctx); err != nil {
					return item{}, false, err
				}
				in.nextLate = now.Add(c.lateCheck)
				if len(in.queue) > 0 {
					continue
				}
			}
			if now.Before(in.nextPoll) {
				if !blocking {
					return item{}, false, nil
				}
				wait := time.Until(in.nextPoll)
				if l := time.Until(in.nextLate); l < wait {
					wait = l
				}
				if s, ok := in.store.(*checkpoint.S3); ok {
					// An idle tail notices the lease running out (ReadBatch
					// then reports the input not connected).
					l := time.Until(s.HeldUntil())
					if l <= 0 {
						return item{}, false, errLeaseLapsed
					}
					if l < wait {
						wait = l
					}
				}
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return item{}, false, ctx.Err()
				case <-in.wake:
					t.Stop()
					// a nack arrived: let ReadBatch redeliver first
					select {
					case in.wake <- struct{}{}:
					default:
					}
					return item{}, false, nil
				case <-t.C:
				}
				continue
			}
			if err := in.poll(ctx); err != nil {
				return item{}, false, err
			}
			in.nextPoll = time.Now().Add(c.poll)
		default:
			return item{}, false, errors.New("internal error: no phase")
		}
	}
}

// listTable lists the current table's files (all pages) and queues them.
func (in *input) listTable(ctx context.Context) error {
	c := in.conf
	idx := in.tableIdx
	t := c.def.Tables[idx]
	prefix := joinPrefix(c.folder, t.Path)
	var objs []object
	token := ""
	for {
		page, next, err := in.src.list(ctx, prefix, "", token)
		if err != nil {
			return err
		}
		for _, o := range page {
			if strings.HasSuffix(o.Key, "/") {
				continue // directory marker
			}
			objs = append(objs, o)
		}
		if next == "" {
			break
		}
		token = next
	}
	var filesTotal, bytesTotal, filesDone, bytesDone int64
	// The resume point and the queue change only once the table is
	// queued whole: a failure (the checkpointed object changed) leaves them
	// as they were, so that the next attempt resumes at the checkpoint again
	// rather than reading the table from its start, with a second
	// table-start.
	resume := in.resumeFL
	var queue []item
	if resume != nil && resume.Seq != idx {
		resume = nil
	}
	if resume == nil && c.emitTableStart {
		queue = append(queue, item{tableStart: true})
	}
	// The object the checkpoint is in the middle of, deleted since: queued
	// where it sorts, so that opening it reports it as a bad file (gone)
	// like one deleted between listing and reading, instead of passing over
	// the rest of its rows in silence.
	gone := resume != nil && resume.Key != "" && !resume.Done
	for _, o := range objs {
		if gone && o.Key == resume.Key {
			gone = false
		}
	}
	for _, o := range objs {
		if gone && o.Key > resume.Key {
			queue = append(queue, goneItem(*resume))
			filesTotal++ // counted done once reported
			gone = false
		}
		filesTotal++
		bytesTotal += o.Size
		switch {
		case resume != nil && o.Key < resume.Key:
			filesDone++
			bytesDone += o.Size
		case resume != nil && o.Key == resume.Key:
			it, ok, err := in.resumeItem(o, *resume)
			if err != nil {
				return err
			}
			if !ok {
				filesDone++
				bytesDone += o.Size
				continue
			}
			queue = append(queue, it)
		default:
			queue = append(queue, item{obj: o})
		}
	}
	if gone {
		queue = append(queue, goneItem(*resume))
		filesTotal++
	}
	in.resumeFL = nil
	in.queue = append(in.queue, queue...)
	in.stats.tableTotals(idx, filesTotal, bytesTotal, filesDone, bytesDone)
	in.stats.tableState(idx, StateFullLoad)
	in.stats.setPhase("full-load")
	in.nextProg = time.Now().Add(c.progressEvery)
	in.log.Infof("table %s: full load of %d files (%d bytes) under %q", t.QualifiedName(), filesTotal, bytesTotal, prefix)
	return nil
}

// goneItem is the object at checkpoint p, no longer listed: opening it
// fails as gone, and the input handles it as a bad file.
func goneItem(p checkpoint.Position) item {
	return item{obj: object{Key: p.Key, ETag: p.ETag}, offset: p.Offset, line: p.Line, resumed: true}
}

func (in *input) cdcPrefix() string { return joinPrefix(in.conf.folder, in.conf.cdcPath) }

func (in *input) startCDC(ctx context.Context) error {
	in.listAfter = in.hwm
	if in.cdcAfter > in.listAfter {
		in.listAfter = in.cdcAfter
	}
	for _, it := range in.queue { // a file being resumed
		if !it.late && it.obj.Key > in.listAfter {
			in.listAfter = it.obj.Key
		}
	}
	// Baseline for late-file detection: what exists now below the mark. A
	// file there that the previous run's record does not know, though it
	// covers its modification time, arrived while the input was stopped.
	in.known = map[string]bool{}
	in.seen = checkpoint.NewSeenSet()
	done := map[string]bool{}
	for _, k := range in.lateDone {
		done[k] = true
		in.known[k] = true
	}
	for _, it := range in.queue { // a file being resumed
		done[it.obj.Key] = true
	}
	var whileStopped []object
	listed := make(map[string]bool, len(in.lateDone))
	if err := in.listAll(ctx, func(o object) {
		if o.Key > in.listAfter {
			return
		}
		if done[o.Key] {
			listed[o.Key] = true
		}
		prev := in.prevSeen
		if prev != nil && !done[o.Key] && o.Key < in.listAfter && prev.Covers(o.Key, o.LastModified.UnixMilli()) && !prev.Contains(o.Key) {
			whileStopped = append(whileStopped, o)
			return
		}
		in.known[o.Key] = true
		in.seen.Add(o.Key, o.LastModified.UnixMilli())
	}); err != nil {
		return err
	}
	in.forgetLateDone(listed)
	in.reportLate(whileStopped, "found at this start: the run before never listed it (it appeared while the input was stopped, or after that run's last late-file check)")
	in.noteSeen()
	if in.conf.emitCDCStart {
		in.queue = append([]item{{cdcStart: true}}, in.queue...)
	}
	in.cdcStarted = true
	in.stats.setPhase("cdc")
	now := time.Now()
	in.nextPoll = now
	in.nextLate = now.Add(in.conf.lateCheck)
	in.log.Infof("CDC: tailing %q after %q every %s", in.cdcPrefix(), in.listAfter, in.conf.poll)
	in.nextProg = now.Add(in.conf.progressEvery)
	return nil
}

func (in *input) listAll(ctx context.Context, fn func(object)) error {
	token := ""
	for {
		page, next, err := in.src.list(ctx, in.cdcPrefix(), "", token)
		if err != nil {
			return err
		}
		for _, o := range page {
			if !strings.HasSuffix(o.Key, "/") {
				fn(o)
			}
		}
		if next == "" {
			return nil
		}
		token = next
	}
}

// poll lists the CDC folder after the mark and queues what is new.
func (in *input) poll(ctx context.Context) error {
	token := ""
	for {
		page, next, err := in.src.list(ctx, in.cdcPrefix(), in.listAfter, token)
		if err != nil {
			return err
		}
		for _, o := range page {
			if strings.HasSuffix(o.Key, "/") || o.Key <= in.listAfter {
				continue // a directory marker is no CDC file: it never moves the mark
			}
			in.queue = append(in.queue, item{obj: o})
			in.known[o.Key] = true
			in.seen.Add(o.Key, o.LastModified.UnixMilli())
			// the mark moves with what is queued, not only with what is done
			in.listAfter = o.Key
		}
		if next == "" {
			break
		}
		token = next
	}
	in.noteSeen()
	in.checkGrown()
	in.stats.cdcPending(len(in.queue))
	in.stats.refreshLag()
	in.maybeLogProgress()
	return nil
}

// lateCheck lists the whole CDC folder and reports (or queues) files that
// appeared below the mark since the last check. The known keys become those
// of the listing (up to the mark): a processed file removed from the folder
// (e.g. expired by a lifecycle rule) is forgotten, so that tailing keeps
// state for the files the folder holds, not for every file ever processed.
func (in *input) lateCheck(ctx context.Context) error {
	var late []object
	listed := make(map[string]bool, len(in.known))
	err := in.listAll(ctx, func(o object) {
		if o.Key > in.listAfter {
			return // not polled yet
		}
		if o.Key < in.listAfter && !in.known[o.Key] {
			late = append(late, o)
		}
		listed[o.Key] = true
	})
	if err != nil {
		return err
	}
	in.known = listed
	in.forgetLateDone(listed)
	in.reportLate(late, "")
	in.noteSeen()
	return nil
}

// forgetLateDone drops from the late files done those the listing of the
// whole folder no longer holds, as lateCheck forgets the other keys: the
// record is of the files the folder holds, so that it does not grow with
// every late file ever processed. The list is made anew: the states of
// batches not yet acknowledged refer to the old one.
func (in *input) forgetLateDone(listed map[string]bool) {
	kept := 0
	for _, k := range in.lateDone {
		if listed[k] {
			kept++
		}
	}
	if kept == len(in.lateDone) {
		return
	}
	keep := make([]string, 0, kept)
	for _, k := range in.lateDone {
		if listed[k] {
			keep = append(keep, k)
		}
	}
	in.lateDone = keep
}

// reportLate logs, counts and (late_files: process) queues late files. A
// skipped one joins the stored record of listed keys; a queued one does not
// until it is done (then LateDone has it), so that a crash before that finds
// it late again.
func (in *input) reportLate(late []object, when string) {
	if when != "" {
		when = ", " + when
	}
	for _, o := range late {
		in.known[o.Key] = true
		in.stats.lateFile(!in.conf.lateProcess)
		if in.conf.lateProcess {
			in.log.Warnf("late CDC file %s (sorts before %q, already processed%s): processing it now (late_files: process)", in.src.describe(o.Key), in.listAfter, when)
			in.queue = append(in.queue, item{obj: o, late: true})
			continue
		}
		in.seen.Add(o.Key, o.LastModified.UnixMilli())
		in.log.Warnf("late CDC file %s sorts before %q, already processed%s: skipped like DMS does (late_files: skip)", in.src.describe(o.Key), in.listAfter, when)
	}
}

// noteSeen publishes the record of listed CDC keys for the next checkpoint
// write.
func (in *input) noteSeen() {
	snap := in.seen.Snapshot()
	// Under in.mu, with the late files skipped so far: a save stores the
	// record and the count of skipped late files it holds together, so a
	// restart neither reports one again nor loses its count.
	skipped := in.stats.skippedLate()
	in.mu.Lock()
	if in.seenSnap.Swap(snap) != snap {
		in.dirty = true
	}
	if skipped != in.seenSkipped {
		in.seenSkipped = skipped
		in.dirty = true
	}
	in.mu.Unlock()
}

func (in *input) maybeLogProgress() {
	if time.Now().Before(in.nextProg) {
		return
	}
	if in.cdcStarted {
		in.nextProg = time.Now().Add(in.conf.progressEvery)
		in.logCDCProgress()
		return
	}
	if in.phase != checkpoint.PhaseFullLoad || in.tableIdx >= len(in.conf.def.Tables) || !in.tableReady {
		// Before the table is listed its totals are 0 of 0 bytes, which
		// would read as "100.0%" next to the listing's error.
		return
	}
	in.nextProg = time.Now().Add(in.conf.progressEvery)
	in.logProgress("in progress")
}

// logCDCProgress logs the CDC figures DMS users watch: files done and
// pending, late files and the lag behind the newest processed file.
func (in *input) logCDCProgress() {
	c := in.stats.cdcStats()
	newest := "none yet"
	if c.NewestFileTime != nil {
		newest = c.NewestFileTime.UTC().Format(time.RFC3339)
	}
	in.log.Infof("CDC: %d files processed, %d pending, %d late, %d rows; lag %.1fs (newest processed file last modified %s)",
		c.FilesProcessed, c.FilesPending, c.LateFiles, c.Rows, c.LagSeconds, newest)
}

func (in *input) logProgress(what string) {
	t := in.stats.table(in.tableIdx)
	pct := 100.0
	if t.BytesTotal > 0 {
		pct = 100 * float64(t.BytesDone) / float64(t.BytesTotal)
	}
	in.log.Infof("table %s.%s: full load %s %.1f%% (%d of %d bytes, %d of %d files, %d rows)", t.Schema, t.Table, what, pct, t.BytesDone, t.BytesTotal, t.FilesDone, t.FilesTotal, t.FullLoadRows)
}

// closeSaveTimeout bounds the last checkpoint write, at Close (request_timeout
// when shorter), well within Benthos' default shutdown_timeout of 20 s.
const closeSaveTimeout = 10 * time.Second

// Close saves the checkpoint (releasing an s3 claim) and stops.
func (in *input) Close(ctx context.Context) error {
	var err error
	in.closeOnce.Do(func() {
		in.mu.Lock()
		connected := in.connected
		in.connected = false
		in.mu.Unlock()
		if connected {
			// A save of the saver's still under way (S3 not answering
			// it) is given up: the save below writes the same state or a
			// newer one.
			in.bgCancel()
			close(in.saverStop)
			<-in.saverDone
			in.mu.Lock()
			if in.fatal == nil {
				st := *in.acked
				st.Released = true
				in.acked = &st
			}
			fenced := in.fatal != nil
			pos := in.acked.Position
			in.mu.Unlock()
			if !fenced {
				// Bounded: the engine's context has no deadline, and a store
				// that does not answer must not hold the stop (past
				// shutdown_timeout the process exits 1; a deleted stream
				// would keep its goroutines and its checkpoint key).
				sctx, cancel := context.WithTimeout(ctx, min(in.conf.requestTimeout, closeSaveTimeout))
				err = in.save(sctx)
				cancel()
				if err != nil {
					in.log.Errorf("saving checkpoint on close: %v", err)
				} else {
					// Where the next start resumes, said at the stop.
					in.log.Infof("aws_s3_dms stopped: checkpoint %s saved at %s", in.storeLabel(), pos)
				}
			}
		}
		in.closeCur(false)
		if in.releaseClaim != nil {
			in.releaseClaim()
		}
		in.stats.unregister()
		in.stats.closed()
		if in.bgCancel != nil {
			in.bgCancel()
		}
	})
	return err
}

// cacheStore keeps the checkpoint in a cache resource.
type cacheStore struct {
	res  *service.Resources
	name string
	key  string
}

func (c *cacheStore) String() string { return "cache " + c.name + " key " + c.key }

// ClaimID: a cache resource is shared by every stream of a streams-mode
// process, so two inputs on one cache and key are refused like two on one
// checkpoint file (see checkpoint.Claim).
func (c *cacheStore) ClaimID() string { return c.String() }

func (c *cacheStore) Load(ctx context.Context) (*checkpoint.State, error) {
	var b []byte
	var gerr error
	if err := c.res.AccessCache(ctx, c.name, func(ca service.Cache) { b, gerr = ca.Get(ctx, c.key) }); err != nil {
		return nil, err
	}
	if errors.Is(gerr, service.ErrKeyNotFound) {
		return nil, nil
	}
	if gerr != nil {
		return nil, gerr
	}
	return checkpoint.Decode(b, c.String())
}

func (c *cacheStore) Save(ctx context.Context, st *checkpoint.State) error {
	b, err := checkpoint.Encode(st)
	if err != nil {
		return err
	}
	var serr error
	if err := c.res.AccessCache(ctx, c.name, func(ca service.Cache) { serr = ca.Set(ctx, c.key, b, nil) }); err != nil {
		return err
	}
	return serr
}
