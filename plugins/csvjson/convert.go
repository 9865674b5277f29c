package csvjson

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/dmscsv"
	"github.com/dmsbridge/dmsbridge/plugins/dmsjson"
	"github.com/dmsbridge/dmsbridge/plugins/internal/box"
	"github.com/dmsbridge/dmsbridge/plugins/internal/safetext"
	"github.com/dmsbridge/dmsbridge/plugins/tabledef"
)

type options struct {
	def                         *tabledef.Definition
	csv                         dmscsv.Settings
	defaultPhase                string
	pretty                      bool
	includeNull                 bool
	includePartitionValue       bool
	partitionIncludeSchemaTable bool
	includeTxn                  bool
	includeControl              bool
	render                      dmsjson.Options
	cdcPartitionKey             string
	taskID                      string
	prepMode                    string
	rules                       []*mappingRule
	maxWorkers                  int
}

// Operations, as indexes.
const (
	opLoad = iota
	opInsert
	opUpdate
	opDelete
	opDropTable
	opCreateTable
	numOps
)

var opNames = [numOps]string{"load", "insert", "update", "delete", "drop-table", "create-table"}

// Phases, as indexes.
const (
	phaseLoad = 0
	phaseCDC  = 1
)

// Metadata keys.
const (
	metaPhase        = "dms_phase"
	metaSchema       = "dms_schema"
	metaTable        = "dms_table"
	metaControl      = "dms_control"
	metaBucket       = "s3_bucket"
	metaKey          = "s3_key"
	metaLastModified = "s3_last_modified"
	metaLine         = "dms_line"
	metaPosition     = "dms_position"
	metaRedelivered  = "dms_redelivered"
	metaPartitionKey = "dms_partition_key"
	metaOperation    = "dms_operation"
)

// Error reasons (metric labels) beyond those of dmsjson and dmscsv.
const (
	reasonFieldCount  = "field_count"
	reasonUnknownTbl  = "unknown_table"
	reasonUnknownOp   = "unknown_operation"
	reasonNull        = "null_not_nullable"
	reasonBadMessage  = "bad_message"
	reasonMissingMeta = "missing_metadata"
)

type colPlan struct {
	r        *dmsjson.Column
	name     string
	key      []byte // `"Name":`
	ckey     []byte // `,"Name":`
	ckeyW    keyWords
	nullable bool
	inData   bool // written into data (not excluded or replaced)
}

// tablePlan is everything precomputed for one table.
type tablePlan struct {
	idx       int
	t         *tabledef.Table
	schema    string
	name      string
	schemaAny any
	nameAny   any
	cols      []colPlan
	pk        []int
	mapping   *tableMapping

	keyType     [2]keyKind // per phase
	constKey    [2]string  // per phase, when the key does not depend on the row
	constKeyAny [2]any
	constKeyB   [2][]byte
	keyPrefix   string // "schema.table." with partition_include_schema_table

	metaA [numOps][]byte // `,"record-type":...,"partition-key-type":"..."`
	metaB []byte         // `,"schema-name":"..","table-name":".."`
	// metaAB[op] is metaA[op], metaB and the closing braces: the whole
	// record after the timestamp when nothing goes between them.
	metaAB [numOps][]byte
	opAny  [numOps]any

	ctlKeyAny any
	tableDef  []byte // control.table-def object
}

type converter struct {
	o        options
	plans    []*tablePlan
	bySchema map[string]map[string]*tablePlan
	single   *tablePlan
	// applyExceptions is the plan of awsdms_apply_exceptions, for control
	// records at the start of CDC.
	applyExceptions *tablePlan
	now             func() time.Time
	// ruleTables[i] lists the tables (schema.table) that o.rules[i]
	// matches but an earlier rule maps; ruleMapped[i] those it maps, and
	// ruleExcluded[i] the (lower-case) exclude-columns found in them.
	ruleTables   [][]string
	ruleMapped   [][]string
	ruleExcluded []map[string]bool
}

func newConverter(o options) (*converter, error) {
	c := &converter{o: o, bySchema: map[string]map[string]*tablePlan{}, now: func() time.Time { return nowFunc() }}
	c.ruleTables, c.ruleMapped = make([][]string, len(o.rules)), make([][]string, len(o.rules))
	c.ruleExcluded = make([]map[string]bool, len(o.rules))
	for i, t := range o.def.Tables {
		p, err := c.plan(i, t)
		if err != nil {
			return nil, err
		}
		c.plans = append(c.plans, p)
		if c.bySchema[p.schema] == nil {
			c.bySchema[p.schema] = map[string]*tablePlan{}
		}
		c.bySchema[p.schema][p.name] = p
	}
	if len(c.plans) == 1 {
		c.single = c.plans[0]
	}
	// DMS's own control table: no object-mapping rule applies to it.
	noRules := *c
	noRules.o.rules = nil
	ae, err := noRules.plan(-1, &applyExceptionsTable)
	if err != nil {
		return nil, err
	}
	c.applyExceptions = ae
	return c, nil
}

