package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"gopkg.in/yaml.v3"

	"github.com/dmsbridge/dmsbridge/plugins/all"
)

// The configuration of every dmsbridge component, field by field: a bad
// value is refused when the config is linted (`dmsbridge lint`, the lint
// `run` does first, the streams API) and when the component is built (the
// start, also under `run --chilled`, which ignores lint errors), each time
// with an error naming the field, and never quoting a secret. Valid edge
// values pass both. Every field of every component must have a row here
// (TestConfigCheckCoversEveryField), so that a field added without its
// checks shows.

// secretMark is in every secret the base configs and the rows give: no
// error may quote it.
const secretMark = "S3CR3T-MARK"

// checkedComponents are dmsbridge's components, by kind, with the base
// config every row starts from (merged with the row's set) and the rest of
// a stream config around it.
var checkedComponents = []struct {
	kind, name, base string
}{
	{"input", "aws_s3_dms", `
directory: ../../config/sample
table_definition: ../../config/sample/table-definition.json
cdc_path: cdcfile
credentials: {id: AKIDEXAMPLE, secret: ` + secretMark + `-base}
checkpoint: {store: none}
`},
	{"processor", "dms_csv_to_json", `
table_definition: ../../config/sample/table-definition.json
`},
	{"output", "aws_kinesis_streams", `
stream: dms-target
region: us-east-1
endpoint: http://127.0.0.1:1
credentials: {id: AKIDEXAMPLE, secret: ` + secretMark + `-base}
`},
	{"metrics", "prometheus", `{}`},
	{"tracer", "none", `{}`},
}

type configRow struct {
	kind  string // input, processor, output, metrics or tracer
	field string // the field's full path, as the docs spell it
	set   string // YAML merged into the component's base config
	// named is what the error must hold to name the field, when not the
	// path as written (e.g. "field 'batch_size'").
	named string
	want  string // the rule, as the error words it
	// startOnly: refused at start only, with the reason lint cannot
	// (e.g. it needs the config's resources).
	startOnly string
	// lintBlind: a scalar of the wrong type (a word where an int or a bool
	// is expected), which Benthos' lint does not see: it checks only that
	// a scalar field holds a scalar, and it skips the component's lint
	// rule (docs.customLintFromYAML) when a field does not decode into its
	// type, "assumed that we'll capture this type error elsewhere". The
	// start refuses it, naming the field.
	lintBlind bool
	// resources: YAML added to the stream config (good rows).
	resources string
}

