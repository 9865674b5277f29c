// Package csvjson provides the dms_csv_to_json processor: one DMS CSV row in,
// the exact JSON record AWS DMS writes to Kinesis out.
package csvjson

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/dmscsv"
	"github.com/dmsbridge/dmsbridge/plugins/internal/lintcheck"
	"github.com/dmsbridge/dmsbridge/plugins/tabledef"
)

const (
	fTableDef        = "table_definition"
	fDelimiter       = "csv_delimiter"
	fRowDelimiter    = "csv_row_delimiter"
	fNullValue       = "csv_null_value"
	fRFC4180         = "rfc4180"
	fDefaultPhase    = "default_phase"
	fMessageFormat   = "message_format"
	fIncludeNull     = "include_null_and_empty"
	fIncludePartVal  = "include_partition_value"
	fPartInclSchema  = "partition_include_schema_table"
	fIncludeTxn      = "include_transaction_details"
	fIncludeControl  = "include_control_details"
	fNoHexPrefix     = "no_hex_prefix"
	fLargeInt        = "use_large_integer_value"
	fNumericAsString = "numeric_as_string"
	fTruncation      = "truncation_policy"
	fCDCPartitionKey = "cdc_partition_key"
	fTaskID          = "task_id"
	fPrepMode        = "target_table_prep_mode"
	fTableMappings   = "table_mappings"
	fMaxWorkers      = "max_workers"
)