// mappingWarnings describes the object-mapping rules that apply to no table
// of the definition, whose exclude-columns and partition keys do nothing,
// and the exclude-columns that name no column of the tables a rule maps.
func (c *converter) mappingWarnings() []string {
	var msgs []string
	for i, r := range c.o.rules {
		switch {
		case len(c.ruleMapped[i]) > 0:
			for _, name := range r.excludes {
				if !c.ruleExcluded[i][strings.ToLower(name)] {
					msgs = append(msgs, fmt.Sprintf("%s: exclude-columns %q names no column of the tables it maps (%s); it excludes nothing", r.where(), name, strings.Join(c.ruleMapped[i], ", ")))
				}
			}
		case len(c.ruleTables[i]) > 0:
			msgs = append(msgs, fmt.Sprintf("%s applies to no table: every table it matches (%s) is mapped by an earlier rule", r.where(), strings.Join(c.ruleTables[i], ", ")))
		default:
			msgs = append(msgs, fmt.Sprintf("%s matches no table of the table definition (schema-name %q, table-name %q); it is not applied", r.where(), r.schemaPat, r.tablePat))
		}
	}
	return msgs
}

// keyWords holds a key of up to 16 bytes as two words, so that appending it
// is two stores rather than a call to memmove: keys are written once per
// column per row, which made those calls about a tenth of a wide table's
// time.
type keyWords struct {
	w    [2]uint64
	n    int
	fits bool
}

func newKeyWords(k []byte) keyWords {
	var b [16]byte
	if len(k) > len(b) {
		return keyWords{n: len(k)}
	}
	copy(b[:], k)
	return keyWords{w: [2]uint64{binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:])}, n: len(k), fits: true}
}

// appendKey appends the key k (kw its words) to dst.
func appendKey(dst, k []byte, kw *keyWords) []byte {
	if n := len(dst); kw.fits && cap(dst)-n >= 16 {
		b := dst[n : n+16]
		binary.LittleEndian.PutUint64(b, kw.w[0])
		binary.LittleEndian.PutUint64(b[8:], kw.w[1])
		return dst[:n+kw.n]
	}
	return append(dst, k...)
}

func jsonKey(name string) []byte {
	b := dmsjson.AppendStringNoCheck(nil, name)
	return append(b, ':')
}

func (c *converter) plan(idx int, t *tabledef.Table) (*tablePlan, error) {
	p := &tablePlan{idx: idx, t: t, schema: t.Owner, name: t.Name, pk: t.PrimaryKey}
	p.schemaAny, p.nameAny = any(p.schema), any(p.name)
	for _, col := range t.Columns {
		ckey := append([]byte{','}, jsonKey(col.Name)...)
		p.cols = append(p.cols, colPlan{
			r: dmsjson.NewColumn(col, c.o.render), name: col.Name, key: jsonKey(col.Name),
			ckey: ckey, ckeyW: newKeyWords(ckey),
			nullable: col.Nullable, inData: true,
		})
	}
	for i, r := range c.o.rules {
		switch {
		case !r.matches(p.schema, p.name):
		case p.mapping != nil:
			c.ruleTables[i] = append(c.ruleTables[i], p.schema+"."+p.name)
		default:
			m, err := r.resolve(p)
			if err != nil {
				return nil, err
			}
			p.mapping = m
			c.ruleMapped[i] = append(c.ruleMapped[i], p.schema+"."+p.name)
			if c.ruleExcluded[i] == nil {
				c.ruleExcluded[i] = map[string]bool{}
			}
			for _, col := range p.cols {
				if name := strings.ToLower(col.name); r.exclude[name] {
					c.ruleExcluded[i][name] = true
				}
			}
		}
	}
	qualified := p.schema + "." + p.name
	for phase := range 2 {
		k := keyPrimary
		if phase == phaseCDC && c.o.cdcPartitionKey == "schema-table" {
			k = keySchemaTable
		}
		if p.mapping != nil && p.mapping.rule.keyType != keyDefault {
			k = p.mapping.rule.keyType
			if k == keyTransaction && phase == phaseLoad {
				k = keyPrimary
			}
		}
		if k == keyPrimary && len(p.pk) == 0 {
			k = keySchemaTable
		}
		p.keyType[phase] = k
		switch k {
		case keySchemaTable:
			p.constKey[phase] = kinesisKey(qualified, qualified)
		case keyConstant:
			p.constKey[phase] = kinesisKey(p.mapping.rule.keyValue, qualified)
		}
		if p.constKey[phase] != "" {
			p.constKeyAny[phase] = any(p.constKey[phase])
			p.constKeyB[phase] = []byte(p.constKey[phase])
		}
	}
	if c.o.partitionIncludeSchemaTable {
		p.keyPrefix = qualified + "."
	}
	for op := range numOps {
		var b []byte
		rt, kt := "data", ""
		if op >= opDropTable {
			rt, kt = "control", "task-id"
		} else {
			phase := phaseLoad
			if op != opLoad {
				phase = phaseCDC
			}
			kt = p.keyType[phase].String()
		}
		b = append(b, `,"record-type":`...)
		b = dmsjson.AppendStringNoCheck(b, rt)
		b = append(b, `,"operation":`...)
		b = dmsjson.AppendStringNoCheck(b, opNames[op])
		b = append(b, `,"partition-key-type":`...)
		b = dmsjson.AppendStringNoCheck(b, kt)
		p.metaA[op] = b
		p.opAny[op] = any(opNames[op])
	}
	p.metaB = append(p.metaB, `,"schema-name":`...)
	p.metaB = dmsjson.AppendStringNoCheck(p.metaB, p.schema)
	p.metaB = append(p.metaB, `,"table-name":`...)
	p.metaB = dmsjson.AppendStringNoCheck(p.metaB, p.name)
	for op := range numOps {
		p.metaAB[op] = append(append(append([]byte(nil), p.metaA[op]...), p.metaB...), '}', '}')
	}
	p.ctlKeyAny = any(kinesisKey(c.o.taskID+"."+qualified, c.o.taskID))
	p.tableDef = tableDefJSON(t)
	return p, nil
}