// badRows are invalid values; each must be refused.
var badRows = []configRow{
	// ---- aws_s3_dms ----
	{kind: "input", field: "bucket", set: `{bucket: b}`, named: "bucket and directory", want: "exactly one"},
	{kind: "input", field: "bucket", set: `{bucket: data--use1-az4--x-s3, directory: ""}`, named: "bucket", want: "directory bucket"},
	// Left to the start only under lint --skip-env-var-check (an unset
	// ${BUCKET}): TestConfigCheckPlaceholders.
	{kind: "input", field: "directory", set: `{directory: ""}`, named: "bucket and directory", want: "exactly one"},
	{kind: "input", field: "bucket_folder", set: `{bucket_folder: "../x"}`, want: "leads out of directory"},
	{kind: "input", field: "cdc_path", set: `{cdc_path: ""}`, want: "required when mode is full-load-and-cdc"},
	{kind: "input", field: "cdc_path", set: `{cdc_path: "../../x"}`, want: "leads out of directory"},
	{kind: "input", field: "table_definition", set: `{table_definition: ""}`, want: "empty reference"},
	{kind: "input", field: "table_definition", set: `{table_definition: no-such-file.json}`, want: "no such file or directory (relative to the working directory "},
	{kind: "input", field: "table_definition", set: `{table_definition: 5}`, want: "invalid JSON"},
	// Enums: Benthos' lint says "value X is not a valid option for this
	// field" without naming it, and `run --chilled` started with any value,
	// read as the default (a checkpoint.store typo: no checkpoint at all).
	// Benthos' lint compares them without case: so do the components.
	{kind: "input", field: "mode", set: `{mode: full_load}`, want: `"full_load" is not one of full-load, cdc, full-load-and-cdc`},
	{kind: "input", field: "cdc_start", set: `{cdc_start: latest}`, want: `"latest" is not one of beginning, now`},
	{kind: "input", field: "late_files", set: `{late_files: stop}`, want: `"stop" is not one of skip, process`},
	{kind: "input", field: "bad_files", set: `{bad_files: fail}`, want: `"fail" is not one of skip, stop`},
	{kind: "input", field: "checkpoint.store", set: `{checkpoint: {store: dynamodb}}`, want: `"dynamodb" is not one of file, s3, cache, none`},
	{kind: "input", field: "poll_interval", set: `{poll_interval: 0s}`, want: "must be positive"},
	{kind: "input", field: "poll_interval", set: `{poll_interval: -1s}`, want: "must be positive"},
	{kind: "input", field: "poll_interval", set: `{poll_interval: 5}`, want: "missing unit"},
	{kind: "input", field: "request_timeout", set: `{request_timeout: 0s}`, want: "must be positive"},
	{kind: "input", field: "request_timeout", set: `{request_timeout: banana}`, want: "invalid duration"},
	{kind: "input", field: "late_file_check_interval", set: `{late_file_check_interval: 0s}`, want: "must be positive"},
	{kind: "input", field: "progress_interval", set: `{progress_interval: -5s}`, want: "must be positive"},
	{kind: "input", field: "ignore_header_rows", set: `{ignore_header_rows: 2}`, want: "must be 0 or 1"},
	{kind: "input", field: "ignore_header_rows", set: `{ignore_header_rows: -1}`, want: "must be 0 or 1"},
	{kind: "input", field: "ignore_header_rows", set: `{ignore_header_rows: one}`, named: "field 'ignore_header_rows'", want: "into int", lintBlind: true},
	{kind: "input", field: "cdc_ignore_header_rows", set: `{cdc_ignore_header_rows: maybe}`, named: "field 'cdc_ignore_header_rows'", want: "into bool", lintBlind: true},
	{kind: "input", field: "csv_delimiter", set: `{csv_delimiter: ""}`, want: "must not be empty"},
	{kind: "input", field: "csv_delimiter", set: `{csv_delimiter: "a\nb"}`, want: "must not contain a row delimiter"},
	{kind: "input", field: "csv_delimiter", set: `{csv_delimiter: "\""}`, want: "double quote"},
	{kind: "input", field: "csv_row_delimiter", set: `{csv_row_delimiter: ";"}`, want: `must be \n or \r\n`},
	{kind: "input", field: "rfc4180", set: `{rfc4180: "yes please"}`, named: "field 'rfc4180'", want: "into bool", lintBlind: true},
	{kind: "input", field: "max_row_size", set: `{max_row_size: 0}`, want: "must be positive"},
	{kind: "input", field: "max_row_size", set: `{max_row_size: 1MiB}`, named: "field 'max_row_size'", want: "into int", lintBlind: true},
	{kind: "input", field: "batch_size", set: `{batch_size: 0}`, want: "must be positive"},
	{kind: "input", field: "batch_size", set: `{batch_size: -1}`, want: "must be positive"},
	{kind: "input", field: "batch_size", set: `{batch_size: abc}`, named: "field 'batch_size'", want: "cannot unmarshal !!str `abc` into int", lintBlind: true},
	{kind: "input", field: "batch_bytes", set: `{batch_bytes: 0}`, want: "must be positive"},
	{kind: "input", field: "emit_table_start", set: `{emit_table_start: 3}`, named: "field 'emit_table_start'", want: "into bool", lintBlind: true},
	{kind: "input", field: "emit_cdc_start", set: `{emit_cdc_start: on please}`, named: "field 'emit_cdc_start'", want: "into bool", lintBlind: true},
	{kind: "input", field: "restart_changed_files", set: `{restart_changed_files: 1}`, named: "field 'restart_changed_files'", want: "into bool", lintBlind: true},
	{kind: "input", field: "force_path_style", set: `{force_path_style: 0}`, named: "field 'force_path_style'", want: "into bool", lintBlind: true},
	{kind: "input", field: "endpoint", set: `{endpoint: "ftp://x"}`, want: "absolute http(s) URL"},
	{kind: "input", field: "endpoint", set: `{endpoint: "http://user:` + secretMark + `@host"}`, want: "user information"},
	{kind: "input", field: "endpoint", set: `{endpoint: "http://host/?token=` + secretMark + `"}`, want: "query string"},
	// The AWS SDK refuses such a region at every request ("invalid input
	// region"), so the pipeline ran, retrying Connect forever.
	{kind: "input", field: "region", set: `{region: "us east 1"}`, want: "not a valid AWS region"},
	{kind: "input", field: "region", set: `{region: "eu-west-1."}`, want: "not a valid AWS region"},
	// S3 answers every request with 400 InvalidBucketOwnerAWSAccountID: a
	// refusal, retried forever, naming S3's words and not the field.
	{kind: "input", field: "expected_bucket_owner", set: `{expected_bucket_owner: "my-account"}`, want: "must be a 12-digit AWS account id"},
	{kind: "input", field: "expected_bucket_owner", set: `{expected_bucket_owner: "12345678901"}`, want: "must be a 12-digit AWS account id"},
	{kind: "input", field: "list_page_size", set: `{list_page_size: 0}`, want: "must be 1..1000"},
	{kind: "input", field: "list_page_size", set: `{list_page_size: 1001}`, want: "must be 1..1000"},
	{kind: "input", field: "credentials.id", set: `{credentials: {id: AKID, secret: ""}}`, named: "credentials.id and credentials.secret", want: "set together"},
	{kind: "input", field: "credentials.secret", set: `{credentials: {id: "", secret: ` + secretMark + `}}`, named: "credentials.id and credentials.secret", want: "set together"},
	{kind: "input", field: "credentials.token", set: `{credentials: {id: "", secret: "", token: ` + secretMark + `}}`, want: "needs credentials.id and credentials.secret"},
	{kind: "input", field: "credentials.profile", set: `{credentials: {profile: dev}}`, want: "cannot be combined with static"},
	{kind: "input", field: "credentials.role_external_id", set: `{credentials: {role_external_id: x}}`, want: "needs credentials.role"},
	// Connect used to fail at every retry, "failed to get shared config
	// profile", the pipeline up and reading nothing; so did a bucket with
	// no region anywhere.
	{kind: "input", field: "credentials.profile", set: `{bucket: b, directory: "", credentials: {id: "", secret: "", profile: nosuch}}`, want: `"nosuch" is not in the shared config files`,
		startOnly: "the shared config files are the running machine's"},
	{kind: "input", field: "region", set: `{bucket: b, directory: "", region: ""}`, named: "set region", want: "no AWS region",
		startOnly: "AWS_REGION and the profiles are the running machine's"},
	// STS refused it at every Connect ("ValidationError"), retried forever.
	{kind: "input", field: "credentials.role", set: `{credentials: {role: "dms-reader"}}`, want: "must be an IAM role ARN"},
	{kind: "input", field: "credentials.role", set: `{credentials: {role: "arn:aws:iam:::role/dms-reader"}}`, want: "must be an IAM role ARN"},
	{kind: "input", field: "checkpoint.key", set: `{checkpoint: {store: file, key: "a/b"}}`, want: "plain file name"},
	{kind: "input", field: "checkpoint.key", set: `{checkpoint: {store: file, key: ".."}}`, want: "plain file name"},
	{kind: "input", field: "checkpoint.key", set: `{bucket: b, directory: "", checkpoint: {store: s3, key: "cdcfile/ck.json"}}`, want: "lies under the CDC path"},
	{kind: "input", field: "checkpoint.bucket", set: `{checkpoint: {store: s3}}`, want: "required for the s3 store when reading a directory"},
	{kind: "input", field: "checkpoint.cache", set: `{checkpoint: {store: cache}}`, want: "required for the cache store"},
	// Set for a store that does not use it (store left at its default,
	// file): the position went to a local file, silently.
	{kind: "input", field: "checkpoint.cache", set: `{checkpoint: {store: file, cache: ck}}`, want: "only the cache store uses it (checkpoint.store is file)"},
	{kind: "input", field: "checkpoint.bucket", set: `{checkpoint: {store: file, bucket: ck}}`, want: "only the s3 store uses it (checkpoint.store is file)"},
	// Connect used to fail at every retry with "unable to locate resource",
	// not naming the field, the pipeline up and reading nothing.
	{kind: "input", field: "checkpoint.cache", set: `{checkpoint: {store: cache, cache: nosuch}}`, want: `no cache resource named "nosuch"`,
		startOnly: "a component's lint does not see the config's resources"},
	{kind: "input", field: "checkpoint.interval", set: `{checkpoint: {interval: -1s}}`, want: "must not be negative"},
	{kind: "input", field: "checkpoint.interval", set: `{checkpoint: {interval: banana}}`, want: "invalid duration"},
	{kind: "input", field: "checkpoint.lease", set: `{checkpoint: {store: s3, bucket: ck, interval: 10s, lease: 15s}}`, want: "at least twice checkpoint.interval"},
	{kind: "input", field: "checkpoint.lease", set: `{checkpoint: {lease: 0s}}`, want: "must be positive"},
	// With interval 0 a third of the lease paces the saves: 2ns made it a
	// zero ticker, a panic at the first Connect, whatever the store.
	{kind: "input", field: "checkpoint.lease", set: `{checkpoint: {store: none, interval: 0s, lease: 2ns}}`, want: "must be at least 1s"},
	{kind: "input", field: "checkpoint.lease", set: `{checkpoint: {store: s3, bucket: ck, interval: 0s, lease: 500ms}}`, want: "must be at least 1s"},

	// ---- dms_csv_to_json ----
	{kind: "processor", field: "table_definition", set: `{table_definition: no-such-file.json}`, want: "no such file"},
	{kind: "processor", field: "table_definition", set: `{table_definition: '{"TableCount": 1}'}`, want: "table definition"},
	{kind: "processor", field: "csv_delimiter", set: `{csv_delimiter: ""}`, want: "must not be empty"},
	{kind: "processor", field: "csv_row_delimiter", set: `{csv_row_delimiter: ","}`, want: `must be \n or \r\n`},
	{kind: "processor", field: "csv_null_value", set: `{csv_null_value: "a,b"}`, want: "can never match a field"},
	{kind: "processor", field: "rfc4180", set: `{rfc4180: 7}`, named: "field 'rfc4180'", want: "into bool", lintBlind: true},
	{kind: "processor", field: "message_format", set: `{message_format: xml}`, want: `"xml" is not one of json, json-unformatted`},
	{kind: "processor", field: "include_null_and_empty", set: `{include_null_and_empty: maybe}`, named: "field 'include_null_and_empty'", want: "into bool", lintBlind: true},
	{kind: "processor", field: "include_partition_value", set: `{include_partition_value: maybe}`, named: "field 'include_partition_value'", want: "into bool", lintBlind: true},
	{kind: "processor", field: "partition_include_schema_table", set: `{partition_include_schema_table: maybe}`, named: "field 'partition_include_schema_table'", want: "into bool", lintBlind: true},
	{kind: "processor", field: "include_transaction_details", set: `{include_transaction_details: maybe}`, named: "field 'include_transaction_details'", want: "into bool", lintBlind: true},
	{kind: "processor", field: "include_control_details", set: `{include_control_details: maybe}`, named: "field 'include_control_details'", want: "into bool", lintBlind: true},
	{kind: "processor", field: "no_hex_prefix", set: `{no_hex_prefix: maybe}`, named: "field 'no_hex_prefix'", want: "into bool", lintBlind: true},
	{kind: "processor", field: "use_large_integer_value", set: `{use_large_integer_value: maybe}`, named: "field 'use_large_integer_value'", want: "into bool", lintBlind: true},
	{kind: "processor", field: "numeric_as_string", set: `{numeric_as_string: maybe}`, named: "field 'numeric_as_string'", want: "into bool", lintBlind: true},
	{kind: "processor", field: "default_phase", set: `{default_phase: load}`, want: `"load" is not one of auto, full-load, cdc`},
	{kind: "processor", field: "truncation_policy", set: `{truncation_policy: cut}`, want: `"cut" is not one of error, truncate`},
	{kind: "processor", field: "cdc_partition_key", set: `{cdc_partition_key: primary_key}`, want: `"primary_key" is not one of schema-table, primary-key`},
	{kind: "processor", field: "task_id", set: `{task_id: ""}`, want: "must not be empty"},
	{kind: "processor", field: "target_table_prep_mode", set: `{target_table_prep_mode: recreate}`, want: "is not drop-and-create, truncate or do-nothing"},
	{kind: "processor", field: "table_mappings", set: `{table_mappings: 5}`, want: "expected a table-mapping document"},
	{kind: "processor", field: "table_mappings", set: `{table_mappings: no-such-file.json}`, want: "no such file or directory (relative to the working directory "},
	{kind: "processor", field: "max_workers", set: `{max_workers: -1}`, want: "must be 0 (one per CPU) or more"},
	{kind: "processor", field: "max_workers", set: `{max_workers: all}`, named: "field 'max_workers'", want: "into int", lintBlind: true},

	// ---- aws_kinesis_streams ----
	{kind: "output", field: "stream", set: `{stream: "a b"}`, want: "not a valid stream name"},
	// An empty list anywhere in the config (as in the full config
	// `dmsbridge create` writes: batching.processors: []) reaches the lint
	// rule as null, which the spec refuses to parse: the rule must still
	// run.
	{kind: "output", field: "stream", set: `{stream: "a b", batching: {processors: []}}`, want: "not a valid stream name"},
	{kind: "output", field: "max_in_flight", set: `{max_in_flight: 0, batching: {count: 10, processors: []}}`, want: "at least 1"},
	{kind: "output", field: "stream", set: `{stream: "arn:aws:kinesis::123456789012:stream/x"}`, want: "must look like arn:aws:kinesis"},
	{kind: "output", field: "stream", set: `{stream: "arn:aws:kinesis:eu-west-1:123456789012:stream/x"}`, want: "stream ARN is in region eu-west-1"},
	// Left to the start only under lint --skip-env-var-check (an unset
	// ${STREAM}): TestConfigCheckPlaceholders.
	{kind: "output", field: "stream", set: `{stream: ""}`, want: "stream must not be empty"},
	{kind: "output", field: "region", set: `{region: "us_east_1"}`, want: "not a valid AWS region"},
	{kind: "output", field: "partition_key", set: `{partition_key: ""}`, want: "partition key is empty"},
	{kind: "output", field: "partition_key", set: `{partition_key: "` + strings.Repeat("k", 257) + `"}`, want: "Kinesis allows at most 256"},
	{kind: "output", field: "partition_key", set: `{partition_key: "` + strings.Repeat("😀", 129) + `"}`, want: "UTF-16 code units"},
	{kind: "output", field: "partition_key", set: `{partition_key: "${! nosuchfunc() }"}`, want: "unrecognised function"},
	{kind: "output", field: "hash_key", set: `{hash_key: "abc"}`, want: "decimal integer between 0 and 2^128-1"},
	{kind: "output", field: "hash_key", set: `{hash_key: "340282366920938463463374607431768211456"}`, want: "decimal integer between 0 and 2^128-1"},
	{kind: "output", field: "endpoint", set: `{endpoint: "http://key:` + secretMark + `@kinesis.local"}`, want: "user information"},
	{kind: "output", field: "endpoint", set: `{endpoint: "localhost:4567"}`, want: "absolute http(s) URL"},
	{kind: "output", field: "credentials.id", set: `{credentials: {id: AKID, secret: ""}}`, named: "credentials.id and credentials.secret", want: "set together"},
	{kind: "output", field: "credentials.secret", set: `{credentials: {id: "", secret: ` + secretMark + `}}`, named: "credentials.id and credentials.secret", want: "set together"},
	{kind: "output", field: "credentials.token", set: `{credentials: {id: "", secret: "", token: ` + secretMark + `}}`, want: "needs credentials.id and credentials.secret"},
	{kind: "output", field: "credentials.profile", set: `{credentials: {profile: dev}}`, want: "cannot be combined with static"},
	{kind: "output", field: "credentials.role_external_id", set: `{credentials: {role_external_id: x}}`, want: "needs credentials.role"},
	{kind: "output", field: "credentials.profile", set: `{credentials: {id: "", secret: "", profile: nosuch}}`, want: `"nosuch" is not in the shared config files`,
		startOnly: "the shared config files are the running machine's"},
	{kind: "output", field: "region", set: `{region: ""}`, named: "set region", want: "no AWS region",
		startOnly: "AWS_REGION and the profiles are the running machine's"},
	{kind: "output", field: "credentials.role", set: `{credentials: {role: "arn:aws:iam::123456789012:user/bob"}}`, want: "must be an IAM role ARN"},
	{kind: "output", field: "max_in_flight", set: `{max_in_flight: 0}`, want: "must be at least 1"},
	{kind: "output", field: "max_in_flight", set: `{max_in_flight: many}`, named: "field 'max_in_flight'", want: "into int", lintBlind: true},
	{kind: "output", field: "max_record_size", set: `{max_record_size: 0}`, want: "must be between 1 and 10485760"},
	{kind: "output", field: "max_record_size", set: `{max_record_size: 10485761}`, want: "must be between 1 and 10485760"},
	{kind: "output", field: "max_request_size", set: `{max_request_size: 100}`, named: "max_record_size (1048576) must not exceed max_request_size", want: "(100)"},
	{kind: "output", field: "max_request_size", set: `{max_request_size: 5MiB}`, named: "field 'max_request_size'", want: "into int", lintBlind: true},
	{kind: "output", field: "ordering", set: `{ordering: loose}`, want: "must be strict or relaxed"},
	{kind: "output", field: "protocol", set: `{protocol: xml}`, want: "must be json or cbor"},
	{kind: "output", field: "protocol", set: `{protocol: cbor, sdk_client: true}`, want: "cbor needs the output's own PutRecords path"},
	{kind: "output", field: "backoff.initial_interval", set: `{backoff: {initial_interval: 0s}}`, named: "backoff: initial_interval", want: "must be > 0"},
	{kind: "output", field: "backoff.max_interval", set: `{backoff: {initial_interval: 10s, max_interval: 1s}}`, named: "backoff: initial_interval", want: "<= max_interval"},
	{kind: "output", field: "backoff.max_elapsed_time", set: `{backoff: {max_elapsed_time: banana}}`, want: "invalid duration"},
	// Negative: the backoff stops before its first wait (elapsed + next >
	// max), so a record failed for good at its first refusal.
	{kind: "output", field: "backoff.max_elapsed_time", set: `{backoff: {max_elapsed_time: -1s}}`, named: "backoff: max_elapsed_time", want: "must not be negative"},
	{kind: "output", field: "shard_rate.records_per_second", set: `{shard_rate: {records_per_second: -1}}`, named: "shard_rate", want: "got records_per_second -1"},
	{kind: "output", field: "shard_rate.bytes_per_second", set: `{shard_rate: {bytes_per_second: -1}}`, named: "shard_rate", want: "bytes_per_second -1"},
	{kind: "output", field: "request_timeout", set: `{request_timeout: 0s}`, want: "must be > 0"},
	{kind: "output", field: "shard_refresh_interval", set: `{shard_refresh_interval: -1m}`, want: "must be > 0"},
	// The batch policy was Benthos' alone: lint never parsed it (a period
	// that is no duration passed lint, failing only at start), and a
	// negative count, byte size or period silently disabled that trigger.
	{kind: "output", field: "batching.count", set: `{batching: {count: -1}}`, want: "must not be negative"},
	{kind: "output", field: "batching.byte_size", set: `{batching: {byte_size: -1}}`, want: "must not be negative"},
	{kind: "output", field: "batching.period", set: `{batching: {period: banana}}`, want: "invalid duration"},
	{kind: "output", field: "batching.period", set: `{batching: {period: -1s}}`, want: "must not be negative"},
	// Benthos' lint of an output field sees neither a scalar nor an empty
	// object: they failed only when built (in streams mode after the
	// input had started).
	{kind: "output", field: "dead_letter", set: `{dead_letter: {}}`, want: "must name an output"},
	{kind: "output", field: "dead_letter", set: `{dead_letter: file}`, want: "must name an output"},
	{kind: "output", field: "sdk_client", set: `{sdk_client: maybe}`, named: "field 'sdk_client'", want: "into bool", lintBlind: true},

	// ---- prometheus ----
	{kind: "metrics", field: "histogram_buckets", set: `{histogram_buckets: [2, 1]}`, want: "strictly increasing"},
	{kind: "metrics", field: "histogram_buckets", set: `{histogram_buckets: [0.1, a]}`, named: "field 'histogram_buckets'", want: "into float64", lintBlind: true},
	{kind: "metrics", field: "use_histogram_timing", set: `{use_histogram_timing: maybe}`, named: "field 'use_histogram_timing'", want: "into bool", lintBlind: true},
	{kind: "metrics", field: "add_process_metrics", set: `{add_process_metrics: 3}`, named: "field 'add_process_metrics'", want: "into bool", lintBlind: true},
	{kind: "metrics", field: "add_go_metrics", set: `{add_go_metrics: no thanks}`, named: "field 'add_go_metrics'", want: "into bool", lintBlind: true},
}