const description = `
Turns one AWS DMS S3-source CSV row (the body of a message from the ` + "`aws_s3_dms`" + ` input)
into exactly the JSON record AWS DMS writes to a Kinesis data stream, so that consumers
written for DMS work unchanged. The JSON bytes are built directly from the table definition
(ordered keys, typed values) and replace the message body; the metadata of the input is kept.

### Input

The body is one CSV row without its row delimiter. Metadata read: ` + "`dms_phase`" + ` (` + "`full-load`" + ` or
` + "`cdc`" + `), ` + "`dms_schema`" + ` and ` + "`dms_table`" + ` (full load), ` + "`s3_bucket`" + `, ` + "`s3_key`" + `, ` + "`dms_line`" + `,
` + "`dms_offset`" + `, ` + "`dms_position`" + `, ` + "`s3_last_modified`" + ` (strings or integers are both accepted).

- Full-load rows hold the table's columns in ` + "`TableColumns`" + ` order. An optional leading
  operation column (TableColumnsTotal+1 fields, the first one ` + "`I`" + ` or ` + "`INSERT`" + ` in any case) is
  accepted and dropped.
- CDC rows are ` + "`operation,table,schema,columns...`" + ` with INSERT/I, UPDATE/U, DELETE/D in any case.
  Each row is routed to its own table by (schema, table), so one CDC file may mix tables.
- Without ` + "`dms_phase`" + ` (the processor used on its own) ` + "`default_phase`" + ` decides. With ` + "`auto`" + `: rows
  that carry ` + "`dms_schema`" + ` and ` + "`dms_table`" + ` metadata are full-load rows; otherwise a row whose
  first field is an operation and whose second and third fields name a defined table, with
  3 + TableColumnsTotal fields, is a CDC row; otherwise, when the definition holds exactly one
  table, the row is a full-load row of that table.
- An EMPTY body with metadata ` + "`dms_control: table-start`" + ` (sent by the input when a table's full load
  starts) becomes the DMS control records selected by ` + "`target_table_prep_mode`" + `: ` + "`drop-and-create`" + `
  emits a ` + "`drop-table`" + ` then a ` + "`create-table`" + ` record, ` + "`truncate`" + ` emits a ` + "`create-table`" + ` record
  only (Kinesis has no truncate control record), and ` + "`do-nothing`" + ` drops the signal.
- An EMPTY body with metadata ` + "`dms_control: cdc-start`" + ` (sent by the input, with its ` + "`emit_cdc_start`" + `, when
  the CDC phase starts) becomes what a DMS CDC task writes when it starts: a ` + "`create-table`" + ` record for
  DMS's ` + "`awsdms_apply_exceptions`" + ` table (schema ` + "`\"\"`" + `; columns TASK_NAME, TABLE_OWNER, TABLE_NAME
  STRING(128), ERROR_TIME TIMESTAMP, STATEMENT and ERROR STRING, all not nullable; partition key
  ` + "`task_id..awsdms_apply_exceptions`" + `), then one ` + "`create-table`" + ` per table of the definition, in order.
  Decision ([UNCONFIRMED] in DMS): they are written at every start of the CDC phase, restarts included;
  consumers treat create-table as idempotent.

### Output

` + "`{\"data\":{...},\"metadata\":{...}}`" + `: ` + "`data`" + ` keys are the ColumnName values in table column order;
` + "`metadata`" + ` holds, in this order, ` + "`timestamp`" + `, ` + "`record-type`" + ` (` + "`data`" + `), ` + "`operation`" + ` (` + "`load`" + `,
` + "`insert`" + `, ` + "`update`" + `, ` + "`delete`" + `), ` + "`partition-key-type`" + `, ` + "`partition-key-value`" + ` (with
` + "`include_partition_value`" + `, not for schema-table keys), ` + "`schema-name`" + `, ` + "`table-name`" + ` and, on CDC
records, ` + "`transaction-id`" + ` (always, as DMS writes it on CDC records even without IncludeTransactionDetails)
followed, with ` + "`include_transaction_details`" + `, by ` + "`transaction-record-id`" + `,
` + "`prev-transaction-id`" + `, ` + "`prev-transaction-record-id`" + `, ` + "`commit-timestamp`" + `, ` + "`stream-position`" + `.

Metadata set on the message: ` + "`dms_partition_key`" + ` (the Kinesis partition key, used by the
` + "`aws_kinesis_streams`" + ` output by default), ` + "`dms_operation`" + `, and ` + "`dms_schema`" + `/` + "`dms_table`" + ` when the
input did not set them (CDC).

### Decisions where DMS is not documented

- ` + "`timestamp`" + ` is the processing time (UTC, microseconds), taken once per batch (tests replace the clock).
- S3 sources have no transactions. The transaction details are synthesised from the source
  position, deterministically: ` + "`transaction-id`" + ` is a 53-bit FNV-1a hash of ` + "`s3://bucket/key`" + `
  (one transaction per CDC file; 53 bits so JavaScript consumers read it exactly);
  ` + "`transaction-record-id`" + ` is the row's 1-based line in the file; ` + "`prev-transaction-id`" + ` and
  ` + "`prev-transaction-record-id`" + ` name the previous line of the same file (absent on line 1);
  ` + "`commit-timestamp`" + ` is the object's S3 LastModified (absent when unknown); ` + "`stream-position`" + ` is
  ` + "`dms_position`" + ` or, without it, ` + "`s3://bucket/key:line`" + `. ` + "`transaction-id`" + ` is on every CDC
  record (real DMS captures carry it without the other details); the rest needs
  ` + "`include_transaction_details`" + `. Load records carry no transaction details.
- Partition keys: full load uses the primary key; CDC uses ` + "`schema.table`" + ` (no task id prefix),
  or the primary key with ` + "`cdc_partition_key: primary-key`" + ` (DMS's ParallelApply behaviour). A
  composite primary key joins its values, in column order, with ` + "`.`" + `; with
  ` + "`partition_include_schema_table`" + ` the key is ` + "`schema.table.pk`" + `. Key values are the rendered
  values without JSON quotes (strings as given, DATETIME as ` + "`2024-01-02T03:04:05Z`" + `). A table
  without a primary key uses the schema-table key. An empty key (with a composite primary key: every part
empty) becomes ` + "`schema.table`" + ` and a key
  longer than Kinesis's 256 characters is cut to 256 characters (counted as Kinesis counts them, in UTF-16
  code units: an emoji counts two, and is never cut in half). Control records use
  ` + "`task_id.schema.table`" + ` (partition-key-type ` + "`task-id`" + `, partition-key-value ` + "`task_id`" + `).
- ` + "`include_null_and_empty: false`" + ` omits NULL columns only; an empty string is data and is kept.
- A quoted empty field (` + "`\"\"`" + `) is an empty string, never NULL; a quoted field is never NULL. With
  ` + "`csv_null_value`" + ` set, an empty field is an empty string: a zero-length value in a BYTE/BLOB
  column (` + "`\"0x\"`" + `), an error in a column of any other non-string type.
- A NULL in a column that is not ColumnNullable is an error (ColumnNullable defaults to false as
  in DMS; mark nullable columns in the definition). ColumnLength 0 means no length limit.
- Value rendering: integers exact; NUMERIC exact with exactly ColumnScale fractional digits, too
  many digits are errors (never rounded); REAL shortest round-trip; DATETIME
  ` + "`YYYY-MM-DDTHH:MM:SS[.f]Z`" + ` and TIME ` + "`HH:MM:SS[.f]`" + ` with the fraction truncated to ColumnScale
  digits and omitted when zero; DATE ` + "`YYYY-MM-DD`" + `; BOOLEAN true/false; BYTE/BLOB ` + "`0x`" + ` + upper-case
  hex (an input ` + "`0x`" + ` is accepted); strings UTF-8 checked.
- ` + "`message_format: json`" + ` is pretty-printed with tab indentation and ` + "`\": \"`" + ` separators;
  ` + "`json-unformatted`" + ` is one line followed by a newline.
- Control records without ` + "`include_control_details`" + ` have no ` + "`control`" + ` key (as in a real DMS capture);
  with it, ` + "`drop-table`" + ` has ` + "`\"control\":{}`" + ` and ` + "`create-table`" + ` a ` + "`table-def`" + ` whose column types use
  DMS's table-def names (INT8 -> INT64, DATETIME -> TIMESTAMP, ...).
- Object mapping: the first ` + "`object-mapping`" + ` rule (by rule-id) whose object-locator matches applies
  ([UNCONFIRMED] which rule DMS applies when several match). schema-name and table-name are matched
  case-sensitively with DMS's wildcards: ` + "`%`" + ` any run of characters, ` + "`_`" + ` one character, ` + "`[_]`" + ` a
  literal underscore, ` + "`[ab]`" + ` a set, ` + "`[a-d]`" + ` a range (so ` + "`order_items`" + ` also matches ` + "`orderXitems`" + `,
  as in DMS; write ` + "`order[_]items`" + ` for the one table). A rule that applies to no table (it matches
  none of the table definition, or every table it matches is mapped by an earlier rule) is not
  an error, as one table mapping may serve several tasks ([UNCONFIRMED] in DMS), but the start
  logs a warning naming it: its ` + "`exclude-columns`" + ` and partition key do nothing. It also
  warns about an ` + "`exclude-columns`" + ` entry that names no column of the tables its rule maps (it keeps
  nothing out). Template column names (` + "`${col}`" + `) and ` + "`exclude-columns`" + ` match case-insensitively;
  a NULL renders as an empty string. map-record-to-record writes the non-excluded columns then
  the mapped attributes (an attribute named like a column replaces it); map-record-to-document
  writes the attributes then ` + "`_doc`" + ` holding the non-excluded columns. A rule that maps one attribute
  name twice, or (map-record-to-document) an attribute named ` + "`_doc`" + `, is a configuration error: it
  would write a duplicate key. ` + "`partition-key-name`" + ` may be written in DMS's ` + "`${AttributeName}`" + ` form
  (` + "`${LastName}`" + ` names LastName). A mapping parameter of the wrong shape (e.g. ` + "`exclude-columns`" + ` not
  a list) is a configuration error, never ignored, and so is a constant ` + "`partition-key.value`" + ` holding ` + "`${`" + `
  (templates are not expanded there; use ` + "`attribute-name`" + ` for a key per row). Other rule types are ignored.
- Settings changed between two runs (the table definition, ` + "`table_mappings`" + `, the partition-key settings) apply
  to every row converted after the restart, those the input repeats included (after a crash, the rows acknowledged
  since the last saved checkpoint and those in flight; after a clean stop, which drains the pipeline and saves
  the checkpoint, none). Records already written are never rewritten, so a repeated row may be written twice,
  typed, shaped or keyed differently. With another partition key its two copies may land in different shards,
  and Kinesis orders records per shard only: a consumer may read the older copy after the newer one. Change
  partition-key settings (and object-mapping partition keys) at a clean stop, not when restarting an instance
  that crashed or was killed. A column added to or removed from a table leaves the rows of files written before
  with the old field count: they are flagged (wrong field count), not fitted to the new columns; a column retyped
  types every row converted afterwards with the new type, flagging the values it does not accept.

### Configuration checks

Every setting is checked when the config is linted (` + "`dmsbridge lint`" + `, the lint ` + "`run`" + ` does before
starting, and the streams API's POST/PUT), with the error the start would give, naming the field; the
lint reads ` + "`table_definition`" + ` and ` + "`table_mappings`" + ` files relative to the working directory, as the
start does. The options of ` + "`default_phase`" + `, ` + "`message_format`" + `, ` + "`truncation_policy`" + ` and
` + "`cdc_partition_key`" + ` are read in any case, as Benthos' lint compares them; any other value is refused
naming the field, also under ` + "`run --chilled`" + `.
One mistake escapes the lint: a scalar of the wrong type (` + "`max_workers: many`" + `, ` + "`rfc4180: maybe`" + `). Benthos' lint checks only that a
scalar field holds a scalar, and skips a component's checks altogether when one of its fields does not
decode, so such a config lints clean (and hides the component's other mistakes); the start refuses it,
naming the field. In streams mode the API's POST/PUT lets it through, and the build fails after the
stream's input has started.

### Errors

A bad row (wrong field count, bad value for its type, overflow, unknown table, unknown operation,
NULL in a non-nullable column, bad UTF-8, over-long value, unterminated quote) keeps its original
body and metadata and is flagged with an error naming the file, line, table, column, the value
(truncated) and the rule, e.g.
` + "`s3://bucket/key line 12 table schema01.table01 column value: \"12a.5\" is not a NUMERIC(5,2): not a decimal number ...`" + `.
An object key holding a control character (a line break, a terminal escape) or a character that is not
printable is written quoted and escaped there, as in ` + "`\"s3://bucket/cdc\\nx\" line 3 ...`" + `, and so is the
value: a key or a row cannot forge a log line or drive the terminal of whoever reads the log.
Route such rows to a dead-letter output with ` + "`reject_errored`" + ` inside a ` + "`fallback`" + ` (see
config/dead-letter.yaml); the pipeline goes on. A message that arrives already flagged with an error (e.g. a
row the input passed over as longer than its ` + "`max_row_size`" + `) is left untouched, error and bytes, and not
counted here. Metrics: ` + "`dms_csv_to_json_rows`" + ` (labels schema, table, operation) and
` + "`dms_csv_to_json_errors`" + ` (labels schema, table, reason). A batch that ` + "`aws_s3_dms`" + ` delivers again after a nack
(its first message carries ` + "`dms_redelivered`" + ` metadata) is converted again but neither counted nor reported as
bad rows again: the figures count each row read once.

Bad rows are never silent in the log either (DMS logs nothing for an invalid CSV row): the first
flagged row is reported at once in a warning that gives the count per table and reason and where the
first one is (file and line, not the row's values), and later ones are counted and reported together
at most every 10 seconds (once 10 seconds have passed since the last warning, even if no further bad row
comes), and at close, e.g.
` + "`3 rows flagged as bad (schema01.table01 bad_value 2, schema01.table01 field_count 1), the first at s3://bucket/cdcfile/cdc_001 line 7; ...`" + `.

### Performance

Per-table plans are built once. A batch is converted into a freshly allocated buffer, sized
from the rows of earlier batches, that the message bodies slice into (a new one is started
rather than grown when rows are longer than before), so the conversion makes well under one
allocation per row. A buffer is sized for at most 4 MiB of rows plus the longest row of the batch
before, so that a batch after one long row (a 1 MiB value, six times that once JSON escapes control
characters) does not reserve that row's size for each of its rows. A row is split into at most one
field more than the widest table needs; further fields are only counted, so a row of a million
delimiters is refused for its field count without memory per field. Common value shapes (ISO timestamps, short decimals, plain ASCII strings)
are rendered by fast paths that give the same bytes as the general parser.
Batches of at least 1024 rows are spread over ` + "`max_workers`" + ` goroutines; output order always
equals input order.
`

func processorSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Parsing").
		Summary("Turns a DMS CSV row into the JSON record AWS DMS writes to Kinesis.").
		Description(description).
		LintRule(lintcheck.Rule("dms_csv_to_json", processorSpec, lintConf)).
		Fields(
			service.NewAnyField(fTableDef).
				Description("The DMS external table definition: a file path, inline JSON, or the definition's object (TableCount, Tables, ...)."),
			service.NewStringField(fDelimiter).Default(",").
				Description("CsvDelimiter: the field delimiter (escapes such as `\\t` are understood)."),
			service.NewStringField(fRowDelimiter).Default("\\n").
				Description("CsvRowDelimiter: `\\n` or `\\r\\n`. Rows arrive without it; it matters for quoted fields only."),
			service.NewStringField(fNullValue).Optional().
				Description("CsvNullValue. Unset: an empty field is NULL. Set: a field equal to this marker is NULL and an empty field is an empty string. Refused at start when it can never match an unquoted field (it holds csv_delimiter or a row delimiter, or, with rfc4180, starts with a double quote)."),
			service.NewBoolField(fRFC4180).Default(true).
				Description("Rfc4180. true: quoted fields may hold delimiters, row delimiters and doubled quotes. false: quotes are data."),
			service.NewStringEnumField(fDefaultPhase, "auto", "full-load", "cdc").Default("auto").Advanced().
				Description("The phase of rows that carry no `dms_phase` metadata (see the description)."),
			service.NewStringEnumField(fMessageFormat, "json", "json-unformatted").Default("json").
				Description("MessageFormat: `json` (indented) or `json-unformatted` (one line ending in a newline)."),
			service.NewBoolField(fIncludeNull).Default(false).
				Description("IncludeNullAndEmpty: write NULL columns as `null`. When false NULL columns are omitted."),
			service.NewBoolField(fIncludePartVal).Default(false).
				Description("IncludePartitionValue: add `partition-key-value` to the metadata unless the key type is schema-table."),
			service.NewBoolField(fPartInclSchema).Default(false).
				Description("PartitionIncludeSchemaTable: prefix primary-key partition values with `schema.table.`."),
			service.NewBoolField(fIncludeTxn).Default(false).
				Description("IncludeTransactionDetails: add the synthesised transaction details (transaction-record-id, prev-transaction-id, prev-transaction-record-id, commit-timestamp, stream-position) to CDC records. `transaction-id` is on every CDC record either way, as in DMS."),
			service.NewBoolField(fIncludeControl).Default(false).
				Description("IncludeControlDetails: add `control.table-def` to create-table control records."),
			service.NewBoolField(fNoHexPrefix).Default(false).
				Description("NoHexPrefix: render BYTE/BLOB values without the `0x` prefix."),
			service.NewBoolField(fLargeInt).Default(true).
				Description("UseLargeIntegerValue. true (dmsbridge default): integers keep all digits. false: reproduce DMS, which writes integers of more than 16 digits through a double in scientific notation."),
			service.NewBoolField(fNumericAsString).Default(false).
				Description("Render NUMERIC values as JSON strings instead of numbers."),
			service.NewStringEnumField(fTruncation, "error", "truncate").Default("error").
				Description("What to do with STRING/CLOB/BYTE/BLOB values longer than ColumnLength: `error` flags the row, `truncate` cuts the value (on a UTF-8 boundary) and logs a warning, like flagged rows: the first at once, naming where it is, later ones counted per column and reported together at most every 10 seconds (even if no further value is cut), and at close (`20 values truncated to ColumnLength (app.t column note 20), the first: ...`); partition keys and `${column}` templates use the value as cut, like the record's data, and invalid UTF-8 in the part cut off still flags the row."),
			service.NewStringEnumField(fCDCPartitionKey, "schema-table", "primary-key").Default("schema-table").
				Description("Partition key of CDC records: `schema-table` (DMS default) or `primary-key` (DMS with ParallelApply)."),
			service.NewStringField(fTaskID).Default("dmsbridge").
				Description("The task identifier used in control-record partition keys (`task_id.schema.table`)."),
			service.NewStringField(fPrepMode).Default("drop-and-create").
				Description("TargetTablePrepMode: `drop-and-create` (drop-table + create-table control records when a table's full load starts), `truncate` (create-table only) or `do-nothing` (no control records). DMS spellings (DROP_AND_CREATE, TRUNCATE_BEFORE_LOAD, DO_NOTHING) are accepted."),
			service.NewAnyField(fTableMappings).Optional().
				Description("DMS table mappings holding `object-mapping` rules: the table-mapping document (`{\"rules\":[...]}`), its rules list, or a file path to either. null: none."),
			service.NewIntField(fMaxWorkers).Default(0).Advanced().
				Description("Goroutines used for batches of 1024 rows or more; 0 means one per CPU, 1 disables spreading."),
		).
		Example("Reference table", "Convert the rows of the aws_s3_dms input for Kinesis.", `
pipeline:
  processors:
    - dms_csv_to_json:
        table_definition: config/table-definition.json
        message_format: json-unformatted
`)
}