// table finds the plan of (schema, name) without allocating.
func (c *converter) table(schema, name []byte) *tablePlan {
	if m := c.bySchema[string(schema)]; m != nil {
		return m[string(name)]
	}
	return nil
}

type span struct {
	s, e int32
	null bool
}

type errKey struct{ schema, table, reason string }

type controlOut struct {
	msg *service.Message
	out []*service.Message
}

// worker holds the per-goroutine buffers. Not safe for concurrent use.
type worker struct {
	c      *converter
	sp     *dmscsv.Splitter
	ts     []byte // `"<timestamp>"`
	tsHead []byte // `,"metadata":{"timestamp":"<timestamp>"`
	slab   []byte // this batch's output; message bodies slice into it
	vals   []byte // rendered values of the current row (when not written in place)
	row    []byte // what spans index: w.vals, or the current record in slab
	spans  []span
	data   []dmscsv.Field // the current row's column fields
	tmp    []byte         // compact JSON before indentation
	scr    []byte         // template scratch
	bytes  int            // output bytes of the batch
	filled int            // bytes in the batch's earlier output buffers
	maxRow int            // the longest row's bytes (body and key) in the batch
	avg    int            // expected bytes per row
	rsv    int            // bytes kept free for the next row
	left   int            // rows left in the run, this one included

	rowCounts []int64
	errCounts map[errKey]int64
	firstBad  string // where the batch's first flagged row is (file and line)
	// truncated values per table and column (errKey.reason: the column),
	// and the first of the batch, told in full
	truncCounts map[errKey]int64
	firstTrunc  string
	controls    []controlOut

	boxes box.Boxer // interface values of the partition keys, without an allocation each
	meta  []routeMeta

	lastSchema, lastTable string
	lastPlan              *tablePlan

	txBucket, txKey string // of the cached txID
	txID            uint64
	modIn           string
	modOut          []byte
	lineBuf         []byte
}

func (c *converter) newWorker() *worker {
	sp := dmscsv.NewSplitter(c.o.csv)
	// A row needs at most operation, table, schema and the widest table's
	// columns; past one more the splitter only counts (a row of a million
	// delimiters is refused for its count without a slice of a million
	// fields).
	for _, p := range c.plans {
		sp.MaxFields = max(sp.MaxFields, 3+len(p.cols)+1)
	}
	return &worker{
		c: c, sp: sp,
		rowCounts:   make([]int64, len(c.plans)*numOps),
		errCounts:   map[errKey]int64{},
		truncCounts: map[errKey]int64{},
	}
}