// goodRows are valid edge values; each must pass lint and start.
var goodRows = []configRow{
	{kind: "input", field: "batch_size", set: `{batch_size: 1}`},
	{kind: "input", field: "batch_bytes", set: `{batch_bytes: 1}`},
	{kind: "input", field: "max_row_size", set: `{max_row_size: 1}`},
	{kind: "input", field: "list_page_size", set: `{list_page_size: 1000}`},
	{kind: "input", field: "ignore_header_rows", set: `{ignore_header_rows: 1, cdc_ignore_header_rows: true}`},
	{kind: "input", field: "poll_interval", set: `{poll_interval: 1ns}`},
	{kind: "input", field: "csv_delimiter", set: `{csv_delimiter: '\t', csv_row_delimiter: '\r\n'}`},
	{kind: "input", field: "csv_delimiter", set: `{csv_delimiter: "||", rfc4180: false}`},
	{kind: "input", field: "mode", set: `{mode: full-load, cdc_path: ""}`},
	{kind: "input", field: "checkpoint.store", set: `{mode: Full-Load, cdc_path: "", checkpoint: {store: File, directory: "CKDIR"}}`},
	{kind: "input", field: "checkpoint.cache", set: `{checkpoint: {store: cache, cache: ck}}`, resources: "cache_resources: [{label: ck, memory: {}}]\n"},
	{kind: "input", field: "checkpoint.interval", set: `{checkpoint: {store: file, directory: "CKDIR", interval: 0s}}`},
	{kind: "input", field: "checkpoint.lease", set: `{region: us-east-1, checkpoint: {store: s3, bucket: ck, interval: 5s, lease: 10s}}`},
	{kind: "input", field: "checkpoint.lease", set: `{region: us-east-1, checkpoint: {store: s3, bucket: ck, interval: 0s, lease: 1s}}`},
	{kind: "input", field: "endpoint", set: `{endpoint: "https://s3.example.com:9000/base"}`},
	{kind: "input", field: "region", set: `{region: "us-gov-west-1"}`},
	{kind: "input", field: "region", set: `{region: "garage"}`},
	{kind: "input", field: "credentials.profile", set: `{bucket: b, directory: "", region: "", credentials: {id: "", secret: "", profile: dev}}`},
	{kind: "output", field: "credentials.profile", set: `{region: "", credentials: {id: "", secret: "", profile: dev}}`},
	{kind: "input", field: "expected_bucket_owner", set: `{expected_bucket_owner: "012345678901"}`},
	{kind: "input", field: "credentials.role", set: `{credentials: {role: "arn:aws:iam::123456789012:role/r", role_external_id: x}}`},
	{kind: "processor", field: "target_table_prep_mode", set: `{target_table_prep_mode: TRUNCATE_BEFORE_LOAD}`},
	{kind: "processor", field: "max_workers", set: `{max_workers: 0}`},
	{kind: "processor", field: "message_format", set: `{message_format: JSON-Unformatted, default_phase: CDC, truncation_policy: Truncate, cdc_partition_key: Primary-Key}`},
	{kind: "processor", field: "csv_null_value", set: `{csv_null_value: NULL}`},
	{kind: "output", field: "stream", set: `{stream: "arn:aws:kinesis:us-east-1:123456789012:stream/x"}`},
	{kind: "output", field: "stream", set: `{stream: "arn:aws:kinesis:eu-west-1:123456789012:stream/x", region: ""}`},
	{kind: "output", field: "max_record_size", set: `{max_record_size: 10485760, max_request_size: 10485760}`},
	{kind: "output", field: "credentials.role", set: `{credentials: {role: "arn:aws-cn:iam::123456789012:role/path/to/dms-writer"}}`},
	{kind: "output", field: "hash_key", set: `{hash_key: "340282366920938463463374607431768211455"}`},
	{kind: "output", field: "hash_key", set: `{hash_key: "0"}`},
	{kind: "output", field: "partition_key", set: `{partition_key: "` + strings.Repeat("😀", 128) + `"}`},
	{kind: "output", field: "shard_rate.records_per_second", set: `{shard_rate: {records_per_second: 0, bytes_per_second: 0}}`},
	{kind: "output", field: "backoff.max_elapsed_time", set: `{backoff: {max_elapsed_time: 0s}}`},
	{kind: "output", field: "max_in_flight", set: `{max_in_flight: 64}`},
	{kind: "output", field: "ordering", set: `{ordering: Relaxed}`},
	{kind: "output", field: "protocol", set: `{protocol: CBOR}`},
	{kind: "output", field: "dead_letter", set: `{dead_letter: {drop: {}}}`},
	// Optional fields as `dmsbridge create` writes them: not set.
	{kind: "output", field: "dead_letter", set: `{dead_letter: null}`},
	{kind: "output", field: "hash_key", set: `{hash_key: ""}`},
	{kind: "output", field: "batching.processors", set: `{batching: {processors: []}}`},
	{kind: "processor", field: "table_mappings", set: `{table_mappings: null}`},
	{kind: "output", field: "batching.period", set: `{batching: {count: 500, byte_size: 1000000, period: 100ms}}`},
	{kind: "output", field: "batching.count", set: `{batching: {count: 0, byte_size: 0, period: ""}}`},
	{kind: "metrics", field: "histogram_buckets", set: `{use_histogram_timing: true, histogram_buckets: [0.001, 0.01, 1]}`},
	{kind: "tracer", field: "", set: `{}`},
}