func init() {
	service.MustRegisterBatchProcessor("dms_csv_to_json", processorSpec(), func(conf *service.ParsedConfig, res *service.Resources) (service.BatchProcessor, error) {
		return newProcessor(conf, res)
	})
}

// Processor is the dms_csv_to_json batch processor.
type Processor struct {
	c *converter

	log     *service.Logger
	rowsCtr *service.MetricCounter
	errsCtr *service.MetricCounter
	lastUpd *service.MetricGauge
	workers int
	pool    sync.Pool
	slabAvg int // bytes per row of the last batch, with a little slack
	slabRsv int // room kept free for the next row (see worker.newChunk)
	mu      sync.Mutex

	bad   badRows
	trunc truncLog
}

// badLogInterval is the shortest time between two warnings about flagged
// rows: the first flagged row is logged at once, the next ones are counted
// and logged together.
var badLogInterval = 10 * time.Second

// badRows gathers the flagged rows between two warnings.
type badRows struct {
	mu     sync.Mutex
	counts map[errKey]int64
	first  string // where the first of them is
	last   time.Time
	// reports the counts left once the interval has passed, when no
	// further flagged row comes to do it
	timer *time.Timer
	logf  func(string)
}

// add counts a batch's flagged rows and returns the warning to log now, if
// any ("" when the last one is more recent than badLogInterval).
func (b *badRows) add(counts map[errKey]int64, first string, now time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, n := range counts {
		if b.counts == nil {
			b.counts = map[errKey]int64{}
		}
		b.counts[k] += n
	}
	if b.first == "" {
		b.first = first
	}
	if len(b.counts) == 0 {
		return ""
	}
	if now.Sub(b.last) < badLogInterval {
		armReport(&b.timer, b.last, now, b.logf, func() string {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.timer = nil
			b.last = nowFunc()
			return b.take()
		})
		return ""
	}
	b.last = now
	return b.take()
}