// begin prepares the worker for a batch of n rows: a fresh output buffer
// (earlier batches' messages still reference the old one) for rows of avg
// bytes, keeping rsv bytes free for the next row, and the batch timestamp.
func (w *worker) begin(now time.Time, n, avg, rsv int) {
	w.avg, w.rsv = avg, rsv
	w.slab = uncleared(slabSize(n, avg, rsv))
	w.filled, w.maxRow = 0, 0
	w.ts = append(w.ts[:0], '"')
	w.ts = now.UTC().AppendFormat(w.ts, "2006-01-02T15:04:05.000000Z")
	w.ts = append(w.ts, '"')
	w.tsHead = append(append(w.tsHead[:0], `,"metadata":{"timestamp":`...), w.ts...)
	w.bytes = 0
}

// end clears the per-batch results and drops the reference to the batch's
// output buffer.
func (w *worker) end() {
	w.bytes = w.filled + len(w.slab)
	w.slab, w.row = nil, nil
	w.boxes = box.Boxer{} // the batch's messages own the chunks
}

// reset clears the per-batch results once they are reported.
func (w *worker) reset() {
	clear(w.rowCounts)
	clear(w.errCounts)
	w.firstBad = ""
	clear(w.truncCounts)
	w.firstTrunc = ""
	w.controls = w.controls[:0]
}

func metaString(m *service.Message, key string) (string, bool) {
	v, ok := m.MetaGetMut(key)
	if !ok {
		return "", false
	}
	return anyString(v)
}

// anyString is the text of a metadata value.
func anyString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case nil:
		return "", false
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), true
	default:
		return fmt.Sprint(x), true
	}
}

