// Package s3dms provides the aws_s3_dms input: an ordered reader of a bucket
// (or local directory) laid out as an AWS DMS S3 source endpoint.
package s3dms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cenkalti/backoff/v4"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/awsconf"
	"github.com/dmsbridge/dmsbridge/plugins/checkpoint"
	"github.com/dmsbridge/dmsbridge/plugins/dmscsv"
	"github.com/dmsbridge/dmsbridge/plugins/internal/box"
	"github.com/dmsbridge/dmsbridge/plugins/internal/lintcheck"
	"github.com/dmsbridge/dmsbridge/plugins/internal/metamap"
	"github.com/dmsbridge/dmsbridge/plugins/internal/outage"
	"github.com/dmsbridge/dmsbridge/plugins/tabledef"
)

const inputDescription = `
Reads a bucket (or a local directory) laid out as an AWS DMS S3 source endpoint and emits one message per CSV
row, in order: the full load table by table (tables in the order of the external table definition, the files
of a table in lexical key order), then the CDC files under ` + "`[bucket_folder/]cdc_path`" + ` in lexical order,
tailing that folder forever (unless ` + "`mode: full-load`" + `, which ends the input, and the pipeline exits 0,
once the full load is done and its checkpoint saved).

### Layout

Full-load files of a table are every object under ` + "`[bucket_folder/]TablePath/`" + ` (recursively; keys that end
in "/" are directory markers and are ignored), listed with pagination. CDC files are every object under
` + "`[bucket_folder/]cdc_path/`" + ` (directory markers aside: they are neither read nor moved past, so a folder made in
the S3 console there does not turn later CDC files into late ones). Objects ending in ` + "`.gz`" + ` or served with ` + "`Content-Encoding: gzip`" + ` are
decompressed on the fly. A UTF-8 BOM is skipped. Rows end at ` + "`csv_row_delimiter`" + ` ("\n" also accepts "\r\n");
with ` + "`rfc4180`" + ` a quoted field may hold delimiters and newlines. Blank lines are skipped (they still count in
` + "`dms_line`" + `). Objects are streamed: memory holds one read buffer and one batch, never an object.

With ` + "`directory`" + ` instead of ` + "`bucket`" + ` the same layout is read from a local directory: keys are paths
relative to it with "/" separators (a key can never escape it, and no file outside it is read: a symlink on the way
to a folder is followed only while it stays inside the directory (a relative or an absolute link), one leading out of it is a listing error naming the
path; a file in a table or CDC folder that is a symlink is read as the file it leads to when that is a file inside
the directory, and is otherwise a bad object (see Errors: a link leading out, to nothing or to a folder); a ` + "`bucket_folder`" + `, ` + "`cdc_path`" + ` or TablePath
leading out of it with ".." is refused at start and by lint, naming the field), ` + "`s3_bucket`" + ` is "", and the ETag is
"<size hex>-<mtime ns hex>" (no content hash), so a rewrite keeping size and modification time is not
detected. Files and folders whose name starts with "." (below a table or CDC folder) are hidden and never
listed, neither read nor taken for late files, as Spark and Hadoop do: rsync writes ".<name>.XXXXXX" while it
copies, editors write swap files (with ` + "`bucket`" + `, as in DMS, every object is listed). Files must appear atomically
(write elsewhere, then rename): a CDC file is read once, as soon as it is listed, so bytes written to it afterwards
are not read. A temporary file written in the watched folder itself under a name that is not hidden (e.g. the
"<name>.<random>" of ` + "`aws s3 cp`" + ` and ` + "`aws s3 sync`" + ` downloads, or "<name>.tmp") is not safe: listed while
being written, it is read as a file of its own (maybe cut short), and the file it is then renamed to, sorting
before it, is a late file; write temporary files outside the folder, or under a hidden name. One renamed before it
is read is harmless (see late files). The newest CDC file read is watched at every poll, and if
its size changes after it was read to its end, a warning names it with both sizes (once per size).

### Messages

Batches of up to ` + "`batch_size`" + ` rows and about ` + "`batch_bytes`" + ` bytes, in file order (a batch may span
files). The body is the raw row without its row delimiter. Metadata: ` + "`dms_phase`" + ` (full-load | cdc),
` + "`dms_schema`" + ` and ` + "`dms_table`" + ` (full load only; CDC rows name their table in the row), ` + "`s3_bucket`" + `,
` + "`s3_key`" + `, ` + "`s3_etag`" + `, ` + "`s3_last_modified`" + ` (RFC 3339 UTC), ` + "`dms_line`" + ` (1-based line where the
row starts), ` + "`dms_offset`" + ` (byte offset of the row in the decompressed object; integers) and
` + "`dms_position`" + `, a string whose byte order is the processing order of the whole run:
` + "`<phase 1|2>/<5-digit seq>/<key> <20-digit offset>`" + `, where seq is the table's index in the definition
during the full load and the number of late files processed so far during CDC, and key bytes 0x00-0x21 are
written as "!" plus two hex digits so that a key that is a prefix of another sorts first. With
` + "`emit_table_start`" + `, each table's full load begins with a message with an empty body and metadata
` + "`dms_control: table-start`" + `, ` + "`dms_schema`" + `, ` + "`dms_table`" + `, ` + "`dms_phase: full-load`" + `, ` + "`dms_position`" + `.
With ` + "`emit_cdc_start`" + `, each start of the CDC phase (the first, and every restart that resumes in CDC) begins with
one such message with ` + "`dms_control: cdc-start`" + `, ` + "`dms_phase: cdc`" + `, ` + "`dms_position`" + ` and no table: DMS
writes create-table control records when a CDC task starts, and the processor turns this signal into them.

### Delivery and checkpoints

At-least-once. Acknowledgements may arrive out of order: the input tracks every emitted batch and advances
the checkpoint only to the highest position whose predecessors are all acknowledged (key, ETag, byte offset
and line of the next row), saving it every ` + "`checkpoint.interval`" + ` and on close (the stop logs the store and the position saved). A nacked batch (wholly or
partly failed) is redelivered with the same rows in the same order (after a wait of 100 ms, doubling with each rejection of the same batch up to 30 s, so that a batch rejected for good is retried, and logged, twice a minute once the wait has reached 30 s, after about a minute) before anything newer
is read, followed by every batch emitted after it, acknowledged or not, again in emission order (go-back-N: those
batches were already in the pipeline and were or will be written after the rejected delivery, so they are
written again after the redelivery). Rows of those later batches may thus be written twice, but the last copy of
every row is in order, so a consumer that keeps the last value of a key ends with the newest one; the copies
are counted in the warning logged for each nack. The checkpoint never passes the nacked batch, nor a re-sent one,
until its redelivery is acknowledged (the input does its own redelivery; it does not use Benthos's nack
auto-replay, which reorders). Batches are kept for redelivery until the checkpoint passes them (at most 1024
batches or 256 MiB; reading waits past that). The redelivered messages are made anew from the rows as read, body
and metadata, so a processor that rewrote the first delivery's messages in place (as ` + "`dms_csv_to_json`" + ` does)
sees the CSV rows again; they also carry the metadata ` + "`dms_redelivered: true`" + ` (every message of a batch delivered
before; a batch read while a nack was pending and not given out yet does not), by which ` + "`dms_csv_to_json`" + ` counts
each row once in its per-table figures. For strict end-to-end order (of the last copies) also use ` + "`pipeline.threads: 1`" + ` and an
output with ` + "`max_in_flight: 1`" + `.
On restart the object at the checkpoint is reopened with a ranged GET at the offset (gzip objects are
re-read and the decompressed prefix skipped). A stop (the engine ending a read) is obeyed at the next read of the
object's bytes, so within one read buffer even inside content that yields no row for a long time (a gigabyte of
blank lines, a row passed over as too long, a gzip bomb of either): the object is then reopened at its last whole
row, by the next read or from the checkpoint. If its ETag changed the input fails with an error naming the
object, or with ` + "`restart_changed_files`" + ` re-reads that object from its start. Duplicates after a crash
are bounded by the rows in flight (unacknowledged) plus those acknowledged within one checkpoint interval.
With ` + "`checkpoint.interval: 0s`" + ` the bound is strict: the input never has more than 4 emitted batches outside
the saved checkpoint (it waits for a save before emitting more), so a crash repeats at most 4 × ` + "`batch_size`" + `
rows; a checkpoint store that fails lifts the wait rather than stopping the pipeline.
A save that fails (the directory gone or not writable, the store's bucket deleted or refused) is tried again at
every interval; every failure is counted in ` + "`dms_checkpoint_save_errors`" + `, and ` + "`dms_checkpoint_save_failing`" + `
is 1 while the last save failed (0 once one succeeds): alert on it, since a restart then repeats every row
acknowledged since the last save (and with the ` + "`s3`" + ` store the lease lapses, see below). The error is logged
once, naming the store, then at most every 10 s with the count of failed attempts, and the recovery once.
At shutdown the input saves once more, and that save may take at most 10 s (` + "`request_timeout`" + ` when shorter; a
periodic save still under way is given up for it), so that a store that does not answer does not hold the stop past
Benthos' default ` + "`shutdown_timeout`" + ` (20 s): the next start then resumes at the last save that went through.
The first write, at connect, must succeed: until it does, Connect fails (the engine retries it) and nothing is read.
With ` + "`mode: full-load`" + ` so must the last: the input ends (and the pipeline exits 0) only once the checkpoint of the
finished full load is saved, since ending without it would report success while the next run of the job loads
everything since the last save again; until then it reports itself not connected (` + "`/ready`" + ` answers 503: the full
load is done, but its checkpoint cannot be saved, with the store's error) and tries again every second.
A checkpoint written for another layout (possible with an explicit ` + "`checkpoint.key`" + `; the default key changes
with the bucket, folders and table paths) is refused at Connect with an error naming it: written by an input reading
another bucket or directory (checkpoints record it since 2026-11-29, a directory by its real path, symbolic links resolved; the error says how to go on from one whose data
was moved unchanged), CDC keys not under
` + "`[bucket_folder/]cdc_path/`" + `, or a full-load position whose table (by index, schema and name, up to the one
being loaded) or key prefix differs from the definition's. Tables added after the one being loaded, or once the
full load is done, are accepted, and so are tables removed (or reordered) once the full load is done. The default key
does not change with ` + "`mode`" + `: a checkpoint written with ` + "`mode: cdc`" + ` (in CDC, no table ever loaded) is refused
the same way when ` + "`mode`" + ` is ` + "`full-load`" + ` or ` + "`full-load-and-cdc`" + `, since resuming it would skip the full load.
A checkpoint that cannot be read (truncated, empty, not JSON, without a version, or of a newer format version than
this dmsbridge reads) is never taken for none: Connect fails (and is retried) with an error naming it, saying what is
wrong and to put back a good copy (or run the newer version) to go on, or to remove it to start over. Fields this
version does not know, in a checkpoint of its format version (written by a newer dmsbridge that added them), are
ignored.
Since the default key changes with the table definition, a first start under a default key (no position stored under
it) is refused while the same store (the ` + "`file`" + ` store's directory, the ` + "`s3`" + ` store's prefix; not a cache) holds a
checkpoint of this job under another default key: one written for the same bucket or directory (not recorded in a
checkpoint of before 2026-11-29: any then), whose keys lie under ` + "`bucket_folder`" + `, and that names a table of this
definition. Starting over would load every table and re-read every CDC file again; the
error names that checkpoint and says to set ` + "`checkpoint.key`" + ` to it to go on (judged as above: tables added once the
full load is done are not loaded, as DMS, whose S3 source has no table reload, does not), or to remove it to start over.
A checkpoint naming no table of the definition is another group of a job split by tables, and is no obstacle. An ` + "`s3`" + `
listing refused (credentials without s3:ListBucket) skips the check.

Checkpoint stores: ` + "`file`" + ` (one JSON file, replaced atomically: temp file, fsync, rename, fsync of the
directory; with ` + "`directory`" + `, a ` + "`checkpoint.directory`" + ` under the CDC path or a table's path (also one reached through a symbolic link) is refused at start and by lint,
since the input would read the checkpoint file as data; so is an ` + "`s3`" + ` store's key there, in the bucket read), ` + "`s3`" + ` (one object written with If-None-Match/If-Match; the credentials need s3:GetObject and
s3:PutObject on it, not s3:ListBucket: S3 answers the first start's read of a checkpoint not written yet with 403
AccessDenied then, and the create-only write that follows tells a missing checkpoint from an unreadable one, which it
never overwrites; a second instance started with the
same key is refused while the first one's lease (` + "`checkpoint.lease`" + `, refreshed at every interval) runs,
and an instance whose checkpoint was taken over (or deleted under it) stops emitting for good, logging it once and
reporting itself not connected (` + "`/ready`" + ` answers 503 saying so), so two instances never double-process:
an instance whose lease ran out without a successful write (S3 slow or unreachable for it, its bucket deleted, a long
pause; also noticed while the CDC folder is idle) emits nothing more, reporting itself not connected (` + "`/ready`" + `
answers 503 naming the checkpoint and the lapse; checked every second, logged at once, then after 10 s and at
doubling intervals up to once a minute), until a write confirms its
claim (reading goes on) or finds it taken over;
a write whose answer was lost, and that therefore fails its own condition when sent again, is told from a takeover
by reading the object back: it still names this instance; a Connect that fails after claiming (a checkpoint that does
not match the configuration, a failed first write) gives the claim back, so the engine's next attempt reports the same
error and a corrected stream on the same key takes over at once; after a crash a restart waits up to the lease. The age of
the last write is judged by the S3 server's clock (the Date of its answer minus the object's Last-Modified, whole
seconds, rounded so as never to overstate it), so clocks skewed between the instances play no part; a takeover may
come a second or two after the lease), ` + "`cache`" + ` (any cache resource; no fencing between processes; as durable as the cache: with a ` + "`memory`" + ` cache a restart starts from the beginning) and ` + "`none`" + `. Two inputs of one
process (e.g. two streams in streams mode, which share the cache resources) on the same checkpoint file (also one named through a symbolic link), or on the same
cache resource and key, are refused: the second's Connect fails naming the first, since each would overwrite the other's
position; give each its own ` + "`checkpoint.key`" + `.

### CDC tailing and late files

Every ` + "`poll_interval`" + ` the CDC folder is listed with StartAfter = the highest processed key, so an idle poll
is one LIST request. A CDC file that appears with a key lower than one already processed is a late file. DMS
skips it silently; here ` + "`late_files: skip`" + ` logs a warning naming it and counts it
(` + "`dms_cdc_late_files`" + `), and ` + "`late_files: process`" + ` processes it next (its keys are remembered in
the checkpoint while the folder holds them, like every other CDC key: see below). Detecting late files costs one full listing of the CDC folder every
` + "`late_file_check_interval`" + `, and one at each start of CDC. Late files that appear while the input is stopped
are found at the next start: the checkpoint keeps a bounded record of the CDC keys listed (those modified since a
moment, the newest 256 at most), and a file below the mark, modified within the record's span, that the record does
not hold, is late; one modified before that span (an upload that took longer than the newest 256 files to appear)
is beyond the record and not reported. Once the folder holds more files than the record, so is a file whose key
sorts before every key the record holds: that is most likely an old, processed file modified again while the input
was stopped (e.g. copied onto itself to re-encrypt it), which must not be read again; the price is that a file that
late, arriving while the input is stopped, is neither reported nor processed. A late file being processed is only
recorded once it is done, so a crash in between finds it late again, unless (as above) its key sorts before every
key the record holds.
A listed file that no longer exists when it is to be read (a temporary file renamed since, a file deleted) is not
processed: it is logged as a warning ("object gone before it was read"), is not a bad object, moves neither the
position nor the high-water mark nor the record of late files, and the next poll lists the folder again from the
last file processed, so that the file it became is read in key order like any other, not taken for a late file, also
across a restart. The same holds in the full load (the table's remaining files are listed again; its totals no
longer count the gone one).
` + "`cdc_start: now`" + ` starts CDC after the newest CDC key present at the first start (recorded in the checkpoint).

### Decisions on behaviour DMS leaves unspecified

- Which objects are full-load files: every object under the table path (not only LOAD*.csv), recursively, in
  lexical (S3 byte) order; keys ending in "/" are skipped.
- ` + "`ignore_header_rows`" + ` applies to full-load files, and to CDC files only with ` + "`cdc_ignore_header_rows`" + `.
  A header row whose quoted field never closes runs to the end of the file; it is passed on whole (for the
  processor to flag), not skipped, so that no row is lost silently; past ` + "`max_row_size`" + ` it is passed over
  like any such row, its message carrying the error (see Errors).
- gzip sources (".gz" or Content-Encoding gzip) are read. Keys must be UTF-8; row bytes are passed on untouched.
  Keys may hold any character S3 accepts, control characters included: listings ask for URL-encoded keys
  (` + "`encoding-type=url`" + `, as the AWS CLI does) and decode them when the answer says so, since S3 otherwise
  sends such a key in a form no XML parser accepts, which would fail every listing of its folder.
- CDC files present before the first start are processed (` + "`cdc_start: beginning`" + `); ` + "`now`" + ` skips them.
- Changes captured during the full load: CDC starts after the full load, from the CDC start point, in lexical order.
- A table's full-load files are listed once, when its load begins (again when a restart resumes inside it). A
  file added to its folder after that is not read, nor, after a restart inside the table, one added with a key
  sorting before the checkpoint's (the load goes on after it), nor any added once the table or the full load is
  done: DMS's S3 source has no table reload either. To load such files, start the job over (another
  ` + "`checkpoint.key`" + `, or the checkpoint removed). A file before the checkpoint's key that is replaced or
  deleted is not looked at again; one after it is read as it is when the table is listed.
- A CDC key already processed is never re-read, even if rewritten (high-water mark). The input remembers the CDC
  keys the folder holds, not every key ever processed: a processed file removed from the folder (e.g. expired by a
  lifecycle rule) is forgotten at the next late-file check, and an object put again under its key after that is a
  late file. An object rewritten while
  it is the checkpointed object is detected by its ETag (error, or re-read with ` + "`restart_changed_files`" + `).
- The CDC polling interval is ` + "`poll_interval`" + ` (default 5s); DMS's is undocumented.
- Table state: tables go Before load -> Full load -> Table completed; in a cdc-only run they stay Before load, and so
  does a table added to the definition after its place in the full load was passed (it is not loaded, see above).
- Blank lines are skipped. A final row without a row delimiter is a row.

### Configuration checks

Every setting is checked when the config is linted (` + "`dmsbridge lint`" + `, the lint ` + "`run`" + ` does before
starting, and the streams API's POST/PUT, which lint before building), with the error the start would give,
naming the field: a wrong size, duration or combination never gets as far as a running pipeline. Like the
start, the lint reads ` + "`table_definition`" + ` files relative to the working directory. An empty ` + "`bucket`" + `
and ` + "`directory`" + ` is refused too, except under ` + "`lint --skip-env-var-check`" + ` and ` + "`dmsbridge test`" + `, where it stands for an unset
` + "`${BUCKET}`" + ` and is left to the start.
The options of ` + "`mode`" + `, ` + "`cdc_start`" + `, ` + "`late_files`" + `, ` + "`bad_files`" + ` and ` + "`checkpoint.store`" + ` are read in any
case (` + "`File`" + ` is ` + "`file`" + `), as Benthos' lint compares them; any other value is refused naming the field, also
under ` + "`run --chilled`" + `.
An ` + "`endpoint`" + ` quoted in an error never shows its user information or query string. With ` + "`endpoint`" + `
empty, the endpoint the AWS SDK takes from AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or the shared config gets the same
checks when the input connects.
When the input reads a bucket or keeps its checkpoint in S3, the AWS configuration is resolved when it is
built (without a request; not by lint, which may run on another machine): no region anywhere, or a
` + "`credentials.profile`" + ` the shared config files lack, is refused at start, naming it.
One mistake escapes the lint: a scalar of the wrong type (` + "`batch_size: abc`" + `, ` + "`rfc4180: maybe`" + `). Benthos' lint checks only that a
scalar field holds a scalar, and skips a component's checks altogether when one of its fields does not
decode, so such a config lints clean (and hides the component's other mistakes); the start refuses it,
naming the field. In streams mode the API's POST/PUT lets it through, and the build fails after the
stream's input has started.

### Errors

When the source stops answering (network errors, a body cut short, 5xx, no answer or no body bytes within
` + "`request_timeout`" + `), the input logs the error as a warning (as it does a download cut mid-body, whose
rows read before the cut go on) and reports itself not connected: the engine's ` + "`/ready`" + ` answers 503 naming it, and the input tries to reconnect
every second, each attempt a listing of the CDC folder; once the source answers, reading resumes at the same row
(an object cut mid-body is reopened with a ranged GET at the last whole row), logged once with how long it failed.
A connection failure that lasts (here, or any other error of Connect) is logged by the engine ("Failed to connect")
at once, then after 10 s and at doubling intervals up to once a minute, saying for how long it has failed; not at
every attempt. When the read fails again although
the listing succeeded (e.g. S3 failing the GETs of one object only), the next attempts wait first (1 s, growing to
10 s, reset once rows are read), with ` + "`/ready`" + ` showing the error meanwhile, instead of reading again at once. When S3 answers but refuses (a 3xx
or 4xx answer other than a timeout or throttling: access denied, invalid or expired credentials, the bucket deleted,
the wrong region), which no retry heals until an operator acts, the input logs the error once and also reports
itself not connected: ` + "`/ready`" + ` answers 503 with the refusal (naming the bucket, the folder or object and S3's
answer), the engine logs it at every attempt and counts ` + "`input_connection_failed`" + `, and waits between attempts
(1 s, growing to 10 s) so that the refused request is not repeated at once; each attempt loads the AWS configuration
again (so credentials replaced where it finds them, e.g. a shared credentials file rewritten when its session token is
renewed, are used from then on), probes with a listing of the CDC folder and then retries the refused request. Once S3 accepts the input's requests again, reading resumes at the
same row. A ` + "`directory`" + ` that does not exist (not mounted, a typo, a relative path read from another working directory)
is handled as a bucket that does not exist: not connected, ` + "`/ready`" + ` naming it (and the working directory a relative
one is read from), read once it is there; a folder under it that does not exist is an empty table or CDC path, as in
S3. Credentials that cannot be had at all (a credential_process or the instance metadata service failing, an SSO
token expired: no request reaches S3) are handled the same way: not connected, ` + "`/ready`" + ` naming the failure. An object that changed while it was read, found when a cut download is reopened at its last row (the ETag
differs), stops the input at that row the same way (logged once, not connected, ` + "`/ready`" + ` 503 with the error,
the reopen tried after each wait) until the original is put back or the input is restarted with
` + "`restart_changed_files: true`" + `. Other errors are returned to the engine, which logs them and retries with backoff. Nothing is skipped or
reordered because the position only moves when rows are emitted. Errors name the bucket, key, line and offset; they never quote the session token (the canonical request an AWS service may quote in a rejected signature's message is cut).
An object that ends inside a quoted field is not dropped: everything from the row's start to the end of the
object is emitted as one row (logged as a warning naming the object, line and offset), so the processor flags it
and a dead-letter route keeps it. A row longer than ` + "`max_row_size`" + ` is passed over without being held in
memory: its message carries the row's first 4096 bytes and an error naming the object, line, offset and size
(and, when a quote that never closes made it run to the end of the object, saying so)
(logged as a warning, counted in ` + "`dms_rows_too_long`" + `), so a dead-letter route (` + "`reject_errored`" + ` in a
` + "`fallback`" + `) records it, the processor leaves it untouched, and the rows after it go on. A bad object (a
truncated gzip, the object the checkpoint is in the middle of, deleted while the input was stopped, or in
directory mode a symlink that does not lead to a file inside the
directory) is, with ` + "`bad_files: skip`" + ` (default, like DMS's LOG_ERROR),
logged as an error and counted in ` + "`dms_bad_files`" + `, and the input goes on with the next object (rows
before the fault were emitted); with ` + "`bad_files: stop`" + ` the input stops reading for good (until a restart; the
object is not read again, nor any object after it; rows read before it are emitted, and redelivered when nacked): it
logs and counts the object, then reports itself not connected, Connect returning the error naming the object (` + "`/ready`" + ` answers 503 with it; the engine logs it once per ` + "`poll_interval`" + `, at least 1 s).
An object gone between listing and reading, before any of it was read, is no bad object: nothing of it is lost that
a file replacing it does not bring, and it is logged as a warning and passed over whatever ` + "`bad_files`" + ` says (see
late files).

### Statistics

Per table (labels schema, table): ` + "`dms_table_state`" + ` (0 Before load, 1 Full load, 2 Table completed),
` + "`dms_full_load_rows`" + `, ` + "`dms_full_load_bytes_done`" + `/` + "`_total`" + `, ` + "`dms_full_load_files_done`" + `/` + "`_total`" + `;
` + "`dms_full_load_start_unix`" + `/` + "`_end_unix`" + `, ` + "`dms_table_last_update_unix`" + `,
` + "`dms_table_input_started_unix_ms`" + ` (when the input publishing the table's figures started: ` + "`dmsbridge tables`" + `
leaves out a table whose figures an earlier input of the same stream and path published, e.g. a table dropped from the
definition by a streams-mode update, whose series stay in ` + "`/metrics`" + `);
` + "`dms_rows_too_long`" + ` (rows passed over, see Errors); CDC: ` + "`dms_cdc_files_processed`" + `, ` + "`dms_cdc_files_pending`" + `, ` + "`dms_cdc_lag_seconds`" + ` (now minus the
LastModified of the newest processed file; 0, never negative, when that is ahead of this host's clock), ` + "`dms_cdc_late_files`" + `, ` + "`dms_cdc_rows`" + `; ` + "`dms_s3_list_requests`" + `, ` + "`dms_bad_files`" + `;
` + "`dms_checkpoint_save_errors`" + `, ` + "`dms_checkpoint_save_failing`" + ` (see Delivery and checkpoints).
Counters, the CDC gauges (lag included) and every per-table gauge are exported at 0 from the start (an absent series is not a
zero; in streams mode a stream updated or re-created under its id thus never shows the figures of the input before it).
When the input closes, ` + "`dms_checkpoint_save_failing`" + `, ` + "`dms_cdc_files_pending`" + ` and ` + "`dms_cdc_lag_seconds`" + ` are set to 0: in
streams mode a deleted stream's series stay in ` + "`/metrics`" + `, and nothing of a closed input fails, waits or lags.
Log lines and error texts name an object as ` + "`s3://bucket/key`" + ` (or the file's path), quoted and escaped (` + "`\"s3://bucket/cdc\\nx\"`" + `)
when its key holds a control character (a line break, a terminal escape) or another character that is not printable:
whoever can write to the bucket or directory cannot forge a log line or drive the terminal of whoever reads the log.
The full-load percentage of each table is logged every ` + "`progress_interval`" + `. The same figures are
available in-process through s3dms.Stats(). They are stored with the checkpoint, as of the checkpointed position,
and carry on from there after a restart (table states, full-load rows and times, a completed table's files and bytes,
CDC rows, files and late files), as DMS's table statistics do across task restarts; a restored table's
` + "`dms_table_last_update_unix`" + ` starts at its full-load end (or start); the processor's per-operation counters
(` + "`dms_csv_to_json_rows`" + `) are plain counters that start from zero with the process.
`

func inputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Categories("Services", "AWS").
		Summary("Reads a bucket laid out as an AWS DMS S3 source: the full load, then CDC files in order, one message per CSV row, resumable at the exact row.").
		Description(inputDescription).
		LintRule(lintcheck.Rule("aws_s3_dms", inputSpec, lintConf)).
		Fields(
			service.NewStringField("bucket").Description("The bucket (DMS BucketName). Exactly one of `bucket` and `directory` must be set. A general purpose bucket: an S3 Express One Zone directory bucket (`...--x-s3`), which lists keys out of lexical order and takes no StartAfter, is refused.").Default(""),
			service.NewStringField("directory").Description("A local directory with the same layout, instead of a bucket.").Default(""),
			service.NewStringField("bucket_folder").Description("DMS BucketFolder: a prefix before every table path and the CDC path.").Default(""),
			service.NewStringField("cdc_path").Description("DMS CdcPath: the folder of CDC files. Required unless `mode` is full-load.").Default(""),
			service.NewAnyField("table_definition").Description("The DMS external table definition: a file path, inline JSON, or an object."),
			service.NewStringEnumField("mode", "full-load", "cdc", "full-load-and-cdc").Description("DMS MigrationType.").Default("full-load-and-cdc"),
			service.NewStringEnumField("cdc_start", "beginning", "now").Description("Where CDC starts the first time: every CDC file present (beginning) or only files after the newest key present at the first start (now).").Default("beginning"),
			service.NewDurationField("poll_interval").Description("How often the CDC folder is listed for new files.").Default("5s"),
			service.NewDurationField("request_timeout").Description("S3: the longest a listing or a GetObject may wait for an answer, and an object's body for its next bytes; also each read and write of an `s3` checkpoint (a Connect against an S3 that does not answer then fails, logged and shown by `/ready`, instead of waiting silently). Past it the request counts as the source not answering (see Errors): without it a connection on which S3 stopped answering (a network partition) would hang until TCP gives up, minutes later.").Default("30s").Advanced(),
			service.NewStringEnumField("late_files", "skip", "process").Description("What to do with a CDC file whose key sorts before one already processed.").Default("skip"),
			service.NewDurationField("late_file_check_interval").Description("How often the whole CDC folder is listed to find late files.").Default("5m"),
			service.NewIntField("ignore_header_rows").Description("DMS IgnoreHeaderRows: 1 skips the first row of every full-load file.").Default(0),
			service.NewBoolField("cdc_ignore_header_rows").Description("Apply `ignore_header_rows` to CDC files too.").Default(false),
			service.NewStringField("csv_delimiter").Description("DMS CsvDelimiter (escapes such as `\\t` accepted). Needed to find quoted fields.").Default(","),
			service.NewStringField("csv_row_delimiter").Description("DMS CsvRowDelimiter: `\\n` (also accepts \\r\\n) or `\\r\\n`.").Default(`\n`),
			service.NewBoolField("rfc4180").Description("DMS Rfc4180: quoted fields may span lines. When false quotes are data.").Default(true),
			service.NewIntField("max_row_size").Description("Longest row accepted, in bytes.").Default(dmscsv.DefaultMaxRowSize),
			service.NewIntField("batch_size").Description("Most rows per batch.").Default(500),
			service.NewIntField("batch_bytes").Description("A batch ends once its rows reach this many bytes.").Default(1<<20),
			service.NewBoolField("emit_table_start").Description("Emit a table-start control message before each table's full load.").Default(false),
			service.NewBoolField("emit_cdc_start").Description("Emit a cdc-start control message each time the CDC phase begins (also after a restart in CDC), before any CDC row: `dms_csv_to_json` turns it into DMS's create-table control records.").Default(false),
			service.NewBoolField("restart_changed_files").Description("When the object at the checkpoint has a new ETag, re-read it from the start instead of failing.").Default(false),
			service.NewStringEnumField("bad_files", "skip", "stop").Description("What to do with an object that cannot be read to its end (see Errors).").Default("skip"),
			service.NewDurationField("progress_interval").Description("How often the full-load percentage of the current table, then the CDC status (files processed and pending, late files, lag), is logged.").Default("30s"),
			service.NewStringField("region").Description("AWS region (default: the AWS default chain). A name the AWS SDK would refuse at every request (not dot-separated labels of letters, digits and inner hyphens) is refused by lint and at start.").Default(""),
			service.NewStringField("endpoint").Description("A custom S3 endpoint URL (http or https; user information such as `user:password@` is refused: credentials go in `credentials`; so is a query string or fragment, which the AWS SDK refuses at every request).").Default(""),
			service.NewBoolField("force_path_style").Description("Path-style bucket addressing (needed by most S3 stand-ins).").Default(false),
			service.NewStringField("expected_bucket_owner").Description("Account id (12 digits) the bucket must belong to (sent with every request).").Default(""),
			service.NewIntField("list_page_size").Description("Keys per ListObjectsV2 page.").Default(1000).Advanced(),
			service.NewObjectField("credentials",
				service.NewStringField("profile").Description("Shared config profile.").Default(""),
				service.NewStringField("id").Description("Access key id.").Default(""),
				service.NewStringField("secret").Description("Secret access key.").Default("").Secret(),
				service.NewStringField("token").Description("Session token.").Default("").Secret(),
				service.NewStringField("role").Description("Role ARN to assume (`arn:aws:iam::<account>:role/<name>`; with STS, at its regional endpoint, not at `endpoint`; a stand-in STS is named by AWS_ENDPOINT_URL_STS). Any other form is refused by lint and at start; under `lint --skip-env-var-check` an ARN with an empty partition, account id or name (`arn:aws:iam::${ACCOUNT_ID}:role/dms`, the variable unset) is left to the start.").Default(""),
				service.NewStringField("role_external_id").Description("External id for the role.").Default(""),
			).Description("Explicit credentials; by default the AWS default chain is used. Temporary credentials (an assumed role, a credential_process, web identity) are renewed 30 to 60 s before they expire (an instance role's 5 minutes before), so that no request reaches S3 signed with credentials that expired on the way.").Advanced(),
			service.NewObjectField("checkpoint",
				service.NewStringEnumField("store", "file", "s3", "cache", "none").Description("Where the position is kept.").Default("file"),
				service.NewStringField("key").Description("Checkpoint name (file name, object key or cache key). Default: derived from the bucket or directory, the folders and the table paths, as the listing uses them (`dms` and `/dms/`, `hr/employee` and `hr/employee/` name the same checkpoint); a change of the table definition changes it, and a first start under it is refused while the store keeps this job's checkpoint under another default key (see Delivery and checkpoints).").Default(""),
				service.NewStringField("directory").Description("Directory of the file store.").Default("checkpoints"),
				service.NewStringField("bucket").Description("Bucket of the s3 store (default: `bucket`). Refused with another store.").Default(""),
				service.NewStringField("cache").Description("Cache resource of the cache store (refused at start when no such resource is declared). Refused with another store.").Default(""),
				service.NewDurationField("interval").Description("How often the position is saved. 0 saves as soon as acknowledgements move it (writes coalesce while one is in progress) and keeps at most 4 emitted batches outside the saved position, which bounds duplicates after a crash to 4 × batch_size rows.").Default("5s"),
				service.NewDurationField("lease").Description("s3 store: how long an instance's claim lasts without a write. At least 1s, and with the s3 store at least twice `interval` (which refreshes it), or the config is refused. With `interval: 0`, whatever the store, a save (or a retry of a failed one) is also tried every third of it.").Default("30s"),
			).Description("Checkpoint (resume position) settings."),
		)
}