// flush returns the warning for the rows not logged yet ("" if none).
func (b *badRows) flush() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	return b.take()
}

// armReport starts, unless one is running, a timer that logs what report
// returns once badLogInterval has passed since last: counts gathered after
// a warning are then reported even if nothing more comes (before, a burst of
// bad rows followed by none left all but the first unreported until close).
func armReport(timer **time.Timer, last, now time.Time, logf func(string), report func() string) {
	if *timer != nil || logf == nil {
		return
	}
	wait := min(max(badLogInterval-now.Sub(last), 0), badLogInterval)
	*timer = time.AfterFunc(wait, func() {
		if msg := report(); msg != "" {
			logf(msg)
		}
	})
}

func (b *badRows) take() string {
	if len(b.counts) == 0 {
		return ""
	}
	keys := make([]errKey, 0, len(b.counts))
	var total int64
	for k, n := range b.counts {
		keys = append(keys, k)
		total += n
	}
	slices.SortFunc(keys, func(x, y errKey) int {
		return cmp.Or(cmp.Compare(x.schema, y.schema), cmp.Compare(x.table, y.table), cmp.Compare(x.reason, y.reason))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		t := "(no table)"
		if k.table != "" {
			t = k.schema + "." + k.table
		}
		parts[i] = fmt.Sprintf("%s %s %d", t, k.reason, b.counts[k])
	}
	rows := "rows"
	if total == 1 {
		rows = "row"
	}
	where := ""
	if b.first != "" && b.first != "row" { // "row": the messages carry no file metadata
		where = ", the first at " + b.first
	}
	msg := fmt.Sprintf("%d %s flagged as bad (%s)%s; each keeps its CSV row and carries its error "+
		"(errored(), error()) for the dead-letter route", total, rows, strings.Join(parts, ", "), where)
	clear(b.counts)
	b.first = ""
	return msg
}

// truncLog gathers the values truncated (truncation_policy: truncate)
// between two warnings, logged like flagged rows: the first at once, then
// at most every badLogInterval, the rest at close. (A column too short for
// every value would otherwise log a line per value.)
type truncLog struct {
	mu     sync.Mutex
	counts map[errKey]int64 // errKey.reason: the column
	first  string           // the first of them, told in full
	last   time.Time
	timer  *time.Timer // see badRows.timer
	logf   func(string)
}

// add counts a batch's truncated values and returns the warning to log now,
// if any.
func (l *truncLog) add(counts map[errKey]int64, first string, now time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, n := range counts {
		if l.counts == nil {
			l.counts = map[errKey]int64{}
		}
		l.counts[k] += n
	}
	if l.first == "" {
		l.first = first
	}
	if len(l.counts) == 0 {
		return ""
	}
	if now.Sub(l.last) < badLogInterval {
		armReport(&l.timer, l.last, now, l.logf, func() string {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.timer = nil
			l.last = nowFunc()
			return l.take()
		})
		return ""
	}
	l.last = now
	return l.take()
}

// flush returns the warning for the values not logged yet ("" if none).
func (l *truncLog) flush() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	return l.take()
}