func metaInt(m *service.Message, key string) (int64, bool) {
	v, ok := m.MetaGetMut(key)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		return int64(x), true
	case float64:
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// location names the source of a message for error texts. The object is
// quoted, its control characters escaped, when its key holds any
// (safetext.Quote): a key is data, and must not forge a log line.
func location(m *service.Message) string {
	bucket, _ := metaString(m, metaBucket)
	key, _ := metaString(m, metaKey)
	var s string
	switch {
	case bucket != "" && key != "":
		s = safetext.Quote("s3://" + bucket + "/" + key)
	case key != "":
		s = safetext.Quote(key)
	default:
		s = "row"
	}
	if line, ok := metaString(m, metaLine); ok && line != "" {
		s += " line " + safetext.Quote(line)
	}
	return s
}

func quoteValue(v []byte) string {
	const max = 64
	if len(v) > max {
		return strconv.Quote(string(v[:max])) + "..."
	}
	return strconv.Quote(string(v))
}

func (w *worker) fail(m *service.Message, p *tablePlan, reason, text string) {
	var schema, table string
	where := location(m)
	if p != nil {
		schema, table = p.schema, p.name
		where += " table " + p.schema + "." + p.name
	}
	m.SetError(errors.New(where + text))
	w.errCounts[errKey{schema, table, reason}]++
	if w.firstBad == "" {
		w.firstBad = location(m)
	}
}

func isOp(v []byte) (int, bool) {
	switch len(v) {
	case 1:
		switch v[0] | 0x20 {
		case 'i':
			return opInsert, true
		case 'u':
			return opUpdate, true
		case 'd':
			return opDelete, true
		}
	case 6:
		switch {
		case lowerEq(v, "insert"):
			return opInsert, true
		case lowerEq(v, "update"):
			return opUpdate, true
		case lowerEq(v, "delete"):
			return opDelete, true
		}
	}
	return 0, false
}

func lowerEq(v []byte, s string) bool {
	if len(v) != len(s) {
		return false
	}
	for i := range v {
		if v[i]|0x20 != s[i] {
			return false
		}
	}
	return true
}

// routeMeta is the metadata that routes a row, read before the row is
// converted.
type routeMeta struct {
	phase, schema, table          any
	hasPhase, hasSchema, hasTable bool
}

// run converts a run of messages in place. The routing metadata of all of
// them is read first, in one loop of independent map look-ups: the
// messages' metadata maps are usually not in the CPU cache, and look-ups of
// several messages wait for memory together rather than one after another
// between conversions. Reading first changes nothing else: a row's
// conversion reads its metadata before writing any.
func (w *worker) run(msgs service.MessageBatch) {
	if cap(w.meta) < len(msgs) {
		w.meta = make([]routeMeta, len(msgs))
	}
	meta := w.meta[:len(msgs)]
	for i, m := range msgs {
		r := &meta[i]
		r.phase, r.hasPhase = m.MetaGetMut(metaPhase)
		r.schema, r.hasSchema = m.MetaGetMut(metaSchema)
		r.table, r.hasTable = m.MetaGetMut(metaTable)
	}
	for i, m := range msgs {
		w.left = len(msgs) - i
		w.process(m, &meta[i])
	}
	clear(meta) // keep no metadata values alive
}

// process converts one message in place, or flags it.
func (w *worker) process(m *service.Message, rm *routeMeta) {
	if m.GetError() != nil {
		// Flagged upstream (e.g. a row the input passed over as longer than
		// max_row_size): left as it is, error and bytes, for the dead letter.
		return
	}
	body, err := m.AsBytes()
	if err != nil {
		w.fail(m, nil, reasonBadMessage, fmt.Sprintf(": the message has no raw body: %v", err))
		return
	}
	if len(body) == 0 {
		if ctl, ok := metaString(m, metaControl); ok && ctl != "" {
			w.control(m, ctl)
			return
		}
	}
	fields, err := w.sp.Split(body)
	if err != nil {
		w.malformed(m, rm, body, fields, err)
		return
	}
	p, op, data, setNames := w.route(m, rm, fields)
	if p == nil {
		return
	}
	w.convert(m, p, op, data, setNames)
}

// malformed flags a row that is not well-formed CSV, naming its table when
// it is known (from the metadata, or from the CDC fields read before the
// bad one), the bad field, the line of the file it is on when that is not
// the row's first line (a quoted field may span lines), its value
// (truncated) and the rule.
func (w *worker) malformed(m *service.Message, rm *routeMeta, body []byte, fields []dmscsv.Field, err error) {
	var fe *dmscsv.FieldError
	if !errors.As(err, &fe) {
		w.fail(m, nil, "malformed_row", ": malformed CSV row: "+err.Error())
		return
	}
	c := w.c
	var p *tablePlan
	var phase string
	if rm.hasPhase {
		phase, _ = anyString(rm.phase)
	}
	if phase != "cdc" && rm.hasSchema && rm.hasTable {
		s, _ := anyString(rm.schema)
		t, _ := anyString(rm.table)
		p = c.bySchema[s][t]
	}
	if p == nil && phase != "full-load" && len(fields) >= 3 {
		if _, ok := isOp(fields[0].Value); ok {
			p = c.table(fields[2].Value, fields[1].Value)
		}
	}
	if p == nil && phase != "cdc" && !(rm.hasSchema && rm.hasTable) {
		p = c.single
	}
	var at string
	if nl := bytes.Count(body[:fe.Offset], []byte{'\n'}); nl > 0 {
		if line, ok := metaString(m, metaLine); ok {
			if n, perr := strconv.ParseInt(line, 10, 64); perr == nil {
				at = fmt.Sprintf(", line %d", n+int64(nl))
			}
		}
	}
	val := body[fe.Start:]
	if fe.Kind == dmscsv.ErrTextAfterQuote {
		// the field runs to the next delimiter
		if i := bytes.Index(body[fe.Offset:], []byte(c.o.csv.Delimiter)); i >= 0 {
			val = body[fe.Start : fe.Offset+i]
		}
	}
	w.fail(m, p, fe.Kind.Reason(), fmt.Sprintf(": malformed CSV row: field %d (byte %d of the row%s): %s; value %s", fe.Column, fe.Offset, at, fe.Kind, quoteValue(val)))
}

// route finds the table and operation of a row and the fields holding the
// column values. It flags the message and returns a nil plan on failure.
func (w *worker) route(m *service.Message, rm *routeMeta, fields []dmscsv.Field) (p *tablePlan, op int, data []dmscsv.Field, setNames bool) {
	c := w.c
	var phase string
	if rm.hasPhase {
		phase, _ = anyString(rm.phase)
	}
	var schemaMeta, tableMeta string
	var haveNames bool
	if phase != "cdc" && rm.hasSchema && rm.hasTable {
		s, ok1 := anyString(rm.schema)
		t, ok2 := anyString(rm.table)
		schemaMeta, tableMeta, haveNames = s, t, ok1 && ok2 && s != "" && t != ""
	}
	if phase == "" {
		phase = c.o.defaultPhase
		if phase == "auto" {
			switch {
			case haveNames:
				phase = "full-load"
			case len(fields) >= 3 && c.table(fields[2].Value, fields[1].Value) != nil:
				if _, ok := isOp(fields[0].Value); ok {
					phase = "cdc"
				} else {
					phase = "full-load"
				}
			default:
				phase = "full-load"
			}
		}
	}
	switch phase {
	case "cdc":
		if len(fields) < 3 {
			w.fail(m, nil, reasonFieldCount, fmt.Sprintf(": CDC row has %d fields, expected operation, table, schema and the columns", w.sp.NumFields()))
			return nil, 0, nil, false
		}
		p = c.table(fields[2].Value, fields[1].Value)
		if p == nil {
			w.fail(m, nil, reasonUnknownTbl, fmt.Sprintf(": unknown table: schema %s table %s (fields 3 and 2) is not in the table definition", quoteValue(fields[2].Value), quoteValue(fields[1].Value)))
			return nil, 0, nil, false
		}
		var ok bool
		if op, ok = isOp(fields[0].Value); !ok {
			w.fail(m, p, reasonUnknownOp, fmt.Sprintf(": %s is not a CDC operation (INSERT/I, UPDATE/U, DELETE/D in any case)", quoteValue(fields[0].Value)))
			return nil, 0, nil, false
		}
		if len(fields) != 3+len(p.cols) {
			w.fail(m, p, reasonFieldCount, fmt.Sprintf(": CDC row has %d fields, expected %d (operation, table, schema and %d columns)", w.sp.NumFields(), 3+len(p.cols), len(p.cols)))
			return nil, 0, nil, false
		}
		return p, op, fields[3:], true
	case "full-load":
		if haveNames {
			// rows of one file share their schema and table strings
			if w.lastPlan != nil && schemaMeta == w.lastSchema && tableMeta == w.lastTable {
				p = w.lastPlan
			} else {
				p = c.bySchema[schemaMeta][tableMeta]
				w.lastSchema, w.lastTable, w.lastPlan = schemaMeta, tableMeta, p
			}
			if p == nil {
				w.fail(m, nil, reasonUnknownTbl, fmt.Sprintf(": unknown table: schema %q table %q (dms_schema, dms_table metadata) is not in the table definition", schemaMeta, tableMeta))
				return nil, 0, nil, false
			}
		} else if c.single != nil {
			p, setNames = c.single, true
		} else {
			w.fail(m, nil, reasonMissingMeta, ": full-load row without dms_schema and dms_table metadata, and the table definition holds several tables")
			return nil, 0, nil, false
		}
		n := len(p.cols)
		switch len(fields) {
		case n:
			return p, opLoad, fields, setNames
		case n + 1:
			if o, ok := isOp(fields[0].Value); ok && o == opInsert {
				return p, opLoad, fields[1:], setNames
			}
			w.fail(m, p, reasonFieldCount, fmt.Sprintf(": full-load row has %d fields, expected %d; a leading operation column must be I or INSERT, not %s", w.sp.NumFields(), n, quoteValue(fields[0].Value)))
			return nil, 0, nil, false
		default:
			w.fail(m, p, reasonFieldCount, fmt.Sprintf(": full-load row has %d fields, expected %d (TableColumnsTotal) or %d with a leading I/INSERT column", w.sp.NumFields(), n, n+1))
			return nil, 0, nil, false
		}
	}
	w.fail(m, nil, reasonMissingMeta, fmt.Sprintf(": dms_phase %q is neither full-load nor cdc", phase))
	return nil, 0, nil, false
}

// convert renders the row and replaces the message body.
//
// A compact record of a table without object mapping (the common case) is
// written straight into the batch buffer: each value right after its key, so
// the data object is written once. Otherwise the values are rendered into
// w.vals first, and the data object is assembled from them.
func (w *worker) convert(m *service.Message, p *tablePlan, op int, data []dmscsv.Field, setNames bool) {
	if cap(w.slab)-len(w.slab) < w.rsv {
		w.newChunk()
	}
	rowStart := len(w.slab)
	if cap(w.spans) < len(p.cols) {
		w.spans = make([]span, len(p.cols))
	}
	w.spans = w.spans[:len(p.cols)]
	spans, cols := w.spans, p.cols
	data = data[:len(cols)]
	w.data = data
	direct := !w.c.o.pretty && p.mapping == nil
	var dst []byte
	bodyStart := 0
	if direct {
		// w.slab itself only moves on once the row is complete: a failing
		// row leaves nothing behind.
		dst = w.slab
		bodyStart = len(dst)
		dst = append(dst, `{"data":{`...)
	} else {
		dst = w.vals[:0]
	}
	inclNull, first := w.c.o.includeNull, true
	for i := range cols {
		col := &cols[i]
		f := &data[i]
		if f.Null {
			if !col.nullable {
				w.fail(m, p, reasonNull, " column "+col.name+": NULL in a column that is not nullable (ColumnNullable is false)")
				return
			}
			spans[i] = span{null: true}
			if direct && inclNull {
				if first {
					dst = append(dst, col.key...)
				} else {
					dst = append(dst, col.ckey...)
				}
				first = false
				dst = append(dst, "null"...)
			}
			continue
		}
		if direct {
			if first {
				dst = append(dst, col.key...)
			} else {
				dst = appendKey(dst, col.ckey, &col.ckeyW)
			}
			first = false
		}
		start := len(dst)
		var truncated bool
		var err error
		dst, truncated, err = col.r.Append(dst, f.Value)
		if err != nil {
			reason := dmsjson.ReasonBadValue
			var ve *dmsjson.ValueError
			if errors.As(err, &ve) {
				reason = ve.Reason
			}
			w.fail(m, p, reason, fmt.Sprintf(" column %s: %s is not a %s: %v", col.name, quoteValue(f.Value), col.r.Label(), err))
			return
		}
		if truncated {
			w.truncCounts[errKey{p.schema, p.name, col.name}]++
			if w.firstTrunc == "" {
				w.firstTrunc = fmt.Sprintf("%s table %s.%s column %s: value of %d bytes truncated to ColumnLength %d", location(m), p.schema, p.name, col.name, len(f.Value), col.r.Length)
			}
		}
		spans[i] = span{s: int32(start - bodyStart), e: int32(len(dst) - bodyStart)}
	}
	// The spans index w.row: the rendered values of this row. Bytes already
	// written are never changed, so w.row stays right even when a later
	// append moves dst.
	w.row = dst[bodyStart:]
	if !direct {
		w.vals = dst
	}
	phase := phaseLoad
	if op != opLoad {
		phase = phaseCDC
	}

	if direct {
		dst = append(dst, '}')
	} else {
		// The message, compact, into the slab (or tmp when indenting).
		dst = w.slab
		if w.c.o.pretty {
			dst = w.tmp[:0]
		}
		bodyStart = len(dst)
		dst = append(dst, `{"data":`...)
		dst = w.appendData(dst, p)
	}
	dst = append(dst, w.tsHead...)
	keyText, keyConst := w.partitionKey(m, p, phase)
	withValue := w.c.o.includePartitionValue && p.keyType[phase] != keySchemaTable
	// transaction-id is on every CDC record, as DMS writes it; the other
	// transaction details only with include_transaction_details.
	withTxn := phase == phaseCDC
	if !withValue && !withTxn {
		dst = append(dst, p.metaAB[op]...)
	} else {
		dst = append(dst, p.metaA[op]...)
		if withValue {
			dst = append(dst, `,"partition-key-value":`...)
			var err error
			if dst, err = dmsjson.AppendString(dst, keyText); err != nil {
				// not reached: key texts come from checked values
				w.fail(m, p, dmsjson.ReasonBadUTF8, " partition key: "+err.Error())
				return
			}
		}
		dst = append(dst, p.metaB...)
		if withTxn {
			dst = w.appendTxn(dst, m)
		}
		dst = append(dst, '}', '}')
	}
	if w.c.o.pretty {
		w.tmp = dst
		bodyStart = len(w.slab)
		w.slab = indent(w.slab, dst)
	} else {
		w.slab = append(dst, '\n') // json-unformatted: one line, newline-delimited
	}
	bodyEnd := len(w.slab)
	m.SetBytes(w.slab[bodyStart:bodyEnd:bodyEnd])

	if keyConst != nil {
		m.MetaSetMut(metaPartitionKey, keyConst)
	} else {
		ks := len(w.slab)
		w.slab = append(w.slab, keyText...)
		m.MetaSetMut(metaPartitionKey, w.boxes.String(unsafeString(w.slab[ks:len(w.slab):len(w.slab)])))
	}
	m.MetaSetMut(metaOperation, p.opAny[op])
	if setNames {
		m.MetaSetMut(metaSchema, p.schemaAny)
		m.MetaSetMut(metaTable, p.nameAny)
	}
	w.maxRow = max(w.maxRow, len(w.slab)-rowStart)
	w.rowCounts[p.idx*numOps+op]++
}

// newChunk starts a new output buffer for the rest of the run when the
// current one may not hold the next row. Rows never straddle buffers, and a
// buffer is only grown by append's copy when a row is longer than any of
// the previous batch.
func (w *worker) newChunk() {
	w.filled += len(w.slab)
	w.slab = uncleared(slabSize(max(w.left, 1), w.avg, w.rsv))
}

// uncleared returns an empty byte slice of capacity n whose memory is not
// cleared first, as make would: an output buffer is only ever read where it
// has been written, and clearing it cost about 4% of the processor's time on
// wide tables. strings.Builder.Grow is the standard library's way to such
// memory; the builder and its string are dropped at once, so the buffer has
// a single owner.
func uncleared(n int) []byte {
	var sb strings.Builder
	sb.Grow(n)
	sb.WriteByte(0)
	s := sb.String()
	return unsafe.Slice(unsafe.StringData(s), n)[:0]
}

// maxSlabRows bounds the part of an output buffer sized for the rows to
// come (n × avg): avg is the previous batch's, which may be one long row. A
// batch of one 1 MiB value (6 MiB once JSON escapes control characters)
// made the next batch of 500 short rows allocate 500 times that, 0.5 to 3
// GB kept alive as long as the batch's messages. Past the bound the batch
// goes on in further buffers (newChunk), which costs an allocation per 4
// MiB of output.
const maxSlabRows = 4 << 20

// slabSize is the capacity of an output buffer for n rows of about avg
// bytes, with rsv bytes kept free for the next row.
func slabSize(n, avg, rsv int) int {
	return min(n*avg, maxSlabRows) + rsv
}

// unsafeString makes a string of bytes that are never written again (a
// finished region of a batch buffer).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// appendData writes the data object.
func (w *worker) appendData(dst []byte, p *tablePlan) []byte {
	if p.mapping != nil {
		return w.appendMapped(dst, p)
	}
	return w.appendColumns(dst, p)
}

func (w *worker) appendColumns(dst []byte, p *tablePlan) []byte {
	dst = append(dst, '{')
	first := true
	inclNull := w.c.o.includeNull
	for i := range p.cols {
		col := &p.cols[i]
		if !col.inData {
			continue
		}
		sp := w.spans[i]
		if sp.null && !inclNull {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, col.key...)
		if sp.null {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, w.row[sp.s:sp.e]...)
		}
	}
	return append(dst, '}')
}