func init() {
	service.MustRegisterBatchInput("aws_s3_dms", inputSpec(), func(conf *service.ParsedConfig, res *service.Resources) (service.BatchInput, error) {
		return newInput(conf, res)
	})
}

// ---- configuration ----

type inputConf struct {
	bucket, directory, folder, cdcPath string
	def                                *tabledef.Definition
	mode                               string
	cdcStartNow                        bool
	poll, lateCheck, progressEvery     time.Duration
	requestTimeout                     time.Duration
	lateProcess                        bool
	ignoreHeader                       int
	cdcIgnoreHeader                    bool
	csv                                dmscsv.Settings
	maxRow, batchSize, batchBytes      int
	emitTableStart, restartChanged     bool
	emitCDCStart                       bool
	badStop                            bool
	aws                                awsconf.Config
	expectedOwner                      string
	pageSize                           int
	ckStore, ckKey, ckDir, ckBucket    string
	ckCache                            string
	ckInterval, ckLease                time.Duration
	// ckSource names the data read ("s3://bucket" or "directory <dir>"),
	// stored with the checkpoint (see checkLayout); ckSiblings is,
	// for a default key, the start of the default keys of every table
	// definition on that data (see movedCheckpoint), "" for an explicit key.
	ckSource, ckSiblings string
}

// lintConf is the input's lint rule: every check of parseConf, with an
// empty bucket and directory left to the start under lint
// --skip-env-var-check only (an unset ${BUCKET}, see lintcheck).
func lintConf(pc *service.ParsedConfig) error {
	_, err := parseConfig(pc, true)
	return err
}

func parseConf(pc *service.ParsedConfig) (*inputConf, error) { return parseConfig(pc, false) }