func (l *truncLog) take() string {
	if len(l.counts) == 0 {
		return ""
	}
	keys := slices.SortedFunc(maps.Keys(l.counts), func(x, y errKey) int {
		return cmp.Or(cmp.Compare(x.schema, y.schema), cmp.Compare(x.table, y.table), cmp.Compare(x.reason, y.reason))
	})
	var total int64
	parts := make([]string, len(keys))
	for i, k := range keys {
		total += l.counts[k]
		parts[i] = fmt.Sprintf("%s.%s column %s %d", k.schema, k.table, k.reason, l.counts[k])
	}
	values := "values"
	if total == 1 {
		values = "value"
	}
	msg := fmt.Sprintf("%d %s truncated to ColumnLength (%s), the first: %s", total, values, strings.Join(parts, ", "), l.first)
	clear(l.counts)
	l.first = ""
	return msg
}

// lintConf is the processor's lint rule: the checks of newProcessor.
func lintConf(conf *service.ParsedConfig) error {
	_, err := converterFromConfig(conf)
	return err
}

func converterFromConfig(conf *service.ParsedConfig) (*converter, error) {
	o, err := optionsFromConfig(conf)
	if err != nil {
		return nil, err
	}
	c, err := newConverter(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fTableMappings, err) // only object-mapping rules can fail here
	}
	return c, nil
}

func newProcessor(conf *service.ParsedConfig, res *service.Resources) (*Processor, error) {
	c, err := converterFromConfig(conf)
	if err != nil {
		return nil, err
	}
	o := c.o
	p := &Processor{c: c, log: res.Logger(), workers: o.maxWorkers}
	p.bad.logf, p.trunc.logf = p.log.Warn, p.log.Warn
	for _, msg := range c.mappingWarnings() {
		p.log.Warn(fTableMappings + ": " + msg)
	}
	if p.workers <= 0 {
		p.workers = runtime.GOMAXPROCS(0)
	}
	m := res.Metrics()
	p.rowsCtr = m.NewCounter("dms_csv_to_json_rows", "schema", "table", "operation")
	p.errsCtr = m.NewCounter("dms_csv_to_json_errors", "schema", "table", "reason")
	// DMS's LastUpdateTime: when the table's statistics last changed.
	p.lastUpd = m.NewGauge("dms_table_last_update_unix", "schema", "table")
	p.pool.New = func() any { return c.newWorker() }
	return p, nil
}