// noBadValue lists the fields for which no value of the right type is
// wrong, with the reason (a wrong YAML type is still refused, by Benthos'
// lint of objects and lists, or by the rows above for scalars).
var noBadValue = map[string]string{
	"input checkpoint.directory": "any path; a directory that cannot be written fails the first save, at Connect, naming it",
	"input credentials":          "an object: its fields have rows",
	"input checkpoint":           "an object: its fields have rows",
	"output credentials":         "an object: its fields have rows",
	"output backoff":             "an object: its fields have rows",
	"output shard_rate":          "an object: its fields have rows",
	"output batching":            "Benthos' batch policy",
	"output batching.check":      "a Bloblang query: Benthos' lint parses it",
	"output batching.processors": "processors: linted by Benthos as such",
	"metrics prefix":             "any string: sanitised to the Prometheus character set",
	"tracer ":                    "no settings",
}

func componentOf(t *testing.T, kind string) (name, base string) {
	t.Helper()
	for _, c := range checkedComponents {
		if c.kind == kind {
			return c.name, c.base
		}
	}
	t.Fatalf("no component of kind %q", kind)
	return "", ""
}

// merge sets src's keys into dst, recursively for mappings.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// rowConfig returns the component's config (name: {...}) and a whole stream
// config around it.
func rowConfig(t *testing.T, r configRow, ckDir string) (component, stream string) {
	t.Helper()
	name, base := componentOf(t, r.kind)
	var conf, set map[string]any
	if err := yaml.Unmarshal([]byte(base), &conf); err != nil {
		t.Fatal(err)
	}
	if conf == nil {
		conf = map[string]any{}
	}
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(r.set, "CKDIR", ckDir)), &set); err != nil {
		t.Fatalf("row %s %q: %v", r.field, r.set, err)
	}
	merge(conf, set)
	b, err := yaml.Marshal(map[string]any{name: conf})
	if err != nil {
		t.Fatal(err)
	}
	component = string(b)
	indent := func(s string) string {
		return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
	}
	gen := "input:\n  generate: {mapping: 'root = \"x\"', count: 1, interval: \"\"}\n"
	switch r.kind {
	case "input":
		stream = "input:\n" + indent(component) + "output:\n  drop: {}\n"
	case "processor":
		stream = gen + "pipeline:\n  processors:\n" + "    - " + strings.ReplaceAll(strings.TrimRight(component, "\n"), "\n", "\n      ") + "\noutput:\n  drop: {}\n"
	case "output":
		stream = gen + "output:\n" + indent(component)
	case "metrics":
		stream = gen + "output:\n  drop: {}\nmetrics:\n" + indent(component)
	case "tracer":
		stream = gen + "output:\n  drop: {}\ntracer:\n" + indent(component)
	}
	return component, stream + r.resources
}