func parseConfig(pc *service.ParsedConfig, lint bool) (*inputConf, error) {
	c := &inputConf{}
	var err error
	str := func(dst *string, path ...string) {
		if err == nil {
			*dst, err = pc.FieldString(path...)
			if err != nil {
				err = fmt.Errorf("%s: %w", strings.Join(path, "."), err)
			}
		}
	}
	dur := func(dst *time.Duration, path ...string) {
		if err == nil {
			*dst, err = pc.FieldDuration(path...)
			if err == nil && *dst <= 0 {
				err = fmt.Errorf("%s must be positive", strings.Join(path, "."))
			}
		}
	}
	integer := func(dst *int, path ...string) {
		if err == nil {
			*dst, err = pc.FieldInt(path...)
		}
	}
	boolean := func(dst *bool, path ...string) {
		if err == nil {
			*dst, err = pc.FieldBool(path...)
		}
	}
	var cdcStart, late, delim, rowDelim, bad string
	str(&c.bucket, "bucket")
	str(&c.directory, "directory")
	str(&c.folder, "bucket_folder")
	str(&c.cdcPath, "cdc_path")
	str(&c.mode, "mode")
	str(&cdcStart, "cdc_start")
	dur(&c.poll, "poll_interval")
	dur(&c.requestTimeout, "request_timeout")
	str(&late, "late_files")
	dur(&c.lateCheck, "late_file_check_interval")
	dur(&c.progressEvery, "progress_interval")
	integer(&c.ignoreHeader, "ignore_header_rows")
	boolean(&c.cdcIgnoreHeader, "cdc_ignore_header_rows")
	str(&delim, "csv_delimiter")
	str(&rowDelim, "csv_row_delimiter")
	boolean(&c.csv.RFC4180, "rfc4180")
	integer(&c.maxRow, "max_row_size")
	integer(&c.batchSize, "batch_size")
	integer(&c.batchBytes, "batch_bytes")
	boolean(&c.emitTableStart, "emit_table_start")
	boolean(&c.emitCDCStart, "emit_cdc_start")
	boolean(&c.restartChanged, "restart_changed_files")
	str(&bad, "bad_files")
	str(&c.aws.Region, "region")
	str(&c.aws.Endpoint, "endpoint")
	boolean(&c.aws.ForcePathStyle, "force_path_style")
	str(&c.expectedOwner, "expected_bucket_owner")
	integer(&c.pageSize, "list_page_size")
	str(&c.aws.Profile, "credentials", "profile")
	str(&c.aws.ID, "credentials", "id")
	str(&c.aws.Secret, "credentials", "secret")
	str(&c.aws.Token, "credentials", "token")
	str(&c.aws.Role, "credentials", "role")
	str(&c.aws.RoleExternalID, "credentials", "role_external_id")
	str(&c.ckStore, "checkpoint", "store")
	str(&c.ckKey, "checkpoint", "key")
	str(&c.ckDir, "checkpoint", "directory")
	str(&c.ckBucket, "checkpoint", "bucket")
	str(&c.ckCache, "checkpoint", "cache")
	if err == nil {
		if c.ckInterval, err = pc.FieldDuration("checkpoint", "interval"); err == nil && c.ckInterval < 0 {
			err = errors.New("checkpoint.interval must not be negative")
		}
	}
	dur(&c.ckLease, "checkpoint", "lease")
	if err == nil && c.ckLease < time.Second {
		// The s3 store judges a claim's age by S3's clock in whole
		// seconds, and with checkpoint.interval 0 a third of the lease
		// paces the saves of every store (a lease under 3ns made that a
		// zero ticker: a panic at the first Connect).
		err = fmt.Errorf("checkpoint.lease: must be at least 1s (the s3 store judges a claim's age in whole seconds, and with checkpoint.interval 0 saves are paced by a third of it), got %s", c.ckLease)
	}
	if err != nil {
		return nil, err
	}
	// Enums: Benthos' lint accepts any case ("File", "Full-Load") and
	// `run --chilled` any value at all; both used to run as the default
	// (a checkpoint.store of "File" or "S3" kept no checkpoint).
	for _, e := range []struct {
		field string
		v     *string
		opts  []string
	}{
		{"mode", &c.mode, []string{"full-load", "cdc", "full-load-and-cdc"}},
		{"cdc_start", &cdcStart, []string{"beginning", "now"}},
		{"late_files", &late, []string{"skip", "process"}},
		{"bad_files", &bad, []string{"skip", "stop"}},
		{"checkpoint.store", &c.ckStore, []string{"file", "s3", "cache", "none"}},
	} {
		if *e.v, err = oneOf(e.field, *e.v, e.opts...); err != nil {
			return nil, err
		}
	}
	c.cdcStartNow = cdcStart == "now"
	c.lateProcess = late == "process"
	c.badStop = bad == "stop"
	if lint && lintcheck.EmptyIsPlaceholder() && c.bucket == "" && c.directory == "" {
		c.bucket = "bucket-from-the-environment"
	}
	if (c.bucket == "") == (c.directory == "") {
		return nil, errors.New("exactly one of bucket and directory must be set")
	}
	if strings.HasSuffix(c.bucket, "--x-s3") {
		// S3 Express One Zone directory buckets list keys in no lexical
		// order and take no StartAfter: the order of files and the
		// checkpoint positions would not hold.
		return nil, fmt.Errorf("bucket: %q is an S3 Express One Zone directory bucket, which lists keys out of lexical order and without StartAfter; aws_s3_dms reads files in key order and needs a general purpose bucket", c.bucket)
	}
	if err := c.aws.Validate(); err != nil {
		// also with a directory: the s3 checkpoint store uses these
		return nil, err
	}
	if !pc.Contains("table_definition") {
		return nil, errors.New("table_definition: required")
	}
	raw, err := pc.FieldAny("table_definition")
	if err != nil {
		return nil, fmt.Errorf("table_definition: %w", err)
	}
	if c.def, err = tabledef.FromAny(raw); err != nil {
		return nil, fmt.Errorf("table_definition: %w", err)
	}
	if c.mode != "full-load" && strings.Trim(c.cdcPath, "/") == "" {
		return nil, fmt.Errorf("cdc_path: required when mode is %s (DMS: cdcPath is required for ongoing replication)", c.mode)
	}
	if c.ignoreHeader != 0 && c.ignoreHeader != 1 {
		return nil, fmt.Errorf("ignore_header_rows: must be 0 or 1, got %d", c.ignoreHeader)
	}
	c.csv.Delimiter = dmscsv.Unescape(delim)
	c.csv.RowDelimiter = dmscsv.Unescape(rowDelim)
	if err := c.csv.Validate(); err != nil {
		return nil, err
	}
	if c.directory != "" {
		if err := c.checkInsideDirectory(); err != nil {
			return nil, err
		}
	}
	if c.maxRow <= 0 {
		return nil, fmt.Errorf("max_row_size: must be positive, got %d", c.maxRow)
	}
	if c.batchSize <= 0 {
		return nil, fmt.Errorf("batch_size: must be positive, got %d", c.batchSize)
	}
	if c.batchBytes <= 0 {
		return nil, fmt.Errorf("batch_bytes: must be positive, got %d", c.batchBytes)
	}
	if c.requestTimeout <= 0 {
		return nil, fmt.Errorf("request_timeout: must be positive, got %v", c.requestTimeout)
	}
	if c.expectedOwner != "" && !accountID.MatchString(c.expectedOwner) {
		// S3 answers every request with 400 InvalidBucketOwnerAWSAccountID.
		return nil, fmt.Errorf("expected_bucket_owner: must be a 12-digit AWS account id, got %q", c.expectedOwner)
	}
	if c.pageSize <= 0 || c.pageSize > 1000 {
		return nil, fmt.Errorf("list_page_size: must be 1..1000, got %d", c.pageSize)
	}
	if c.directory != "" && c.ckStore == "s3" && c.ckBucket == "" {
		return nil, errors.New("checkpoint.bucket: required for the s3 store when reading a directory")
	}
	if c.ckStore == "s3" && c.ckInterval > 0 && c.ckLease < 2*c.ckInterval {
		return nil, fmt.Errorf("checkpoint.lease: %s must be at least twice checkpoint.interval (%s), which refreshes it", c.ckLease, c.ckInterval)
	}
	if c.ckStore == "cache" && c.ckCache == "" {
		return nil, errors.New("checkpoint.cache: required for the cache store")
	}
	// Set for another store (most likely checkpoint.store forgotten, left
	// at file): the position would go to a local file, silently.
	if c.ckStore != "cache" && c.ckCache != "" {
		return nil, fmt.Errorf("checkpoint.cache: only the cache store uses it (checkpoint.store is %s)", c.ckStore)
	}
	if c.ckStore != "s3" && c.ckBucket != "" {
		return nil, fmt.Errorf("checkpoint.bucket: only the s3 store uses it (checkpoint.store is %s)", c.ckStore)
	}
	// Spelled as the listing uses them, so that "dms" and "/dms/",
	// "hr/zeta" and "hr/zeta/" or "./data" and "data" name the same
	// checkpoint (forms other than these hash as before).
	dir := c.directory
	if dir != "" {
		dir = filepath.Clean(dir)
	}
	if c.bucket != "" {
		c.ckSource = "s3://" + c.bucket
	} else if real, err := checkpoint.RealPath(dir); err == nil {
		// "data", "./data" and "/srv/data" alike, and so a directory
		// named through a symbolic link (a working directory reached
		// through one, as a shell's $PWD may be) and by its real path.
		c.ckSource = "directory " + real
	} else {
		c.ckSource = "directory " + dir
	}
	if c.ckKey == "" {
		parts := []string{c.bucket, dir, strings.Trim(c.folder, "/"), strings.Trim(c.cdcPath, "/")}
		for _, t := range c.def.Tables {
			tp := strings.Trim(t.Path, "/")
			if tp != "" {
				tp += "/"
			}
			parts = append(parts, t.Owner, t.Name, tp)
		}
		name := c.bucket
		if name == "" {
			name = filepath.Base(dir)
		}
		name = sanitize(name)
		if c.ckStore == "file" && len(name) > maxCkName {
			// The file name must fit in 255 bytes; the hash of the
			// whole layout keeps it unique.
			name = name[:maxCkName]
		}
		c.ckSiblings = fmt.Sprintf("aws_s3_dms-%s-", name)
		c.ckKey = fmt.Sprintf("%s%s.json", c.ckSiblings, shortHash(parts...))
		if c.ckStore == "s3" {
			c.ckKey = "dmsbridge-checkpoints/" + c.ckKey
			c.ckSiblings = "dmsbridge-checkpoints/" + c.ckSiblings
		}
	}
	if c.ckStore == "s3" && c.ckBucket == "" {
		c.ckBucket = c.bucket
	}
	if c.ckStore == "s3" && c.ckBucket == c.bucket {
		for _, t := range c.def.Tables {
			if p := joinPrefix(c.folder, t.Path); strings.HasPrefix(c.ckKey, p) {
				return nil, fmt.Errorf("checkpoint.key: %q lies under the full-load path %q of table %s", c.ckKey, p, t.QualifiedName())
			}
		}
		if p := joinPrefix(c.folder, c.cdcPath); c.mode != "full-load" && strings.HasPrefix(c.ckKey, p) {
			return nil, fmt.Errorf("checkpoint.key: %q lies under the CDC path %q", c.ckKey, p)
		}
	}
	if c.ckStore == "file" && (strings.Contains(c.ckKey, "/") || strings.Contains(c.ckKey, `\`) || c.ckKey == "." || c.ckKey == "..") {
		return nil, fmt.Errorf("checkpoint.key: %q must be a plain file name for the file store", c.ckKey)
	}
	if c.ckStore == "file" && c.directory != "" {
		// The same check for a checkpoint file inside the directory read:
		// it (and its temporary files) would be listed and read as rows.
		for _, key := range keysInDirectory(c.directory, c.ckDir, c.ckKey) {
			for _, t := range c.def.Tables {
				if p := joinPrefix(c.folder, t.Path); strings.HasPrefix(key, p) {
					return nil, fmt.Errorf("checkpoint.directory: %q lies under the full-load path %q of table %s in directory %q: the checkpoint file would be read as a full-load file; put it elsewhere", c.ckDir, p, t.QualifiedName(), c.directory)
				}
			}
			if p := joinPrefix(c.folder, c.cdcPath); c.mode != "full-load" && strings.HasPrefix(key, p) {
				return nil, fmt.Errorf("checkpoint.directory: %q lies under the CDC path %q in directory %q: the checkpoint file would be read as a CDC file; put it elsewhere", c.ckDir, p, c.directory)
			}
		}
	}
	return c, nil
}

// keysInDirectory returns the keys (relative, "/"-separated) under which
// the file name in dir may be listed when the directory root is read, none
// when dir is not inside root. Paths are compared as written (made
// absolute, cleaned), and again with symbolic links resolved, so that a
// dir reaching into root through a link (or a root named through one) is
// found: the listing follows links that stay inside root, so the file
// would be read under its real place too.
func keysInDirectory(root, dir, name string) []string {
	var keys []string
	for _, resolve := range []bool{false, true} {
		absRoot, err1 := absPath(root, resolve)
		absDir, err2 := absPath(dir, resolve)
		if err1 != nil || err2 != nil {
			continue
		}
		rel, err := filepath.Rel(absRoot, absDir)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		if key := path.Join(filepath.ToSlash(rel), name); !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	return keys
}

// absPath makes p absolute and clean and, with resolve, resolves its
// symbolic links (checkpoint.RealPath).
func absPath(p string, resolve bool) (string, error) {
	if resolve {
		return checkpoint.RealPath(p)
	}
	return filepath.Abs(p)
}

// accountID is the form of an AWS account id.
var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// oneOf returns v, in lower case, when it is one of opts (which Benthos'
// lint compares without case), and otherwise an error naming the field.
func oneOf(field, v string, opts ...string) (string, error) {
	if l := strings.ToLower(v); slices.Contains(opts, l) {
		return l, nil
	}
	return "", fmt.Errorf("%s: %q is not one of %s", field, v, strings.Join(opts, ", "))
}

// checkInsideDirectory refuses, in directory mode, a bucket_folder, cdc_path
// or TablePath that leads out of the directory with "..": every listing of
// it would be refused (see dirSource.list), so the pipeline would only log
// and retry.
func (c *inputConf) checkInsideDirectory() error {
	out := func(prefix string) bool {
		p := strings.TrimSuffix(prefix, "/")
		return p != "" && !filepath.IsLocal(filepath.FromSlash(p))
	}
	if out(joinPrefix(c.folder, "")) {
		return fmt.Errorf("bucket_folder: %q leads out of directory %s", c.folder, c.directory)
	}
	if c.mode != "full-load" && out(joinPrefix(c.folder, c.cdcPath)) {
		return fmt.Errorf("cdc_path: %q (under bucket_folder %q) leads out of directory %s", c.cdcPath, c.folder, c.directory)
	}
	for _, t := range c.def.Tables {
		if out(joinPrefix(c.folder, t.Path)) {
			return fmt.Errorf("table_definition: table %s: TablePath %q (under bucket_folder %q) leads out of directory %s", t.QualifiedName(), t.Path, c.folder, c.directory)
		}
	}
	return nil
}

// maxCkName is the longest name part of a default checkpoint file name:
// "aws_s3_dms-" + name + "-" + 16 hex digits + ".json" must fit in the 255
// bytes of a file name.
const maxCkName = 255 - len("aws_s3_dms-") - 1 - 16 - len(".json")

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// ---- the input ----

// ackPoint is what an acknowledged batch lets the checkpoint move to.
type ackPoint struct {
	pos  checkpoint.Position
	hwm  string
	late []string // late files done, a capped view of the append-only in.lateDone
	figs figView  // the statistics once this batch is done
}

// pendingBatch is an emitted batch kept for redelivery until the
// contiguous acknowledgement point passes it (go-back-N: a nack of an
// earlier batch re-sends it even when it was acknowledged).
type pendingBatch struct {
	id     uint64
	recipe batchRecipe // to make the batch again for a redelivery
	rows   int
	size   int    // bytes retained by recipe, for the bound on retained batches
	first  string // the first row's dms_position, for the log
	// Under input.mu:
	attempts  int
	due       time.Time
	gen       uint64 // the current delivery; acks of earlier ones are ignored
	queued    bool   // in input.redeliver, waiting to be delivered again
	delivered bool   // given out at least once (a batch queued behind a nack may not be)
}

// item is the next thing to read: a file, or a table-start control.
type item struct {
	obj        object
	tableStart bool
	cdcStart   bool
	late       bool
	// resume point inside obj
	offset, line int64
	resumed      bool
	// reopened: a download of it was cut and obj is now the version being
	// read; listedSize is obj's size before, the one the table's totals
	// counted.
	reopened   bool
	listedSize int64
}

type input struct {
	conf  *inputConf
	res   *service.Resources
	log   *service.Logger
	stats *stats

	src   source
	store checkpoint.Store

	tracker *checkpoint.Tracker[ackPoint]

	// reading state (ReadBatch goroutine only)
	phase      checkpoint.Phase
	tableIdx   int
	tableReady bool // the current table has been listed
	queue      []item
	cur        *fileReader
	curItem    item
	curMeta    *fileMeta
	lastPos    checkpoint.Position
	hwm        string
	lateSeq    int
	lateDone   []string
	// releaseClaim ends this input's claim on its checkpoint (see
	// checkpoint.Claim), taken at the first Connect, released at Close.
	releaseClaim func()
	known        map[string]bool     // CDC keys <= hwm seen by the last late check
	lastCDC      readFile            // the newest CDC file read to its end (directory: watched for growth)
	seen         *checkpoint.SeenSet // listed CDC keys, bounded, stored with the checkpoint
	prevSeen     *checkpoint.Seen    // the record of the run before, to find files that came while stopped
	seenSnap     atomic.Pointer[checkpoint.Seen]
	seenSkipped  int64 // late files skipped that seenSnap records (in.mu)
	nextPoll     time.Time
	nextLate     time.Time
	nextProg     time.Time
	cdcStarted   bool
	finished     bool // full-load mode: nothing more to read
	cdcAfter     string
	cdcSet       bool
	listAfter    string
	skipHeader   bool
	resumeFL     *checkpoint.Position
	rowsPending  int64
	lastArena    int

	// shared with ack goroutines and the saver
	mu sync.Mutex
	// emitted holds every batch emitted and not yet passed by the
	// contiguous acknowledgement point, in emission order (ids contiguous);
	// redeliver, the ones queued for delivery again, in emission order.
	emitted      []*pendingBatch
	emittedBytes int
	redeliver    []*pendingBatch
	resentCopies uint64        // batches re-sent after an earlier batch's nack (copies), for the log
	progress     chan struct{} // signalled when the contiguous point moves (retained-batch bound)
	wake         chan struct{}
	acked        *checkpoint.State // its Figures are ackedFigs, made when it is saved
	ackedFigs    figView
	dirty        bool
	fatal        error
	fatalOnce    sync.Once
	// stopErr: stopped on a bad object (bad_files: stop) until a restart;
	// not connected, Connect returns it (guarded by mu).
	stopErr   error
	saverStop chan struct{}
	// Batches contiguously acknowledged (covered by acked) and covered by
	// the last saved checkpoint (interval 0s: ReadBatch waits when
	// maxUnsaved emitted batches are not saved); savedSig is closed at each
	// save.
	ackedContig, savedContig uint64
	saveFailed               bool
	savedSig                 chan struct{}
	ackNotify                chan struct{} // signalled on every checkpoint move when interval is 0
	saverDone                chan struct{}
	connected                bool
	offline                  bool // the source stopped answering: not connected (for /ready) until a probe succeeds
	// refused is S3's refusal (403, NoSuchBucket, ...) that made the input
	// report itself not connected, reported by the next Connect with a
	// wait from refuseBo; refusing holds until rows are read again.
	refused  error
	refusing bool
	// staleAWS: S3 itself refused a request (ExpiredToken, AccessDenied,
	// ...): each probe until it accepts one again loads the AWS
	// configuration anew into s3 first (see Connect).
	staleAWS bool
	s3       *swapS3
	repeats  int // not-connected episodes (source unreachable) since rows were last read
	refuseBo backoff.ExponentialBackOff
	// connFails paces the log of a lasting Connect failure.
	connFails outage.Tracker
	box       box.Boxer // per-row metadata values without an allocation each (ReadBatch only)
	closeOnce sync.Once
	bgCtx     context.Context
	bgCancel  context.CancelFunc
	listCalls func()

	// Under mu: the last save's error, and the acked state the last
	// successful save wrote. endUnsaved: full-load mode, the full load is
	// done but its checkpoint could not be saved; Connect tries again, and
	// the input ends only once it is saved.
	saveErr    error
	savedAcked *checkpoint.State
	endUnsaved error
}

// fileMeta holds the per-file metadata values, boxed once per file.
type fileMeta struct {
	phase, schema, table, bucket, key, etag, lastModified any
	posPrefix                                             []byte
	table_                                                int
	tmpl                                                  map[string]any
}

// metaTemplate is the file's metadata, with placeholders for the per-row
// keys. Each row's map is a clone of it (one copy of the map's memory)
// with the per-row values written in place, made with room for the keys
// the processor adds, so no map grows on the way to the output.
func (fm *fileMeta) metaTemplate() map[string]any {
	if fm.tmpl == nil {
		t := make(map[string]any, 14)
		t["dms_phase"] = fm.phase
		if fm.schema != nil {
			t["dms_schema"] = fm.schema
			t["dms_table"] = fm.table
		}
		t["s3_bucket"] = fm.bucket
		t["s3_key"] = fm.key
		t["s3_etag"] = fm.etag
		t["s3_last_modified"] = fm.lastModified
		t["dms_line"] = int64(0)
		t["dms_offset"] = int64(0)
		t["dms_position"] = ""
		fm.tmpl = t
	}
	return fm.tmpl
}

func newInput(pc *service.ParsedConfig, res *service.Resources) (*input, error) {
	c, err := parseConf(pc)
	if err != nil {
		return nil, err
	}
	// The AWS configuration resolves without a request (credentials are
	// fetched at the first one): a missing profile or region is a config
	// error, not a Connect that fails at every retry.
	if c.bucket != "" || c.ckStore == "s3" {
		if _, err := awsconf.Load(context.Background(), c.aws); err != nil {
			return nil, err
		}
	}
	// As Benthos' own cache users do: a missing resource is a config
	// error, not a Connect that fails at every retry.
	if c.ckStore == "cache" && !res.HasCache(c.ckCache) {
		return nil, fmt.Errorf("checkpoint.cache: no cache resource named %q (declare it under cache_resources)", c.ckCache)
	}
	in := &input{conf: c, res: res, log: res.Logger(), wake: make(chan struct{}, 1), ackNotify: make(chan struct{}, 1), progress: make(chan struct{}, 1)}
	// Waits after a refusal: 1 s, growing to 10 s (jittered), so that an
	// operator's fix is seen within seconds and the log holds a line per wait.
	in.refuseBo = backoff.ExponentialBackOff{InitialInterval: time.Second, RandomizationFactor: 0.2, Multiplier: 2,
		MaxInterval: 10 * time.Second, Stop: backoff.Stop, Clock: backoff.SystemClock}
	in.refuseBo.Reset()
	var names [][2]string
	for _, t := range c.def.Tables {
		names = append(names, [2]string{t.Owner, t.Name})
	}
	in.stats = newStats(res.Label(), res.Metrics(), names)
	in.listCalls = func() { in.stats.mLists.Incr(1) }
	return in, nil
}

// swapS3 is the S3 client of the source and of the s3 checkpoint store,
// replaced by Connect while S3 refuses the input (see staleAWS).
type swapS3 struct{ c atomic.Pointer[s3.Client] }

func (s *swapS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return s.c.Load().ListObjectsV2(ctx, in, opts...)
}

func (s *swapS3) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return s.c.Load().GetObject(ctx, in, opts...)
}

func (s *swapS3) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return s.c.Load().PutObject(ctx, in, opts...)
}

// newS3Client loads the AWS configuration (credentials from wherever it
// finds them, read now) and builds the S3 client.
func newS3Client(ctx context.Context, c *inputConf) (*s3.Client, error) {
	awsConf, err := awsconf.Load(ctx, c.aws)
	if err != nil {
		return nil, err
	}
	cl := s3.NewFromConfig(awsConf, func(o *s3.Options) {
		o.UsePathStyle = c.aws.ForcePathStyle
		o.DisableLogOutputChecksumValidationSkipped = true
		if o.Credentials != nil {
			o.Credentials = awsconf.TypedCredentials{CredentialsProvider: o.Credentials}
		}
	})
	if err := c.aws.CheckResolvedEndpoint(cl.Options().BaseEndpoint, "AWS_ENDPOINT_URL_S3"); err != nil {
		return nil, err
	}
	return cl, nil
}

// Connect tries connect once a second while it fails, but returns (and so
// has the engine log) a lasting failure only at growing intervals, up to once
// a minute (see outage.Tracker): an S3 outage used to log an ERROR line a
// second for as long as it lasted. A back-off error (a refusal, a stop) is
// returned at once: it carries its own wait; except a lapsed lease, checked
// locally each second until a checkpoint write confirms the claim (S3
// unreachable for the checkpoint store lapses it, and it logged a line a
// second too).
func (in *input) Connect(ctx context.Context) error {
	err := in.connFails.Retry(ctx, in.connect, func(err error) bool {
		var bo *service.ErrBackOff
		var le *leaseLapseError
		return errors.As(err, &bo) && !errors.As(bo.Err, &le)
	})
	if err == nil {
		in.connFails.Recovered()
	}
	return err
}

func (in *input) connect(ctx context.Context) error {
	in.mu.Lock()
	connected, offline := in.connected, in.offline
	in.mu.Unlock()
	if connected {
		in.mu.Lock()
		fatal, stopErr := in.fatal, in.stopErr
		redeliver := len(in.redeliver) > 0
		in.mu.Unlock()
		if fatal == nil && stopErr != nil && redeliver {
			// Stopped on a bad object, but batches read before it were
			// nacked: connected until they are redelivered (ReadBatch
			// reports the stop again after them).
			return nil
		}
		if fatal == nil {
			fatal = stopErr
		}
		if fatal != nil {
			return service.NewErrBackOff(fmt.Errorf("input stopped: %w", fatal), max(in.conf.poll, time.Second))
		}
		in.mu.Lock()
		endUnsaved := in.endUnsaved
		in.mu.Unlock()
		if endUnsaved != nil {
			// full-load mode, finished, its checkpoint not saved: end
			// (ReadBatch) only once a save goes through.
			if err := in.waitSaved(ctx); err != nil {
				return service.NewErrBackOff(fmt.Errorf("the full load is done, but its checkpoint cannot be saved: %w; the input ends once it is (ending now, the next run would load everything since the last save again)", err), time.Second)
			}
			in.mu.Lock()
			in.endUnsaved = nil
			in.mu.Unlock()
			in.log.Infof("the finished full load is saved to %s: ending", in.store)
		}
		if in.leaseLapsed() {
			// Checked locally: the saver keeps writing, and the first
			// write that goes through confirms the claim (or fences).
			return service.NewErrBackOff(&leaseLapseError{in.store.(*checkpoint.S3)}, min(in.conf.ckLease/3, time.Second))
		}
		in.mu.Lock()
		refused, refusing, staleAWS := in.refused, in.refusing, in.staleAWS
		in.refused = nil
		in.mu.Unlock()
		if refused != nil {
			// S3 refused a request, or a read failed again although S3
			// answered the probe: the engine shows this error (/ready
			// 503) and waits before connecting again, so that the
			// failing request is not repeated at once, over and over.
			wait := in.refuseBo.NextBackOff()
			return service.NewErrBackOff(fmt.Errorf("%w; trying again in %v", refused, wait.Round(time.Millisecond)), wait)
		}
		if offline && staleAWS && in.s3 != nil {
			// The credentials S3 refused may have been replaced where the
			// AWS configuration finds them (a shared credentials file
			// rewritten by whatever rotates it, a profile edited): the
			// client built at the first Connect would sign with the old
			// ones for good (the SDK reads static credentials once), so the
			// probe goes with a client built again, as the Kinesis output
			// does after a refusal.
			cl, err := newS3Client(ctx, in.conf)
			if err != nil {
				return service.NewErrBackOff(fmt.Errorf("%s refuses the input, and loading the AWS configuration again failed: %w", in.describeSource(), err), in.refuseBo.NextBackOff())
			}
			in.s3.c.Store(cl)
		}
		if offline {
			// Back only once the source answers a listing again.
			if _, _, err := in.src.list(ctx, in.cdcPrefix(), "", ""); err != nil {
				if refusing {
					return service.NewErrBackOff(fmt.Errorf("%s still refuses the input: %w", in.describeSource(), err), in.refuseBo.NextBackOff())
				}
				return fmt.Errorf("%s still unreachable: %w", in.describeSource(), err)
			}
			in.mu.Lock()
			in.offline = false
			in.mu.Unlock()
			in.log.Infof("%s answers again: reading on%s", in.describeSource(), failedFor(in.connFails.Recovered()))
		}
		return nil
	}
	c := in.conf
	if in.bgCtx == nil {
		in.bgCtx, in.bgCancel = context.WithCancel(context.Background())
	}
	var s3c *swapS3
	if c.bucket != "" || c.ckStore == "s3" {
		cl, err := newS3Client(ctx, c)
		if err != nil {
			return err
		}
		s3c = &swapS3{}
		s3c.c.Store(cl)
		in.s3 = s3c
	}
	var owner *string
	if c.expectedOwner != "" {
		owner = &c.expectedOwner
	}
	if c.bucket != "" {
		in.src = &s3Source{client: s3c, bucketName: c.bucket, expectedOwner: owner, pageSize: int32(c.pageSize), lists: in.listCalls, timeout: c.requestTimeout}
	} else {
		in.src = &dirSource{root: c.directory}
	}
	switch c.ckStore {
	case "file":
		in.store = &checkpoint.File{Path: filepath.Join(c.ckDir, c.ckKey)}
	case "s3":
		st := &checkpoint.S3{Client: s3c, Bucket: c.ckBucket, Key: c.ckKey, Owner: instanceID(), Lease: c.ckLease, Timeout: c.requestTimeout}
		if c.ckBucket == c.bucket {
			st.ExpectedBucketOwner = c.expectedOwner
		}
		in.store = st
	case "cache":
		in.store = &cacheStore{res: in.res, name: c.ckCache, key: c.ckKey}
	default:
		in.store = checkpoint.None{}
	}
	if id := checkpoint.ClaimID(in.store); id != "" && in.releaseClaim == nil {
		release, err := checkpoint.Claim(id, fmt.Sprintf("the aws_s3_dms input %q reading %s", in.res.Label(), in.describeSource()))
		if err != nil {
			return err
		}
		in.releaseClaim = release
	}
	st, err := in.store.Load(ctx)
	if err != nil {
		return err
	}
	// An s3 Load claims the checkpoint under this attempt's owner id. A
	// Connect that fails after it gives the claim back: the engine's next
	// attempt has another owner id and would be refused by this one for the
	// lease, with "held by another running instance" instead of the error,
	// and so would a corrected stream on the same key.
	unclaim := func() {}
	if s3st, ok := in.store.(*checkpoint.S3); ok {
		back := checkpoint.State{}
		if st != nil {
			back = *st
		}
		unclaim = func() {
			back.Released = true
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.requestTimeout)
			defer cancel()
			if err := s3st.Save(rctx, &back); err != nil {
				in.log.Warnf("giving back the claim on checkpoint %s after a failed connect: %v", s3st, err)
			}
		}
	}
	// An s3 store's Load creates the checkpoint empty (a claim) when there
	// is none, and a failed Connect leaves it so: no position yet either.
	if c.ckSiblings != "" && (st == nil || st.Position.Phase == checkpoint.PhaseNone && !st.CDCStartSet && st.Figures == nil) {
		if err := in.movedCheckpoint(ctx, s3c); err != nil {
			unclaim()
			return err
		}
	}
	if err := in.restore(ctx, st); err != nil {
		unclaim()
		return err
	}
	in.tracker = checkpoint.NewTracker[ackPoint]()
	in.mu.Lock()
	a := ackPoint{pos: in.lastPos, hwm: in.hwm, late: in.lateDone[:len(in.lateDone):len(in.lateDone)], figs: in.stats.figures()}
	in.acked, in.ackedFigs = in.stateFor(a), a.figs
	in.seenSkipped = in.stats.skippedLate()
	in.dirty = true
	in.connected = true
	in.saverStop = make(chan struct{})
	in.saverDone = make(chan struct{})
	in.mu.Unlock()
	if err := in.save(ctx); err != nil {
		// Not connected: the engine calls Connect again, which starts over
		// (nothing was emitted yet), and Close waits for no saver.
		in.mu.Lock()
		in.connected = false
		in.saverStop, in.saverDone = nil, nil
		in.mu.Unlock()
		unclaim()
		return err
	}
	go in.saver()
	in.log.Infof("aws_s3_dms reading %s (mode %s), checkpoint %s, resuming at %s%s", in.describeSource(), c.mode, in.storeLabel(), in.lastPos, failedFor(in.connFails.Recovered()))
	return nil
}

// movedCheckpoint refuses a first start under the default key while the
// store holds the checkpoint of this job under another default key: the
// default key hashes the table list, so a table added, removed or renamed
// (or a TablePath changed) gives a new one, and starting over under it would
// load every table and re-read every CDC file again without a word. The
// checkpoints looked at are those of the same store whose default key has
// the same name part (the bucket or directory name): one is this job's when
// it was written for the same bucket or directory (when it records it),
// its keys lie under this bucket_folder, and it names a table of this
// definition; another group of tables of a job
// split by tables (no table in common) is not. The file store's directory
// and the s3 store's prefix are listed (an s3 listing refused, e.g. without
// s3:ListBucket, skips the check); the cache store cannot be listed.
func (in *input) movedCheckpoint(ctx context.Context, s3c *swapS3) error {
	c := in.conf
	type found struct {
		key string
		st  *checkpoint.State
	}
	var cands []found
	switch store := in.store.(type) {
	case *checkpoint.File:
		paths, err := filepath.Glob(filepath.Join(c.ckDir, c.ckSiblings+"*.json"))
		if err != nil {
			return nil
		}
		for _, p := range paths {
			if filepath.Base(p) == c.ckKey {
				continue
			}
			if st, err := (&checkpoint.File{Path: p}).Load(ctx); err == nil && st != nil {
				cands = append(cands, found{filepath.Base(p), st})
			}
		}
	case *checkpoint.S3:
		var token *string
		for {
			// Bounded as every request of the s3 store (request_timeout):
			// an S3 that stops answering fails this Connect, which is
			// logged and retried, instead of holding it for minutes.
			rctx, cancel := context.WithTimeout(ctx, c.requestTimeout)
			out, err := s3c.ListObjectsV2(rctx, &s3.ListObjectsV2Input{Bucket: &store.Bucket, Prefix: &c.ckSiblings, ContinuationToken: token, ExpectedBucketOwner: nilIfEmpty(store.ExpectedBucketOwner)})
			if err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
				err = fmt.Errorf("no answer within request_timeout (%v): %w", c.requestTimeout, err)
			}
			cancel()
			if err != nil {
				if apiCode(err) == "AccessDenied" {
					return nil
				}
				return fmt.Errorf("checkpoint %s holds no position; listing %s to look for this job's checkpoint under an earlier default key failed: %w", in.store, c.ckSiblings, err)
			}
			for _, o := range out.Contents {
				if o.Key == nil || *o.Key == c.ckKey || !strings.HasSuffix(*o.Key, ".json") {
					continue
				}
				other := &checkpoint.S3{Client: s3c, Bucket: store.Bucket, Key: *o.Key, ExpectedBucketOwner: store.ExpectedBucketOwner, Timeout: c.requestTimeout}
				st, err := other.Peek(ctx)
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					// Not answered: passing it over could start over
					// under the new key, what this check prevents.
					return fmt.Errorf("checkpoint %s holds no position; reading %s to look for this job's checkpoint under an earlier default key failed: %w", in.store, *o.Key, err)
				}
				if err == nil && st != nil {
					cands = append(cands, found{*o.Key, st})
				}
			}
			if out.NextContinuationToken == nil || out.IsTruncated == nil || !*out.IsTruncated {
				break
			}
			token = out.NextContinuationToken
		}
	default:
		return nil
	}
	for _, f := range cands {
		if common := in.sameJob(f.st); len(common) > 0 {
			return fmt.Errorf("checkpoint %s holds no position (a first start), but %q in the same store, kept for the same data and for the table(s) of this definition %s, does: the default checkpoint key changes with the table definition (a table added, removed or renamed, a TablePath changed), and starting over under the new key would load every table and re-read every CDC file again. To go on from it with this definition (checked against it as any checkpoint is), set checkpoint.key: %s; to start over instead, remove it (or set another checkpoint.key)",
				in.store, f.key, strings.Join(common, ", "), f.key)
		}
	}
	return nil
}

// sameJob tells whether a checkpoint found under another default key was
// written for this job (see movedCheckpoint): it returns the tables of this
// definition it names, or nil.
func (in *input) sameJob(st *checkpoint.State) []string {
	c := in.conf
	p := st.Position
	if p.Phase == checkpoint.PhaseNone && !st.CDCStartSet && st.Figures == nil {
		return nil // an empty claim: nothing to go on from
	}
	if st.Source != "" && st.Source != c.ckSource {
		return nil
	}
	// Its keys lie under this bucket_folder (the source of a checkpoint of
	// before sources were stored is not known either).
	prefix, ok := joinPrefix(c.folder, ""), false
	for _, k := range []string{st.CDCHighWater, st.CDCStartAfter, p.Key} {
		ok = ok || (k != "" && strings.HasPrefix(k, prefix))
	}
	if !ok {
		return nil
	}
	var common []string
	if f := st.Figures; f != nil && len(f.Tables) > 0 {
		for _, d := range c.def.Tables {
			for _, ft := range f.Tables {
				if ft.Schema == d.Owner && ft.Table == d.Name {
					common = append(common, d.QualifiedName())
					break
				}
			}
		}
		return common
	}
	// No figures (written before they were stored): the table its
	// full-load position is in, or every table when it cannot tell.
	for _, d := range c.def.Tables {
		if p.Phase != checkpoint.PhaseFullLoad || strings.HasPrefix(p.Key, joinPrefix(c.folder, d.Path)) {
			common = append(common, d.QualifiedName())
		}
	}
	if len(common) > 0 && p.Phase != checkpoint.PhaseFullLoad {
		return []string{"(its tables are not recorded: written by a version of before 2026-11-28)"}
	}
	return common
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// failedFor tells, after a connection failure that lasted d, for how long it
// failed ("" when d is 0: nothing failed).
func failedFor(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf(" (after failing for %v)", d.Round(time.Second))
}

func (in *input) describeSource() string {
	if in.conf.bucket != "" {
		return "s3://" + in.conf.bucket + "/" + in.conf.folder
	}
	return in.conf.directory
}

var instanceSeq atomic.Int64

// instanceID names this input instance in an s3 checkpoint claim.
func instanceID() string {
	h, _ := filepathHostname()
	return fmt.Sprintf("%s-pid%d-%d-%d", h, pid(), time.Now().UnixNano(), instanceSeq.Add(1))
}

// restore sets the reading state from a stored checkpoint.
func (in *input) restore(ctx context.Context, st *checkpoint.State) error {
	c := in.conf
	// A Connect that failed after restore runs it again: start from nothing.
	in.queue, in.finished, in.resumeFL, in.tableIdx, in.lateSeq = nil, false, nil, 0, 0
	in.phase = checkpoint.PhaseFullLoad
	if c.mode == "cdc" {
		in.phase = checkpoint.PhaseCDC
	}
	flDone := false // a finished full load the definition no longer matches
	if st != nil {
		var err error
		if flDone, err = in.checkLayout(st); err != nil {
			return err
		}
		in.cdcAfter, in.cdcSet = st.CDCStartAfter, st.CDCStartSet
		in.hwm = st.CDCHighWater
		in.lateDone = append([]string(nil), st.LateDone...)
		in.prevSeen = st.CDCSeen
		in.seenSnap.Store(st.CDCSeen)
	}
	if !in.cdcSet && c.mode != "full-load" {
		in.cdcSet = true
		if c.cdcStartNow {
			newest, err := in.newestCDCKey(ctx)
			if err != nil {
				return err
			}
			in.cdcAfter = newest
		}
	}
	if st == nil || st.Position.Phase == checkpoint.PhaseNone {
		in.lastPos = checkpoint.Position{Phase: checkpoint.PhaseNone}
		return nil
	}
	p := st.Position
	in.lastPos = p
	switch {
	case p.Phase == checkpoint.PhaseFullLoad && in.phase == checkpoint.PhaseFullLoad && flDone:
		// Nothing of the full load is left: on to CDC (or the end).
		in.tableIdx = len(c.def.Tables)
		in.stats.seed(st.Figures, len(c.def.Tables))
	case p.Phase == checkpoint.PhaseFullLoad && in.phase == checkpoint.PhaseFullLoad:
		in.tableIdx = p.Seq
		in.resumeFL = &p
		in.stats.seed(st.Figures, p.Seq)
	case p.Phase == checkpoint.PhaseCDC && c.mode != "full-load":
		if c.mode == "full-load-and-cdc" {
			in.stats.seed(st.Figures, len(c.def.Tables))
		} else {
			in.stats.seed(st.Figures, 0)
		}
		in.phase = checkpoint.PhaseCDC
		in.lateSeq = p.Seq
		if p.Key != "" && !p.Done {
			objs, _, err := in.src.list(ctx, p.Key, "", "")
			if err != nil {
				return err
			}
			if len(objs) == 0 || objs[0].Key != p.Key {
				// deleted since: reported as a bad file when opened
				it := goneItem(p)
				it.late = p.Key < in.hwm
				in.queue = append(in.queue, it)
			} else {
				it, ok, err := in.resumeItem(objs[0], p)
				if err != nil {
					return err
				}
				if ok {
					it.late = p.Key < in.hwm
					in.queue = append(in.queue, it)
				} else if p.Key < in.hwm && !slices.Contains(in.lateDone, p.Key) {
					// A late file read to its end, saved before it was marked
					// done: done, or CDC start would take it for a file that
					// appeared while the input was stopped and read it again.
					in.lateDone = append(in.lateDone, p.Key)
				}
			}
			if p.Key > in.hwm {
				in.hwm = p.Key // listing goes on after the file being finished
			}
		}
	case p.Phase == checkpoint.PhaseCDC && c.mode == "full-load":
		in.finished = true
	}
	return nil
}

// checkLayout refuses a checkpoint written for another layout (possible with
// an explicit checkpoint.key; the default key changes with it): its keys are
// compared with the listed ones and its table index picks the table to
// resume, so a checkpoint of another bucket_folder, cdc_path or table list
// would skip files (taken as read, or as late) or tables, or read tables
// again. Tables added after the one being loaded, or at any point once the
// full load is done, are no change to the position and are accepted. A
// full-load position whose full load was finished (its figures show every
// table it knew completed: CDC had not acknowledged a row yet) has nothing
// left to resume when every table of the definition was part of it: tables
// removed (or reordered) since are accepted then, and done tells restore to
// go on after the full load.
func (in *input) checkLayout(st *checkpoint.State) (done bool, err error) {
	c := in.conf
	mismatch := func(format string, args ...any) error {
		return fmt.Errorf("checkpoint %s does not match the configuration: %s; resuming from it would skip or repeat files. Restore the previous bucket_folder, cdc_path and table definition, or start over with another checkpoint.key (or remove the checkpoint)",
			in.store, fmt.Sprintf(format, args...))
	}
	if st.Source != "" && st.Source != c.ckSource {
		return false, fmt.Errorf("checkpoint %s was written by an input reading %s, not %s: its position names objects of that data, and resuming from it here would pass over files of this one (or read them again). Give this input its own checkpoint (another checkpoint.key or checkpoint.directory), or remove it to start over; if the data was moved here unchanged (same keys and ETags), remove the checkpoint's \"source\" field to go on from it",
			in.store, st.Source, c.ckSource)
	}
	p := st.Position
	if c.mode != "full-load" {
		prefix := in.cdcPrefix()
		keys := []string{st.CDCHighWater, st.CDCStartAfter}
		if p.Phase == checkpoint.PhaseCDC {
			keys = append(keys, p.Key)
		}
		for _, k := range keys {
			if k != "" && !strings.HasPrefix(k, prefix) {
				return false, mismatch("it holds the CDC key %q, which is not under %q (bucket_folder %q, cdc_path %q)", k, prefix, c.folder, c.cdcPath)
			}
		}
	}
	if p.Phase == checkpoint.PhaseCDC && c.mode != "cdc" && noFullLoad(st.Figures) {
		// Written by mode: cdc (the default key does not change with the
		// mode): its CDC position is no sign of a finished full load.
		return false, fmt.Errorf("checkpoint %s was written with mode: cdc: it is in CDC (%s) but no table of it was ever loaded; resuming it with mode: %s would skip the full load. Keep mode: cdc, or start over with another checkpoint.key (or remove the checkpoint) to make the full load",
			in.store, p, c.mode)
	}
	if p.Phase != checkpoint.PhaseFullLoad || c.mode == "cdc" {
		return false, nil
	}
	// finished: the full load it records is over and every table of the
	// definition was part of it (tables removed or reordered since, none
	// added): nothing is left to load.
	finished := false
	if f := st.Figures; f != nil && len(f.Tables) > 0 && p.Seq == len(f.Tables)-1 {
		finished = true
		loaded := map[[2]string]bool{}
		for _, t := range f.Tables {
			finished = finished && t.End != 0
			loaded[[2]string{t.Schema, t.Table}] = true
		}
		for _, d := range c.def.Tables {
			finished = finished && loaded[[2]string{d.Owner, d.Name}]
		}
	}
	mismatchFL := func(format string, args ...any) (bool, error) {
		if finished {
			in.log.Infof("checkpoint %s: the full load it records is finished; the table list changed since (%s), but every table of it was loaded: going on after the full load", in.store, fmt.Sprintf(format, args...))
			return true, nil
		}
		return false, mismatch(format, args...)
	}
	if p.Seq < 0 || p.Seq >= len(c.def.Tables) {
		return mismatchFL("it is in the full load of table %d, but the definition has %d tables", p.Seq+1, len(c.def.Tables))
	}
	if f := st.Figures; f != nil && len(f.Tables) > 0 {
		for i := 0; i <= p.Seq; i++ {
			d := c.def.Tables[i]
			if i >= len(f.Tables) {
				return mismatchFL("it is in the full load of table %d, but it knew %d tables", p.Seq+1, len(f.Tables))
			}
			if ft := f.Tables[i]; ft.Schema != d.Owner || ft.Table != d.Name {
				return mismatchFL("table %d of its full load was %s.%s, the definition's is %s", i+1, ft.Schema, ft.Table, d.QualifiedName())
			}
		}
	}
	if prefix := joinPrefix(c.folder, c.def.Tables[p.Seq].Path); p.Key != "" && !strings.HasPrefix(p.Key, prefix) {
		return false, mismatch("it is at %q in the full load of table %s, which is not under %q (bucket_folder %q, TablePath %q)", p.Key, c.def.Tables[p.Seq].QualifiedName(), prefix, c.folder, c.def.Tables[p.Seq].Path)
	}
	return false, nil
}

// noFullLoad reports whether figures stored with a checkpoint show that no
// table was ever loaded: every table still Before load, as mode: cdc leaves
// them. A full load marks every table it loads (empty ones too) with a start
// and an end before CDC begins. Figures of a checkpoint from before figures
// were stored (nil) tell nothing.
func noFullLoad(f *checkpoint.Figures) bool {
	if f == nil || len(f.Tables) == 0 {
		return false
	}
	for _, t := range f.Tables {
		if t.Start != 0 || t.End != 0 || t.Rows != 0 {
			return false
		}
	}
	return true
}

// resumeItem decides how to go on with the object at the checkpoint.
func (in *input) resumeItem(o object, p checkpoint.Position) (item, bool, error) {
	if p.Done {
		return item{}, false, nil // read to its end and acknowledged
	}
	if p.ETag != "" && o.ETag != p.ETag {
		if !in.conf.restartChanged {
			return item{}, false, fmt.Errorf("%s: %w: checkpointed ETag %s at offset %d (line %d), now %s; re-upload the original, or set restart_changed_files: true to re-read it from the start",
				in.src.describe(o.Key), errETagChanged, p.ETag, p.Offset, p.Line, o.ETag)
		}
		in.log.Warnf("%s changed since it was checkpointed (ETag %s, now %s): re-reading it from the start", in.src.describe(o.Key), p.ETag, o.ETag)
		return item{obj: o, resumed: true}, true, nil
	}
	// An offset at or past the listed size is not necessarily the end: an
	// object stored with Content-Encoding: gzip lists its compressed size,
	// the offset counts decompressed bytes. openRows tells them apart.
	return item{obj: o, offset: p.Offset, line: p.Line, resumed: true}, true, nil
}

func (in *input) newestCDCKey(ctx context.Context) (string, error) {
	prefix := joinPrefix(in.conf.folder, in.conf.cdcPath)
	newest, token := "", ""
	for {
		objs, next, err := in.src.list(ctx, prefix, "", token)
		if err != nil {
			return "", err
		}
		for _, o := range objs {
			if !strings.HasSuffix(o.Key, "/") { // directory markers are no CDC files
				newest = o.Key
			}
		}
		if next == "" {
			return newest, nil
		}
		token = next
	}
}

// stateFor is the state to save once a is acknowledged, but its Figures,
// a.figs, made only when it is saved (see figView).
func (in *input) stateFor(a ackPoint) *checkpoint.State {
	return &checkpoint.State{
		Source:        in.conf.ckSource,
		Position:      a.pos,
		CDCStartAfter: in.cdcAfter,
		CDCStartSet:   in.cdcSet,
		CDCHighWater:  a.hwm,
		LateDone:      a.late, // read only: a capped view of the append-only in.lateDone
		CDCSeen:       in.seenSnap.Load(),
	}
}

// ---- checkpoint saving ----

func (in *input) saver() {
	defer close(in.saverDone)
	every := in.conf.ckInterval
	if every == 0 {
		every = in.conf.ckLease / 3 // heartbeat of an s3 claim
	}
	t := time.NewTicker(every)
	defer t.Stop()
	// A failing store is retried at every tick (or acknowledgement): the
	// error is logged once, then at most every ckLogEvery with the count.
	var fails int
	var logged time.Time
	for {
		select {
		case <-in.saverStop:
			return
		case <-in.ackNotify:
		case <-t.C:
		}
		in.mu.Lock()
		_, heartbeat := in.store.(*checkpoint.S3)
		need := in.dirty || heartbeat
		in.mu.Unlock()
		if !need {
			continue
		}
		ctx, cancel := context.WithTimeout(in.bgCtx, 30*time.Second)
		err := in.save(ctx)
		cancel()
		switch {
		case err != nil && in.bgCtx.Err() != nil:
			// Given up by Close, which saves again.
		case err != nil:
			fails++
			if fails == 1 || time.Since(logged) >= ckLogEvery {
				logged = time.Now()
				in.log.Errorf("saving checkpoint to %s: %v (%d failed attempts in a row; the pipeline goes on, but a restart now repeats every row acknowledged since the last save)", in.store, err, fails)
			}
		case fails > 0:
			in.log.Infof("checkpoint saved again to %s, after %d failed attempts", in.store, fails)
			fails = 0
		}
	}
}

// ckLogEvery is the least time between two log lines about a checkpoint
// store that keeps failing.
const ckLogEvery = 10 * time.Second

// save writes the acknowledged state. A fenced S3 checkpoint stops the input.
// storeLabel names the checkpoint store for the log, a file by its absolute
// path: a relative checkpoint.directory (./checkpoints in the shipped
// configs) is another file from another working directory.
func (in *input) storeLabel() string {
	if f, ok := in.store.(*checkpoint.File); ok {
		if abs, err := filepath.Abs(f.Path); err == nil {
			return "file " + abs
		}
	}
	return in.store.String()
}

func (in *input) save(ctx context.Context) error {
	in.mu.Lock()
	src := in.acked
	st := *src
	figs := in.ackedFigs
	st.CDCSeen = in.seenSnap.Load() // listing moves on between acknowledgements
	skipped := in.seenSkipped       // and the late files it skipped with it
	in.dirty = false
	contig := in.ackedContig
	in.mu.Unlock()
	st.Figures = figs.figures(skipped)
	err := in.store.Save(ctx, &st)
	in.mu.Lock()
	if err != nil {
		in.dirty = true
		if errors.Is(err, checkpoint.ErrFenced) && in.fatal == nil {
			in.fatal = err
		}
	} else {
		in.savedAcked = src
		in.savedContig = max(in.savedContig, contig)
	}
	in.saveFailed, in.saveErr = err != nil, err
	if err != nil {
		in.stats.mCkErrors.Incr(1)
		in.stats.mCkFailing.Set(1)
	} else {
		in.stats.mCkFailing.Set(0)
	}
	if in.savedSig != nil {
		close(in.savedSig) // wake acknowledgements waiting for this save
	}
	in.savedSig = make(chan struct{})
	in.mu.Unlock()
	return err
}

// waitSaved returns nil once the acknowledged state (in.acked) is saved. It
// wakes the saver (saves are never concurrent: the saver makes them all
// while connected) and waits for its next save; it returns that save's
// error if it failed.
func (in *input) waitSaved(ctx context.Context) error {
	for {
		in.mu.Lock()
		done := in.acked == in.savedAcked
		sig, stop := in.savedSig, in.saverStop
		in.mu.Unlock()
		if done {
			return nil
		}
		select {
		case in.ackNotify <- struct{}{}:
		default:
		}
		select {
		case <-sig:
		case <-stop:
			return errors.New("input closed")
		case <-ctx.Done():
			return ctx.Err()
		}
		in.mu.Lock()
		err := in.saveErr
		in.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// ---- acknowledgements ----

// maxUnsaved bounds, with checkpoint.interval 0s, the batches emitted but
// not yet covered by a saved checkpoint: ReadBatch waits for a save before
// emitting more. Everything that can come again after a crash was emitted
// and not saved, so this is the most batches a crash can duplicate, while
// leaving room for a batch in each pipeline stage and one being saved.
const maxUnsaved = 4

// waitWindow blocks until fewer than maxUnsaved emitted batches are outside
// the saved checkpoint, the last save failed (errors are logged; a failing
// store does not stop the pipeline), the input closes, or ctx ends.
//
// A nack ends the wait with errRedeliverFirst: the rejected batch holds the
// checkpoint back until its redelivery is acknowledged, so no save would
// come before the redelivery; readOnce goes back to its redeliveries.
func (in *input) waitWindow(ctx context.Context) error {
	for {
		tracked := in.tracker.Tracked()
		in.mu.Lock()
		if len(in.redeliver) > 0 {
			in.mu.Unlock()
			return errRedeliverFirst
		}
		if tracked-min(tracked, in.savedContig) < maxUnsaved || in.saveFailed || in.savedSig == nil {
			in.mu.Unlock()
			return nil
		}
		sig, stop := in.savedSig, in.saverStop
		in.mu.Unlock()
		select {
		case <-sig:
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-in.wake: // a nack: the loop finds the redeliveries
		}
	}
}

// errRedeliverFirst tells readOnce that batches were queued for redelivery
// while it waited.
var errRedeliverFirst = errors.New("redeliveries first")

// maxRetained and maxRetainedBytes bound the batches kept for redelivery
// (emitted, not yet passed by the contiguous acknowledgement point): with
// go-back-N an acknowledged batch is kept while an earlier one is not
// acknowledged. ReadBatch waits before reading new rows past either bound
// (at least one batch is always allowed).
const (
	maxRetained      = 1024
	maxRetainedBytes = 256 << 20
)

// waitRetained blocks while the retained batches are at their bound.
func (in *input) waitRetained(ctx context.Context) error {
	for {
		in.mu.Lock()
		n, size := len(in.emitted), in.emittedBytes
		queued := len(in.redeliver) > 0
		in.mu.Unlock()
		if n == 0 || queued || (n < maxRetained && size < maxRetainedBytes) {
			return nil
		}
		select {
		case <-in.progress:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ackFunc acknowledges delivery gen of pb.
func (in *input) ackFunc(pb *pendingBatch, gen uint64) service.AckFunc {
	var once sync.Once
	return func(ctx context.Context, err error) error {
		once.Do(func() { in.settle(pb, gen, err) })
		return nil
	}
}

// settle applies the acknowledgement of delivery gen of pb.
//
// A nack of batch k queues k and every batch emitted after it, acknowledged
// or not (go-back-N): those were or will be written after k's rejected
// delivery, so they are written again after k's redelivery, and the last
// copy of every row is in order. Their current deliveries are superseded:
// an acknowledgement or nack of them is ignored, and the checkpoint waits
// for the acknowledgement of the redeliveries (the tracker entries are
// reopened).
func (in *input) settle(pb *pendingBatch, gen uint64, err error) {
	in.mu.Lock()
	if gen != pb.gen {
		in.mu.Unlock() // a superseded delivery: the batch is or was queued again
		return
	}
	if err == nil {
		hi, contig, moved := in.tracker.AckCount(pb.id)
		if moved {
			in.dropEmittedLocked(contig)
		}
		in.mu.Unlock()
		if moved {
			in.setAcked(in.stateFor(hi), hi.figs, contig)
			select {
			case in.progress <- struct{}{}:
			default:
			}
		}
		return
	}
	if len(in.emitted) == 0 || pb.id < in.emitted[0].id || pb.id-in.emitted[0].id >= uint64(len(in.emitted)) {
		in.mu.Unlock() // cannot happen: a batch not acknowledged is never dropped
		in.log.Errorf("batch %d (from %s) rejected but no longer tracked: not redelivered", pb.id, pb.first)
		return
	}
	pb.attempts++
	attempts := pb.attempts // for the log line, after the unlock: the redelivery's own settle may count the next attempt
	// 100 ms, doubling up to redeliverMaxWait: a batch rejected for good (a
	// record the output can never write) is retried, and logged, twice a
	// minute (the input's warning and the engine's error: four lines), not
	// every 3.2 s forever.
	backoff := min(time.Duration(1<<min(pb.attempts, 20))*50*time.Millisecond, redeliverMaxWait)
	pb.due = time.Now().Add(backoff)
	later := in.emitted[pb.id-in.emitted[0].id:]
	for _, e := range later {
		e.gen++ // supersede the current delivery (if any)
		in.tracker.Reopen(e.id)
		e.queued = true
	}
	copies := uint64(len(later) - 1)
	in.resentCopies += copies
	total := in.resentCopies
	in.redeliver = in.redeliver[:0:0]
	for _, e := range in.emitted {
		if e.queued {
			in.redeliver = append(in.redeliver, e)
		}
	}
	in.mu.Unlock()
	in.log.Warnf("batch of %d rows (from %s) was rejected downstream (%v): redelivering it in %s (attempt %d), before newer rows, followed by the %d batches emitted after it (copies of the ones already written, so that the last copy of every row is in order; %d such copies so far)", pb.rows, pb.first, err, backoff, attempts, copies, total)
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// redeliverMaxWait bounds the wait before a rejected batch is redelivered.
const redeliverMaxWait = 30 * time.Second

// dropEmittedLocked forgets the batches passed by the contiguous point
// (ids below contig). in.mu held.
func (in *input) dropEmittedLocked(contig uint64) {
	n := 0
	for n < len(in.emitted) && in.emitted[n].id < contig {
		in.emittedBytes -= in.emitted[n].size
		in.emitted[n] = nil
		n++
	}
	in.emitted = in.emitted[n:]
	if len(in.emitted) == 0 {
		in.emitted = nil
	}
}

func firstPosition(b service.MessageBatch) string {
	if len(b) == 0 {
		return "?"
	}
	v, _ := b[0].MetaGet("dms_position")
	return v
}

// ---- reading ----

func (in *input) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	in.mu.Lock()
	fatal, connected := in.fatal, in.connected
	in.mu.Unlock()
	if fatal != nil {
		// Fenced: stopped for good. Not connected, so that /ready says so
		// (Connect returns the reason); logged once.
		in.fatalOnce.Do(func() { in.log.Errorf("%v: input stopped, not connected", fatal) })
		return nil, nil, service.ErrNotConnected
	}
	if !connected {
		return nil, nil, service.ErrNotConnected
	}
	for {
		if err := in.waitLease(ctx); err != nil {
			var le *leaseLapseError
			if errors.As(err, &le) {
				// Emitting nothing until a write confirms the claim: not
				// connected meanwhile (Connect says why, without a request).
				return nil, nil, service.ErrNotConnected
			}
			if errors.Is(err, checkpoint.ErrFenced) {
				continue // reported above
			}
			return nil, nil, err
		}
		batch, ack, err := in.readOnce(ctx)
		if errors.Is(err, errLeaseLapsed) {
			continue // the lease ran out while the CDC folder was idle
		}
		if batch == nil && ack == nil && err == nil {
			continue // a nack came while reading: redeliveries first
		}
		if err == nil {
			in.mu.Lock()
			in.repeats = 0
			in.staleAWS = false
			if in.refusing {
				in.refusing = false
				in.refuseBo.Reset()
				in.log.Infof("%s takes the input's requests again", in.describeSource())
			}
			in.mu.Unlock()
		}
		return batch, ack, err
	}
}

// leaseLapsed reports whether the s3 store's claim ran out without a
// successful write (see checkpoint.S3.HeldUntil): a standby may have taken
// over and be reading the same rows, so nothing may be emitted until a
// write confirms the claim, or fails fenced and stops the input.
func (in *input) leaseLapsed() bool {
	s, ok := in.store.(*checkpoint.S3)
	return ok && !time.Now().Before(s.HeldUntil())
}

// waitLease returns nil when the s3 claim holds (or another store is
// used). Otherwise it waits for the next save, and returns the fence error
// if the input was fenced, or an error naming the lapse if the claim is
// still not confirmed (logged by the engine, which calls ReadBatch again).
func (in *input) waitLease(ctx context.Context) error {
	for first := true; ; first = false {
		in.mu.Lock()
		fatal, sig, stop := in.fatal, in.savedSig, in.saverStop
		in.mu.Unlock()
		if fatal != nil {
			return fatal
		}
		if !in.leaseLapsed() {
			return nil
		}
		if !first {
			return &leaseLapseError{in.store.(*checkpoint.S3)}
		}
		select {
		case <-sig: // a save ended
		case <-stop:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(in.conf.ckLease/3, time.Second)):
		}
	}
}

// stopped reports a stop on a bad object (bad_files: stop).
func (in *input) stopped() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stopErr != nil
}

// badStopError: a bad object with bad_files: stop.
type badStopError struct{ err error }

func (e *badStopError) Error() string {
	return e.err.Error() + " (bad_files: stop: the input reads nothing more until it is restarted; replace or remove the object, or set bad_files: skip)"
}

func (e *badStopError) Unwrap() error { return e.err }

// leaseLapseError: the s3 store's claim ran out without a successful write.
type leaseLapseError struct{ s *checkpoint.S3 }

func (e *leaseLapseError) Error() string {
	return fmt.Sprintf("checkpoint %s: the lease of this instance (%s) ran out %s ago without a successful write; emitting nothing until a write confirms it, since another instance may have taken over", e.s, e.s.Lease, time.Since(e.s.HeldUntil()).Round(time.Millisecond))
}

// errLeaseLapsed ends an idle wait for CDC files when the lease ran out.
var errLeaseLapsed = errors.New("lease lapsed")

// readOnce is one ReadBatch attempt. It returns nothing at all when the
// batch read was queued behind redeliveries (a nack came while reading).
func (in *input) readOnce(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	// Nacked batches (and those emitted after them) first, in emission order.
	for {
		in.mu.Lock()
		var pb *pendingBatch
		var due time.Time
		if len(in.redeliver) > 0 {
			pb = in.redeliver[0]
			due = pb.due
		}
		in.mu.Unlock()
		if pb == nil {
			break
		}
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(wait):
			case <-in.wake: // an older batch may have been nacked meanwhile
			}
			continue
		}
		if in.leaseLapsed() {
			return nil, nil, nil // ReadBatch waits for the lease
		}
		in.mu.Lock()
		if len(in.redeliver) == 0 || in.redeliver[0] != pb {
			in.mu.Unlock() // a nack changed the queue meanwhile
			continue
		}
		in.redeliver = in.redeliver[1:]
		pb.queued = false
		gen := pb.gen
		again := pb.delivered
		pb.delivered = true
		in.mu.Unlock()
		// Made anew from the rows as read: processors may have rewritten
		// the messages given out before.
		batch := in.build(pb.recipe)
		if again {
			// Counted once: dms_csv_to_json does not count these rows in
			// its per-table figures again.
			for _, m := range batch {
				m.MetaSetMut("dms_redelivered", true)
			}
		}
		return batch, in.ackFunc(pb, gen), nil
	}
	if in.stopped() {
		// Stopped on a bad object (bad_files: stop): nacked batches read
		// before it are redelivered above, nothing more is read.
		return nil, nil, service.ErrNotConnected
	}
	if err := in.waitRetained(ctx); err != nil {
		return nil, nil, err
	}
	if in.conf.ckInterval == 0 {
		if err := in.waitWindow(ctx); errors.Is(err, errRedeliverFirst) {
			return nil, nil, nil // ReadBatch calls again: redeliveries first
		} else if err != nil {
			return nil, nil, err
		}
	}
	batch, rec, pos, err := in.readRows(ctx)
	if len(batch) == 0 && in.finished {
		// full-load mode: end only once every batch is acknowledged (a nack
		// must still be redelivered).
		if in.tracker.Pending() > 0 {
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-in.wake:
			case <-time.After(20 * time.Millisecond):
			}
			return nil, nil, context.Canceled
		}
		// ... and only once the finished full load is saved: ending
		// unsaved (disk full, directory gone) exits 0 while the checkpoint
		// says the load has not got that far, and the next run of the job
		// loads it all again.
		if err := in.waitSaved(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			in.mu.Lock()
			in.endUnsaved = err
			in.mu.Unlock()
			return nil, nil, service.ErrNotConnected // Connect says why, and tries again
		}
		return nil, nil, service.ErrEndOfInput
	}
	var bs *badStopError
	if errors.As(err, &bs) {
		// Stopped for good on a bad object (logged by badFile): not
		// connected, so that /ready says so; never read again. Rows read
		// before it in this batch still go out, but nothing after: the
		// bad object was taken off the queue, so a later read would go on
		// with the next one.
		in.mu.Lock()
		in.stopErr = err
		in.mu.Unlock()
		if len(batch) == 0 {
			return nil, nil, service.ErrNotConnected
		}
	}
	if len(batch) == 0 {
		in.settleIdle()
		var noCreds *awsconf.CredentialsError
		if err != nil && ctx.Err() == nil && errors.As(err, &noCreds) {
			// No credentials to sign with (a credential_process or the
			// instance metadata service failing, an SSO token expired): no
			// request reaches S3 until that is fixed. Not connected, like
			// a refusal: /ready says why, Connect waits, loads the AWS
			// configuration again and probes.
			in.mu.Lock()
			in.offline, in.refused = true, fmt.Errorf("no AWS credentials to read %s with: %w", in.describeSource(), err)
			first := !in.refusing
			in.refusing, in.staleAWS = true, true
			in.mu.Unlock()
			if first {
				in.log.Errorf("%v: input not connected until credentials can be had", err)
			}
			return nil, nil, service.ErrNotConnected
		}
		if err != nil && ctx.Err() == nil && unreachable(err) {
			// Reported as a lost connection, so that the engine's /ready
			// says so and reconnects (Connect probes) with backoff; reading
			// resumes at the same row.
			// A warning: if it lasts, the reconnection failing at once is
			// the error line (see Connect).
			in.log.Warnf("%v: %s unreachable, input not connected until it answers", err, in.describeSource())
			in.mu.Lock()
			in.offline = true
			if in.repeats++; in.repeats >= 2 {
				// The probe (a listing) succeeded, yet the read failed
				// again (e.g. a 5xx for one object only): wait before the
				// next attempt rather than read again at once.
				in.refused = fmt.Errorf("%s: %w (failed again although the source answered a listing, %d times in a row)", in.describeSource(), err, in.repeats)
				in.refusing = true
			}
			in.mu.Unlock()
			return nil, nil, service.ErrNotConnected
		}
		if err != nil && ctx.Err() == nil && errors.Is(err, errETagChanged) {
			// The object being read changed under a reopen at a row: the
			// input cannot go on at that row until the original is back
			// (or a restart with restart_changed_files). Not connected,
			// Connect saying why, the reopen tried after each wait.
			in.mu.Lock()
			in.offline = true
			in.refused = fmt.Errorf("%w; reading stops at that row until the original object is put back, or the input is restarted with restart_changed_files: true (which re-reads the object from its start)", err)
			first := !in.refusing
			in.refusing = true
			in.mu.Unlock()
			if first {
				in.log.Errorf("%v: input not connected until the object is readable at that row again", err)
			}
			return nil, nil, service.ErrNotConnected
		}
		if err != nil && ctx.Err() == nil && refusedBySource(err) {
			// S3 answers but refuses (bucket deleted, credentials or a
			// policy withdrawn): no row can be read until an operator
			// acts, so the input reports itself not connected (/ready
			// 503 with the refusal, which Connect returns) rather than
			// failing each read while /ready says all is well.
			in.mu.Lock()
			in.offline, in.refused = true, fmt.Errorf("%s refuses the input: %w", in.describeSource(), err)
			first := !in.refusing
			in.refusing, in.staleAWS = true, true
			in.mu.Unlock()
			if first {
				until := "S3 accepts its requests"
				if in.conf.bucket == "" {
					until = "the directory can be read"
				}
				in.log.Errorf("%v: input not connected until %s", err, until)
			}
			return nil, nil, service.ErrNotConnected
		}
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = context.Canceled
		}
		return nil, nil, err
	}
	// An error after rows were read is logged here (the rows go out and the
	// step that failed is tried again at the next read), unless it is
	// ReadBatch's context ending: the engine stopping the stream, no fault;
	// or a bad object with bad_files: stop, which badFile logged.
	if err != nil && (ctx.Err() == nil || !errors.Is(err, ctx.Err())) && !errors.As(err, &bs) {
		if unreachable(err) {
			// A download cut mid-body (or a transport error), reopened at
			// its last whole row by the next read: a warning, as an outage
			// that lasts is an error from the first reconnection failing.
			in.log.Warnf("%v: the rows before it go on; reading goes on at that row (the object reopened there) at the next read", err)
		} else {
			in.log.Errorf("%v", err)
		}
	}
	pb := &pendingBatch{rows: len(batch), first: firstPosition(batch), recipe: rec, size: cap(rec.arena) + len(rec.refs)*int(unsafe.Sizeof(rowRef{})+unsafe.Sizeof((*fileMeta)(nil)))}
	lapsed := in.leaseLapsed()
	in.mu.Lock()
	pb.id = in.tracker.Track(pos)
	in.emitted = append(in.emitted, pb)
	in.emittedBytes += pb.size
	if len(in.redeliver) > 0 || lapsed {
		// A nack arrived while these rows were read: they are newer than
		// every batch queued, so they go after the redeliveries. Or the
		// s3 lease ran out while they were read (a long CDC poll, a
		// pause): they wait, queued, until a write confirms the claim.
		pb.queued = true
		in.redeliver = append(in.redeliver, pb)
		in.mu.Unlock()
		return nil, nil, nil
	}
	pb.delivered = true
	in.mu.Unlock()
	return batch, in.ackFunc(pb, 0), nil
}

// settleIdle makes the position reached without emitting rows (a file read
// to its end, the statistics that go with it) the acknowledged one when
// every emitted batch is acknowledged, so that it is saved now rather than
// with the next batch. An acknowledgement being applied at the same moment
// can only set an earlier position, which is safe (rows read again).
func (in *input) settleIdle() {
	if in.tracker.Pending() > 0 {
		return
	}
	in.mu.Lock()
	same := in.acked != nil && in.acked.Position == in.lastPos && in.acked.CDCHighWater == in.hwm && len(in.acked.LateDone) == len(in.lateDone)
	in.mu.Unlock()
	if same {
		return
	}
	a := ackPoint{pos: in.lastPos, hwm: in.hwm, late: in.lateDone[:len(in.lateDone):len(in.lateDone)], figs: in.stats.figures()}
	in.setAcked(in.stateFor(a), a.figs, in.tracker.Tracked())
}

// setAcked makes st, which covers the first contig emitted batches, the
// state to save, unless a concurrent acknowledgement got further, and wakes
// the saver when saves follow acknowledgements (interval 0s).
func (in *input) setAcked(st *checkpoint.State, figs figView, contig uint64) {
	in.mu.Lock()
	if contig >= in.ackedContig {
		in.acked, in.ackedFigs = st, figs
		in.ackedContig = contig
		in.dirty = true
	}
	in.mu.Unlock()
	if in.conf.ckInterval == 0 {
		select {
		case in.ackNotify <- struct{}{}:
		default:
		}
	}
}

// unreachable tells a transport failure (the source not answering: network
// errors, timeouts, cut bodies, 5xx) from an answer that is an error.
// refusedBySource reports an error answer of S3 that no retry heals by
// itself: 3xx/4xx (access denied, invalid or expired credentials, no such
// bucket, wrong region), except request timeouts and throttling. Per-object
// conditions (gone, changed) are handled before and never get here.
func refusedBySource(err error) bool {
	if errors.Is(err, errNoDirectory) {
		return true // like S3's NoSuchBucket
	}
	if errors.Is(err, errGone) || errors.Is(err, errETagChanged) || errors.Is(err, errBeyondEnd) {
		return false
	}
	if transientCode(err) {
		return false
	}
	sc := httpStatus(err)
	return sc >= 300 && sc < 500 && sc != 408 && sc != 429
}

// transientCode reports an S3 answer that a retry heals although its status
// may be a 4xx: real S3 answers a request that was too slow with 400
// RequestTimeout, and throttles with SlowDown or Throttling.
func transientCode(err error) bool {
	switch apiCode(err) {
	case "RequestTimeout", "SlowDown", "Throttling", "ThrottlingException":
		return true
	}
	return false
}

func unreachable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() >= 500 || transientCode(err)
}

type rowRef struct {
	start, end   int
	line, offset int64
	err          error  // a row the input could not pass on whole (longer than max_row_size)
	ctl          string // control messages (start < 0): table-start or cdc-start
}

// batchRecipe is what a batch's messages are made from: the rows' bytes,
// where each row is, and its file's metadata. A batch kept for redelivery
// keeps its recipe, not its messages: processors may rewrite messages in
// place (dms_csv_to_json does: SetBytes, MetaSetMut), and a redelivered
// batch must carry the rows as read.
type batchRecipe struct {
	arena []byte
	refs  []rowRef
	metas []*fileMeta
}

// build makes the messages of a batch (ReadBatch's goroutine only: it uses
// in.box).
func (in *input) build(r batchRecipe) service.MessageBatch {
	out := make(service.MessageBatch, 0, len(r.refs))
	// Positions are written into one buffer for the batch; each string
	// is a finished region of it, never written again.
	var posBuf []byte
	if len(r.refs) > 0 {
		posBuf = make([]byte, 0, len(r.refs)*(len(r.metas[0].posPrefix)+20))
	}
	for i, row := range r.refs {
		fm := r.metas[i]
		if row.start < 0 { // control message
			m := service.NewMessage(nil)
			m.MetaSetMut("dms_control", row.ctl)
			m.MetaSetMut("dms_phase", fm.phase)
			if fm.schema != nil {
				m.MetaSetMut("dms_schema", fm.schema)
				m.MetaSetMut("dms_table", fm.table)
			}
			m.MetaSetMut("s3_bucket", fm.bucket)
			m.MetaSetMut("dms_position", string(fm.posPrefix)+fmt.Sprintf("%020d", 0))
			out = append(out, m)
			continue
		}
		// The row's metadata is a clone of the file's template with the
		// per-row values written in place, given to the message whole:
		// about half the cost of setting ten keys one by one (see
		// plugins/internal/metamap).
		m := service.NewMessage(r.arena[row.start:row.end:row.end])
		ps := len(posBuf)
		posBuf = appendPosition(posBuf, fm.posPrefix, row.offset)
		md := maps.Clone(fm.metaTemplate())
		md["dms_line"] = in.box.Int64(row.line)
		md["dms_offset"] = in.box.Int64(row.offset)
		md["dms_position"] = in.box.String(unsafe.String(&posBuf[ps], len(posBuf)-ps))
		if !metamap.Set(m, md) {
			for k, v := range md {
				m.MetaSetMut(k, v)
			}
		}
		if row.err != nil {
			m.SetError(row.err)
		}
		out = append(out, m)
	}
	return out
}

// readRows fills one batch. It blocks (until ctx is done) only while the
// batch is empty.
func (in *input) readRows(ctx context.Context) (service.MessageBatch, batchRecipe, ackPoint, error) {
	c := in.conf
	// Sized from the previous batch: appends rarely grow them.
	arena := make([]byte, 0, min(max(in.lastArena+in.lastArena/4, 4096), c.batchBytes+c.maxRow))
	refs := make([]rowRef, 0, c.batchSize)
	metas := make([]*fileMeta, 0, c.batchSize)
	defer func() { in.lastArena = len(arena) }()
	var err error
	defer in.flushRowStats()
	for len(refs) < c.batchSize && len(arena) < c.batchBytes {
		if in.cur == nil {
			it, ok, nerr := in.nextItem(ctx, len(refs) == 0)
			if errors.Is(nerr, errFinished) {
				break
			}
			if nerr != nil {
				err = nerr
				break
			}
			if !ok {
				break
			}
			if it.cdcStart {
				fm := &fileMeta{phase: "cdc", bucket: in.src.bucket(),
					posPrefix: []byte(strings.TrimSuffix(checkpoint.SortKey(checkpoint.PhaseCDC, in.lateSeq, "", 0), "00000000000000000000"))}
				refs = append(refs, rowRef{start: -1, ctl: "cdc-start"})
				metas = append(metas, fm)
				continue
			}
			if it.tableStart {
				fm := in.tableMeta(in.tableIdx)
				refs = append(refs, rowRef{start: -1, ctl: "table-start"})
				metas = append(metas, fm)
				in.lastPos = checkpoint.Position{Phase: checkpoint.PhaseFullLoad, Seq: in.tableIdx, Line: 1}
				continue
			}
			if oerr := in.openItem(it); oerr != nil {
				if errors.Is(oerr, errGone) && !it.resumed {
					in.goneBeforeRead(it, oerr)
					continue
				}
				if errors.Is(oerr, errGone) || errors.Is(oerr, errUnreadable) || errors.Is(oerr, errETagChanged) && it.offset == 0 {
					in.badFile(it, oerr)
					if c.badStop {
						err = &badStopError{oerr}
						break
					}
					in.fileDone(it, 0)
					continue
				}
				if errors.Is(oerr, errETagChanged) {
					// fatal for this position: keep returning it
					in.queue = append([]item{it}, in.queue...)
					err = oerr
					break
				}
				in.queue = append([]item{it}, in.queue...)
				err = oerr
				break
			}
			continue
		}
		if in.cur.pf != nil {
			in.cur.pf.ctx = ctx
		}
		in.cur.cx.ctx = ctx
		row, rerr := in.cur.rows.Next()
		if rerr == io.EOF {
			in.closeCur(true)
			continue
		}
		if rerr != nil {
			var rowErr *dmscsv.RowError
			full := fmt.Errorf("%s (etag %s): %w", in.src.describe(in.curItem.obj.Key), in.cur.etag, rerr)
			size := in.curItem.obj.Size
			if in.cur.size >= 0 {
				size = in.cur.size // the version being read, which may not be the one listed
			}
			if ctx.Err() == nil && (errors.As(rerr, &rowErr) || in.cur.rawStart+in.cur.raw.n >= size) {
				// every byte arrived: the content itself is bad
				in.badFile(in.curItem, full)
				if c.badStop {
					err = &badStopError{full}
					break
				}
				in.closeCur(true)
				continue
			}
			// A transport error (or ReadBatch's context ending while waiting
			// for the network): reopen at the last complete row next time.
			it := in.curItem
			it.offset, it.line, it.resumed = in.cur.rows.Offset(), in.cur.rows.Line(), true
			// Reopen the version being read, which is not the listed one
			// when the object was replaced between listing and reading.
			it.obj.ETag = in.cur.etag
			if !it.reopened {
				it.reopened, it.listedSize = true, it.obj.Size
			}
			if in.cur.size >= 0 {
				it.obj.Size = in.cur.size
			}
			in.closeCur(false)
			in.queue = append([]item{it}, in.queue...)
			if ctx.Err() == nil {
				err = full
			}
			break
		}
		if in.skipHeader && !row.Unterminated {
			in.skipHeader = false
			in.lastPos.Offset, in.lastPos.Line = row.End, row.NextLine
			continue
		}
		// A header row whose quote never closes is the rest of the file:
		// it goes on whole like any unterminated row, not skipped.
		in.skipHeader = false
		if row.Unterminated && !row.TooLong {
			// Nothing is dropped: the tail goes on as one row, which the
			// processor flags (and a dead-letter route keeps).
			in.log.Warnf("%s (etag %s): row at line %d, byte offset %d: %v: passed on whole (%d bytes)",
				in.src.describe(in.curItem.obj.Key), in.cur.etag, row.Line, row.Offset, dmscsv.ErrUnterminatedQuoteAtEOF, len(row.Data))
		}
		var rowErr error
		if row.TooLong {
			// Skipped without holding it; the message carries its first
			// bytes and an error, so a dead-letter route records it and the
			// rows after it go on.
			why := ""
			if row.Unterminated {
				// What made it that long: not a long row among short ones.
				why = "; a quoted field runs from this row to the end of the object (a quote that never closes)"
			}
			rowErr = fmt.Errorf("%s (etag %s): row at line %d, byte offset %d: %w (%d bytes): row of %d bytes not passed on; the message holds its first %d bytes%s",
				in.src.describe(in.curItem.obj.Key), in.cur.etag, row.Line, row.Offset, dmscsv.ErrRowTooLong, c.maxRow, row.Size, len(row.Data), why)
			in.log.Warnf("%v", rowErr)
			in.stats.mLongRows.Incr(1)
		}
		start := len(arena)
		arena = append(arena, row.Data...)
		refs = append(refs, rowRef{start: start, end: len(arena), line: row.Line, offset: row.Offset, err: rowErr})
		metas = append(metas, in.curMeta)
		in.lastPos.Offset, in.lastPos.Line = row.End, row.NextLine
		in.rowsPending++
	}
	in.maybeLogProgress()
	if len(refs) == 0 {
		return nil, batchRecipe{}, ackPoint{}, err
	}
	in.flushRowStats()
	rec := batchRecipe{arena: arena, refs: refs, metas: metas}
	return in.build(rec), rec, ackPoint{pos: in.lastPos, hwm: in.hwm, late: in.lateDone[:len(in.lateDone):len(in.lateDone)], figs: in.stats.figures()}, err
}

// appendPosition appends a row's dms_position: the file's prefix and the
// offset in 20 digits.
func appendPosition(dst, prefix []byte, off int64) []byte {
	dst = append(dst, prefix...)
	var d [20]byte
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + off%10)
		off /= 10
	}
	return append(dst, d[:]...)
}

func (in *input) tableMeta(i int) *fileMeta {
	t := in.conf.def.Tables[i]
	return &fileMeta{phase: "full-load", schema: t.Owner, table: t.Name, bucket: in.src.bucket(),
		posPrefix: []byte(strings.TrimSuffix(checkpoint.SortKey(checkpoint.PhaseFullLoad, i, "", 0), "00000000000000000000")), table_: i}
}

func (in *input) badFile(it item, err error) {
	in.stats.mBadFiles.Incr(1)
	if in.conf.badStop {
		in.log.Errorf("bad object, stopping (bad_files: stop): %v", err)
		return
	}
	in.log.Errorf("bad object, going on with the next one (bad_files: skip): %v", err)
}

// goneBeforeRead handles a listed object that no longer exists when it is
// to be read, before any of it was read (a temporary file renamed to its
// final name, a file deleted): nothing of it is lost, so it is no bad
// object, and it is not processed: it moves neither the position nor the
// high-water mark nor the late-file record. The folder is listed again
// from the last file processed, so that a file replacing it under another
// key, also one sorting before it (cdc_0001.tmp renamed to cdc_0001), is
// read in key order like any other, not skipped as late.
func (in *input) goneBeforeRead(it item, err error) {
	in.log.Warnf("object gone before it was read, not processed (a file that replaces it is read when listed): %v", err)
	if in.phase == checkpoint.PhaseFullLoad {
		// The table's queue is listed anew after the last file done
		// (listTable with a position read to its end), without a second
		// table-start; its totals no longer count the gone object.
		p := checkpoint.Position{Phase: checkpoint.PhaseFullLoad, Seq: in.tableIdx, Done: true}
		if in.lastPos.Phase == checkpoint.PhaseFullLoad && in.lastPos.Seq == in.tableIdx {
			p.Key, p.ETag = in.lastPos.Key, in.lastPos.ETag
		}
		in.resumeFL = &p
		in.queue = nil
		in.tableReady = false
		return
	}
	delete(in.known, it.obj.Key)
	if it.late {
		return // below the mark: what replaces it is late too
	}
	// The files queued after it by polls are let go, and the mark goes
	// back to the last file processed: the next poll lists them again with
	// whatever replaced the gone one (at poll_interval, not at once: a
	// store whose listings lag behind its deletions would otherwise be
	// listed and read in a busy loop).
	keep := make([]item, 0, len(in.queue))
	for _, q := range in.queue {
		if q.late || q.resumed {
			keep = append(keep, q)
			continue
		}
		delete(in.known, q.obj.Key)
	}
	in.queue = keep
	in.listAfter = max(in.hwm, in.cdcAfter)
	in.stats.cdcPending(len(in.queue))
}

// openItem opens a file and prepares its metadata.
func (in *input) openItem(it item) error {
	c := in.conf
	etag := ""
	if it.offset > 0 {
		etag = it.obj.ETag
	}
	fr, err := openRows(in.bgCtx, in.src, it.obj.Key, etag, it.offset, it.line, c.csv, c.maxRow)
	if err != nil {
		return err
	}
	in.cur, in.curItem = fr, it
	seq := in.tableIdx
	if in.phase == checkpoint.PhaseCDC {
		if it.late && !it.resumed {
			in.lateSeq++
		}
		seq = in.lateSeq
	}
	fm := fileMeta{phase: in.phase.String(), bucket: in.src.bucket(), key: it.obj.Key, etag: fr.etag,
		lastModified: fr.lastModified.UTC().Format(time.RFC3339Nano), table_: in.tableIdx}
	if in.phase == checkpoint.PhaseFullLoad {
		t := c.def.Tables[in.tableIdx]
		fm.schema, fm.table = t.Owner, t.Name
	}
	full := checkpoint.SortKey(in.phase, seq, it.obj.Key, 0)
	fm.posPrefix = []byte(full[:len(full)-20])
	in.curMeta = &fm
	in.lastPos = checkpoint.Position{Phase: in.phase, Seq: seq, Key: it.obj.Key, ETag: fr.etag, Offset: max(it.offset, 0), Line: max(it.line, 1)}
	// by line, not offset: a reopen after a cut inside the header row
	// starts past a byte order mark, still on line 1
	in.skipHeader = (it.offset == 0 || it.line == 1) && c.ignoreHeader == 1 && (in.phase == checkpoint.PhaseFullLoad || c.cdcIgnoreHeader)
	return nil
}

// closeCur closes the current file; done tells it was read to its end.
func (in *input) closeCur(done bool) {
	if in.cur == nil {
		return
	}
	in.flushRowStats()
	raw := in.cur.rawStart + in.cur.raw.n // a ranged read starts at rawStart
	in.cur.close()
	in.cur = nil
	if done {
		in.fileDone(in.curItem, raw)
	}
}

func (in *input) fileDone(it item, rawBytes int64) {
	in.lastPos.Done = true
	if in.phase == checkpoint.PhaseFullLoad {
		b := it.obj.Size
		switch {
		case it.reopened:
			// Cut and reopened: the size the listing counted in the
			// table's totals, also when the version read (replaced since
			// the listing) is larger or smaller, so that a completed
			// table is at 100 %, never above.
			b = it.listedSize
		case it.offset > 0:
			// resumed at a restart: the stored bytes up to the end of the
			// version read (the bytes before the offset were read before;
			// rawBytes counts them)
			b = rawBytes
		}
		in.stats.tableProgress(in.tableIdx, 0, b, 1)
		return
	}
	if it.late {
		in.lateDone = append(in.lateDone, it.obj.Key)
		in.stats.lateFileDone()
	} else if it.obj.Key > in.hwm {
		in.hwm = it.obj.Key
	}
	in.stats.cdcFileDone(it.obj.LastModified)
	in.stats.cdcPending(len(in.queue))
	if !it.late {
		in.lastCDC = readFile{key: it.obj.Key, size: rawBytes, warned: rawBytes}
	}
}

// readFile is a CDC file read to its end: its key and the bytes read.
type readFile struct {
	key          string
	size, warned int64 // warned: the size last warned about
}

// checkGrown warns when the newest CDC file read from a local directory
// changed size after it was read to its end: it was written in place
// rather than moved in whole, and the bytes written since are not read (a
// processed CDC file is never read again). S3 objects appear whole.
func (in *input) checkGrown() {
	d, ok := in.src.(*dirSource)
	if !ok || in.lastCDC.key == "" {
		return
	}
	fi, err := os.Stat(d.path(in.lastCDC.key))
	if err != nil || fi.Size() == in.lastCDC.warned {
		return
	}
	in.lastCDC.warned = fi.Size()
	in.log.Warnf("CDC file %s changed after it was read to its end (%d bytes read, %d bytes now): what was written to it since is not read, as a processed CDC file is never read again; write CDC files elsewhere and move them into the folder whole", d.describe(in.lastCDC.key), in.lastCDC.size, fi.Size())
}

// flushRowStats adds the rows emitted from the current file to the stats.
func (in *input) flushRowStats() {
	if in.rowsPending == 0 {
		return
	}
	if in.phase == checkpoint.PhaseFullLoad {
		in.stats.tableProgress(in.curMeta.table_, in.rowsPending, 0, 0)
	} else {
		in.stats.cdcRows(in.rowsPending)
	}
	in.rowsPending = 0
}