func optionsFromConfig(conf *service.ParsedConfig) (options, error) {
	var o options
	tdv, err := conf.FieldAny(fTableDef)
	if err != nil {
		return o, err
	}
	if o.def, err = tabledef.FromAny(tdv); err != nil {
		return o, fmt.Errorf("%s: %w", fTableDef, err)
	}
	s := dmscsv.DefaultSettings()
	if s.Delimiter, err = conf.FieldString(fDelimiter); err != nil {
		return o, err
	}
	s.Delimiter = dmscsv.Unescape(s.Delimiter)
	if s.RowDelimiter, err = conf.FieldString(fRowDelimiter); err != nil {
		return o, err
	}
	s.RowDelimiter = dmscsv.Unescape(s.RowDelimiter)
	if conf.Contains(fNullValue) {
		if s.NullValue, err = conf.FieldString(fNullValue); err != nil {
			return o, err
		}
		s.NullValueSet = true
	}
	if s.RFC4180, err = conf.FieldBool(fRFC4180); err != nil {
		return o, err
	}
	if err = s.Validate(); err != nil {
		return o, err
	}
	o.csv = s
	if o.defaultPhase, err = enumField(conf, fDefaultPhase, "auto", "full-load", "cdc"); err != nil {
		return o, err
	}
	mf, err := enumField(conf, fMessageFormat, "json", "json-unformatted")
	if err != nil {
		return o, err
	}
	switch mf {
	case "json":
		o.pretty = true
	case "json-unformatted":
	default:
		return o, fmt.Errorf("%s: %q is not json or json-unformatted", fMessageFormat, mf)
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{fIncludeNull, &o.includeNull}, {fIncludePartVal, &o.includePartitionValue},
		{fPartInclSchema, &o.partitionIncludeSchemaTable}, {fIncludeTxn, &o.includeTxn},
		{fIncludeControl, &o.includeControl}, {fNoHexPrefix, &o.render.NoHexPrefix},
		{fNumericAsString, &o.render.NumericAsString},
	} {
		if *b.dst, err = conf.FieldBool(b.name); err != nil {
			return o, err
		}
	}
	large, err := conf.FieldBool(fLargeInt)
	if err != nil {
		return o, err
	}
	o.render.DMSLargeIntegers = !large
	tp, err := enumField(conf, fTruncation, "error", "truncate")
	if err != nil {
		return o, err
	}
	o.render.Truncate = tp == "truncate"
	if o.cdcPartitionKey, err = enumField(conf, fCDCPartitionKey, "schema-table", "primary-key"); err != nil {
		return o, err
	}
	if o.taskID, err = conf.FieldString(fTaskID); err != nil {
		return o, err
	}
	if o.taskID == "" {
		return o, fmt.Errorf("%s must not be empty", fTaskID)
	}
	pm, err := conf.FieldString(fPrepMode)
	if err != nil {
		return o, err
	}
	if o.prepMode, err = parsePrepMode(pm); err != nil {
		return o, err
	}
	if conf.Contains(fTableMappings) {
		tm, err := conf.FieldAny(fTableMappings)
		if err != nil {
			return o, err
		}
		if tm != nil { // null: not set, as `dmsbridge create` writes it
			if o.rules, err = parseTableMappings(tm); err != nil {
				return o, fmt.Errorf("%s: %w", fTableMappings, err)
			}
		}
	}
	if o.maxWorkers, err = conf.FieldInt(fMaxWorkers); err != nil {
		return o, err
	}
	if o.maxWorkers < 0 {
		return o, fmt.Errorf("%s: must be 0 (one per CPU) or more, got %d", fMaxWorkers, o.maxWorkers)
	}
	return o, nil
}

// enumField reads an enum field in lower case: Benthos' lint compares its
// options without case, and `run --chilled` passes any value, which used
// to run as the default (truncation_policy "Truncate" flagged the rows
// it was meant to cut).
func enumField(conf *service.ParsedConfig, field string, opts ...string) (string, error) {
	v, err := conf.FieldString(field)
	if err != nil {
		return "", err
	}
	if l := strings.ToLower(v); slices.Contains(opts, l) {
		return l, nil
	}
	return "", fmt.Errorf("%s: %q is not one of %s", field, v, strings.Join(opts, ", "))
}

func parsePrepMode(s string) (string, error) {
	switch strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-") {
	case "drop-and-create":
		return "drop-and-create", nil
	case "truncate", "truncate-before-load":
		return "truncate", nil
	case "do-nothing", "":
		return "do-nothing", nil
	}
	return "", fmt.Errorf("%s: %q is not drop-and-create, truncate or do-nothing", fPrepMode, s)
}

// minParallelBatch is the smallest batch spread over several goroutines.
const minParallelBatch = 1024