// lintComponent returns the lint errors of a component config, joined.
func lintComponent(t *testing.T, kind, component string) string {
	t.Helper()
	l := service.GlobalEnvironment().NewComponentConfigLinter()
	var lints []service.Lint
	var err error
	switch kind {
	case "input":
		lints, err = l.LintInputYAML([]byte(component))
	case "processor":
		lints, err = l.LintProcessorYAML([]byte(component))
	case "output":
		lints, err = l.LintOutputYAML([]byte(component))
	case "metrics":
		lints, err = l.LintMetricsYAML([]byte(component))
	case "tracer":
		lints, err = l.LintTracerYAML([]byte(component))
	}
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	var msgs []string
	for _, li := range lints {
		msgs = append(msgs, li.Error())
	}
	return strings.Join(msgs, "; ")
}

// buildStream builds the stream as `run --chilled` would (lint errors
// ignored): every component's constructor runs; nothing connects.
func buildStream(stream string) error {
	b := service.NewStreamBuilder()
	b.DisableLinting()
	if err := b.SetYAML(stream + "logger: {level: NONE}\n"); err != nil {
		return err
	}
	strm, err := b.Build()
	if err != nil {
		return err
	}
	// Run builds the components first, and returns at once with a done
	// context once they are built.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := strm.Run(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	_ = strm.StopWithin(200 * time.Millisecond) // an output may be connecting: nothing to wait for
	return nil
}