// colText is the text of column i for keys and templates: a string's own
// value (as kept: truncated like its data), otherwise the rendered value
// without JSON quotes; nil for NULL. It is valid UTF-8: the row's values
// were checked when rendered.
func (w *worker) colText(p *tablePlan, i int) []byte {
	sp := w.spans[i]
	if sp.null {
		return nil
	}
	if r := p.cols[i].r; r.IsString() {
		return r.Kept(w.data[i].Value)
	}
	v := w.row[sp.s:sp.e]
	if len(v) >= 2 && v[0] == '"' {
		v = v[1 : len(v)-1]
	}
	return v
}

// appendTxn writes the synthesised transaction-id of a CDC record and, with
// include_transaction_details, the other transaction details.
func (w *worker) appendTxn(dst []byte, m *service.Message) []byte {
	bucket, _ := metaString(m, metaBucket)
	key, _ := metaString(m, metaKey)
	if key != w.txKey || bucket != w.txBucket || w.txID == 0 {
		w.txBucket, w.txKey = bucket, key
		w.txID = txID(bucket, key)
	}
	dst = append(dst, `,"transaction-id":`...)
	dst = strconv.AppendUint(dst, w.txID, 10)
	if !w.c.o.includeTxn {
		return dst
	}
	line, hasLine := metaInt(m, metaLine)
	if hasLine {
		dst = append(dst, `,"transaction-record-id":`...)
		dst = strconv.AppendInt(dst, line, 10)
		if line > 1 {
			dst = append(dst, `,"prev-transaction-id":`...)
			dst = strconv.AppendUint(dst, w.txID, 10)
			dst = append(dst, `,"prev-transaction-record-id":`...)
			dst = strconv.AppendInt(dst, line-1, 10)
		}
	}
	if lm, ok := metaString(m, metaLastModified); ok && lm != "" {
		if lm != w.modIn {
			w.modIn = lm
			w.modOut = w.modOut[:0]
			if t, err := time.Parse(time.RFC3339Nano, lm); err == nil {
				w.modOut = t.UTC().AppendFormat(append(w.modOut, '"'), "2006-01-02T15:04:05.000000Z")
				w.modOut = append(w.modOut, '"')
			}
		}
		if len(w.modOut) > 0 {
			dst = append(dst, `,"commit-timestamp":`...)
			dst = append(dst, w.modOut...)
		}
	}
	dst = append(dst, `,"stream-position":`...)
	if pos, ok := metaString(m, metaPosition); ok && pos != "" {
		return dmsjson.AppendStringNoCheck(dst, pos)
	}
	w.lineBuf = w.lineBuf[:0]
	if bucket != "" {
		w.lineBuf = append(append(append(w.lineBuf, "s3://"...), bucket...), '/')
	}
	w.lineBuf = append(w.lineBuf, key...)
	if hasLine {
		w.lineBuf = strconv.AppendInt(append(w.lineBuf, ':'), line, 10)
	}
	out, err := dmsjson.AppendString(dst, w.lineBuf)
	if err != nil {
		return dmsjson.AppendStringNoCheck(dst, string(w.lineBuf))
	}
	return out
}

// txID is the 53-bit FNV-1a hash of s3://bucket/key (never 0).
func txID(bucket, key string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, s := range []string{"s3://", bucket, "/", key} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
	}
	h &= 1<<53 - 1
	if h == 0 {
		h = 1
	}
	return h
}