// ProcessBatch converts every message of the batch in place, flags bad rows
// with an error, and expands or filters control signals. Output order equals
// input order.
func (p *Processor) ProcessBatch(ctx context.Context, batch service.MessageBatch) ([]service.MessageBatch, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	now := p.c.now()
	workers := p.workers
	if n := len(batch) / (minParallelBatch / 2); n < workers {
		workers = n
	}
	avg, rsv := p.slabSizes()
	var ws []*worker
	if workers <= 1 || len(batch) < minParallelBatch {
		w := p.pool.Get().(*worker)
		w.begin(now, len(batch), avg, rsv)
		w.run(batch)
		ws = []*worker{w}
	} else {
		ws = make([]*worker, workers)
		var wg sync.WaitGroup
		chunk := (len(batch) + workers - 1) / workers
		for i := range ws {
			lo, hi := i*chunk, min((i+1)*chunk, len(batch))
			w := p.pool.Get().(*worker)
			w.begin(now, hi-lo, avg, rsv)
			ws[i] = w
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.run(batch[lo:hi])
			}()
		}
		wg.Wait()
	}
	out := batch
	expanded := false
	for _, w := range ws {
		if len(w.controls) > 0 {
			expanded = true
		}
	}
	if expanded {
		out = p.expandControls(batch, ws)
	}
	for _, w := range ws {
		w.end()
	}
	if _, again := batch[0].MetaGetMut(metaRedelivered); again {
		// A batch aws_s3_dms delivers again (its whole batch: the first
		// message tells) was counted, and its bad rows reported, when
		// it was first processed.
		p.learn(ws, len(batch))
	} else {
		p.report(ws, len(batch))
	}
	for _, w := range ws {
		w.reset()
		p.pool.Put(w)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return []service.MessageBatch{out}, nil
}

// slabSizes are the bytes per row and the room per row that earlier
// batches needed (256 and 0 before the first batch).
func (p *Processor) slabSizes() (avg, rsv int) {
	p.mu.Lock()
	avg, rsv = p.slabAvg, p.slabRsv
	p.mu.Unlock()
	if avg == 0 {
		avg = 256
	}
	return avg, rsv
}

// expandControls replaces each control signal by its control records (or by
// nothing), keeping order.
func (p *Processor) expandControls(batch service.MessageBatch, ws []*worker) service.MessageBatch {
	ctl := map[*service.Message][]*service.Message{}
	for _, w := range ws {
		for _, c := range w.controls {
			ctl[c.msg] = c.out
		}
	}
	out := make(service.MessageBatch, 0, len(batch)+len(ctl))
	for _, m := range batch {
		if recs, ok := ctl[m]; ok {
			out = append(out, recs...)
			continue
		}
		out = append(out, m)
	}
	return out
}

// report updates metrics, logs truncation warnings and learns the row size.
func (p *Processor) report(ws []*worker, rows int) {
	now := time.Now().Unix()
	for _, w := range ws {
		for i, n := range w.rowCounts {
			if n == 0 {
				continue
			}
			t := p.c.plans[i/numOps]
			p.rowsCtr.Incr(n, t.schema, t.name, opNames[i%numOps])
			p.lastUpd.Set(now, t.schema, t.name)
		}
		for k, n := range w.errCounts {
			p.errsCtr.Incr(n, k.schema, k.table, k.reason)
			p.lastUpd.Set(now, k.schema, k.table)
		}
		if len(w.truncCounts) > 0 {
			if msg := p.trunc.add(w.truncCounts, w.firstTrunc, nowFunc()); msg != "" {
				p.log.Warn(msg)
			}
		}
		if len(w.errCounts) > 0 {
			if msg := p.bad.add(w.errCounts, w.firstBad, nowFunc()); msg != "" {
				p.log.Warn(msg)
			}
		}
	}
	p.learn(ws, rows)
}

// learn learns the row size from the batch's workers.
func (p *Processor) learn(ws []*worker, rows int) {
	var bytes, maxRow int
	for _, w := range ws {
		bytes += w.bytes
		maxRow = max(maxRow, w.maxRow)
	}
	if rows > 0 && bytes > 0 {
		p.mu.Lock()
		// Buffers are sized to the average row and never grown by
		// copying (worker.newChunk), so a little slack is enough.
		p.slabAvg = bytes/rows + bytes/rows/32 + 1
		p.slabRsv = maxRow + maxRow/4
		p.mu.Unlock()
	}
}

// Close logs the flagged rows not reported yet; the processor holds no
// resources.
func (p *Processor) Close(context.Context) error {
	if msg := p.bad.flush(); msg != "" {
		p.log.Warn(msg)
	}
	if msg := p.trunc.flush(); msg != "" {
		p.log.Warn(msg)
	}
	return nil
}

// nowFunc is the clock; tests replace it for golden output.
var nowFunc = time.Now