func (r configRow) label() string {
	s := r.kind + " " + r.field + " " + r.set
	return strings.NewReplacer("/", "_", " ", "_").Replace(s)
}

// isolateAWSEnv points the AWS SDK at shared config files holding one
// profile, dev (region eu-west-1), and clears the region from the
// environment.
func isolateAWSEnv(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(conf, []byte("[profile dev]\nregion = eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", conf)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
}

func TestConfigCheckRefusesBadValues(t *testing.T) {
	isolateAWSEnv(t)
	for _, r := range badRows {
		t.Run(r.label(), func(t *testing.T) {
			component, stream := rowConfig(t, r, t.TempDir())
			named := r.named
			if named == "" {
				named = r.field
			}
			check := func(stage, msg string) {
				t.Helper()
				if msg == "" {
					t.Errorf("%s accepted %s: %s", stage, r.field, r.set)
					return
				}
				if !strings.Contains(msg, named) || !strings.Contains(msg, r.want) {
					t.Errorf("%s error does not name %q with %q:\n%s", stage, named, r.want, msg)
				}
				if strings.Contains(msg, secretMark) {
					t.Errorf("%s error quotes a secret:\n%s", stage, msg)
				}
			}
			lint := lintComponent(t, r.kind, component)
			if r.lintBlind {
				if lint != "" {
					t.Errorf("lint now sees a wrong scalar type (%s): make the row a plain one", lint)
				}
			} else if r.startOnly == "" {
				check("lint", lint)
			} else if lint != "" {
				t.Errorf("lint refuses what only the start should (%s): %s", r.startOnly, lint)
			}
			var msg string
			if err := buildStream(stream); err != nil {
				msg = err.Error()
			}
			check("start", msg)
		})
	}
}

// Under `lint --skip-env-var-check`, which replaces an unset variable with
// "", a value that may be (or hold) such a placeholder is left to the
// start; the same values are refused by a plain lint (badRows).
func TestConfigCheckPlaceholders(t *testing.T) {
	isolateAWSEnv(t)
	all.SetEmptyIsPlaceholder(true)
	t.Cleanup(func() { all.SetEmptyIsPlaceholder(false) })
	for _, r := range []configRow{
		// bucket: ${BUCKET}
		{kind: "input", field: "directory", set: `{directory: ""}`},
		// stream: ${STREAM}
		{kind: "output", field: "stream", set: `{stream: ""}`},
		// stream: arn:aws:kinesis:${AWS_REGION}:${ACCOUNT_ID}:stream/dms-target
		{kind: "output", field: "stream", set: `{stream: "arn:aws:kinesis:::stream/dms-target"}`},
		// stream: arn:${PARTITION}:kinesis:us-east-1:123456789012:stream/${STREAM}
		{kind: "output", field: "stream", set: `{stream: "arn::kinesis:us-east-1:123456789012:stream/"}`},
		// role: arn:aws:iam::${ACCOUNT_ID}:role/dms-reader
		{kind: "input", field: "credentials.role", set: `{credentials: {role: "arn:aws:iam:::role/dms-reader"}}`},
		// role: arn:${PARTITION}:iam::${ACCOUNT_ID}:role/${ROLE}
		{kind: "output", field: "credentials.role", set: `{credentials: {role: "arn::iam:::role/"}}`},
		// id: AKIDEXAMPLE, secret: ${AWS_SECRET_ACCESS_KEY}
		{kind: "output", field: "credentials.secret", set: `{credentials: {id: AKIDEXAMPLE, secret: ""}}`},
		// id: ${AWS_ACCESS_KEY_ID}, secret: S3CR3T
		{kind: "input", field: "credentials.id", set: `{credentials: {id: "", secret: ` + secretMark + `}}`},
		// id: ${KEY_ID}, secret: ${SECRET}, token: ${AWS_SESSION_TOKEN} (only the token set)
		{kind: "input", field: "credentials.token", set: `{credentials: {id: "", secret: "", token: tok}}`},
		// role: ${ROLE_ARN}, role_external_id: dms
		{kind: "output", field: "credentials.role_external_id", set: `{credentials: {role: "", role_external_id: dms}}`},
	} {
		t.Run(r.label(), func(t *testing.T) {
			component, _ := rowConfig(t, r, t.TempDir())
			if lint := lintComponent(t, r.kind, component); lint != "" {
				t.Errorf("lint --skip-env-var-check refused %s, which may be an unset variable: %s\n%s", r.field, lint, component)
			}
		})
	}
}

func TestConfigCheckAcceptsGoodValues(t *testing.T) {
	isolateAWSEnv(t)
	for _, r := range goodRows {
		t.Run(r.label(), func(t *testing.T) {
			component, stream := rowConfig(t, r, t.TempDir())
			if lint := lintComponent(t, r.kind, component); lint != "" {
				t.Errorf("lint refused a valid %s: %s\n%s", r.field, lint, component)
			}
			if err := buildStream(stream); err != nil {
				t.Errorf("start refused a valid %s: %v\n%s", r.field, err, stream)
			}
		})
	}
}

// Every field of every dmsbridge component has a bad-value row, or is
// listed in noBadValue with the reason it has none; a field added later
// without its checks (or without a row) fails here.
func TestConfigCheckCoversEveryField(t *testing.T) {
	covered := map[string]bool{}
	for _, r := range badRows {
		covered[r.kind+" "+r.field] = true
	}
	fields := map[string]bool{}
	collect := func(kind string) func(string, *service.ConfigView) {
		return func(name string, v *service.ConfigView) {
			want, _ := componentOf(t, kind)
			if name != want {
				return
			}
			td, err := v.TemplateData()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range td.Fields {
				fields[kind+" "+f.FullName] = true
			}
			if kind == "tracer" && len(td.Fields) == 0 {
				fields["tracer "] = true
			}
		}
	}
	env := service.GlobalEnvironment()
	env.WalkInputs(collect("input"))
	env.WalkProcessors(collect("processor"))
	env.WalkOutputs(collect("output"))
	env.WalkMetrics(collect("metrics"))
	env.WalkTracers(collect("tracer"))
	var missing, stale []string
	for f := range fields {
		if !covered[f] && noBadValue[f] == "" {
			missing = append(missing, f)
		}
	}
	for f := range noBadValue {
		if !fields[f] {
			stale = append(stale, f)
		}
	}
	for f := range covered {
		if !fields[f] {
			stale = append(stale, f)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("fields without a bad-value row (add one, or say in noBadValue why none exists):\n%s", strings.Join(missing, "\n"))
	}
	if len(stale) > 0 {
		t.Errorf("rows for fields that do not exist:\n%s", strings.Join(stale, "\n"))
	}
}

// The configuration examples of dmsbridge's components (shown by `dmsbridge
// list` and the JSON schema) lint and build as written, from the repository
// root, where the shipped configs run.
func TestComponentExamplesLint(t *testing.T) {
	t.Chdir("../..")
	n := 0
	check := func(kind string) func(string, *service.ConfigView) {
		return func(name string, v *service.ConfigView) {
			if want, _ := componentOf(t, kind); name != want {
				return
			}
			td, err := v.TemplateData()
			if err != nil {
				t.Fatal(err)
			}
			for _, ex := range td.Examples {
				n++
				b := service.NewStreamBuilder()
				err := b.SetYAML(ex.Config + "logger: {level: NONE}\n")
				if err == nil {
					_, err = b.Build()
				}
				if err != nil {
					t.Errorf("%s example %q: %v\n%s", name, ex.Title, err, ex.Config)
				}
			}
		}
	}
	env := service.GlobalEnvironment()
	env.WalkInputs(check("input"))
	env.WalkProcessors(check("processor"))
	env.WalkOutputs(check("output"))
	if n < 3 {
		t.Fatalf("only %d examples found", n)
	}
}
