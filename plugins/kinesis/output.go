// Package kinesis provides the aws_kinesis_streams output.
package kinesis

import (
	"context"
	"errors"
	"fmt"
	"github.com/dmsbridge/dmsbridge/plugins/awsconf"
	"github.com/dmsbridge/dmsbridge/plugins/internal/lintcheck"
	"github.com/dmsbridge/dmsbridge/plugins/internal/outage"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/cenkalti/backoff/v4"
	"github.com/redpanda-data/benthos/v4/public/service"
	"gopkg.in/yaml.v3"
)

const (
	fStream         = "stream"
	fPartitionKey   = "partition_key"
	fHashKey        = "hash_key"
	fRegion         = "region"
	fEndpoint       = "endpoint"
	fCredentials    = "credentials"
	fBatching       = "batching"
	fMaxRecordSize  = "max_record_size"
	fMaxRequestSize = "max_request_size"
	fOrdering       = "ordering"
	fBackoff        = "backoff"
	fShardRate      = "shard_rate"
	fShardRefresh   = "shard_refresh_interval"
	fReqTimeout     = "request_timeout"
	fSDKClient      = "sdk_client"
	fProtocol       = "protocol"
	fDeadLetter     = "dead_letter"

	maxRecordsPerRequest = 500
	keyCapGrowAfter      = 4 // clean requests in a row before the per-key cap doubles
	maxPartitionKeyChars = 256
	limit10MiB           = 10 << 20
	default1MiB          = 1 << 20
	default5MiB          = 5 << 20
)

func outputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services", "AWS").
		Summary("Writes messages to an Amazon Kinesis data stream with PutRecords, shard-aware, paced, without loss and keeping per-partition-key order.").
		Description(`
Each message becomes one Kinesis record: the message bytes are the record data (never altered), `+"`partition_key`"+` its
partition key. The output is at-least-once: a batch is acknowledged only when every one of its records has been
written, and a record that could not be written is reported alone (a batch error naming its index) so that the
input replays, or the `+"`fallback`/dead-letter"+` path receives, only the records that were not written.

### Requests and limits
Every incoming batch, whatever its size, is split into PutRecords requests of at most 500 records and at most
`+"`max_request_size`"+` bytes, counting data plus partition key of each record. A record whose data plus partition
key exceeds `+"`max_record_size`"+`, or whose partition key is empty, longer than 256 characters (counted as Kinesis
counts them, in UTF-16 code units: a character outside the Basic Multilingual Plane, e.g. an emoji, counts two) or not valid
UTF-8 (Kinesis takes Unicode characters; e.g. Latin-1 bytes of a CSV in another encoding), or whose `+"`hash_key`"+`
is not a decimal number below 2^128, fails alone before anything is sent; the rest of the batch is written.

PutRecords requests go through the output's own request path by default: the JSON body (byte-identical to the
AWS SDK's) is written straight into a reused buffer, signed with the SDK's SigV4 signer and credentials (refreshed
when they expire), sent to the endpoint the SDK resolves (`+"`endpoint`"+` when set, otherwise the regional
endpoint of the partition, FIPS/dual-stack settings included) through the HTTP client of the AWS configuration, and
its answer decoded without per-record allocations; error answers go through the SDK's own error decoding. A host
clock more than 4 minutes off the answers' Date is corrected for when signing (kept across reconnects): a request
Kinesis refused for it ("Signature expired") is sent again at once with the corrected time, the calls of Connect too, so
such a host connects and writes without a lost connection. Every other
call (DescribeStreamSummary, ListShards, assume-role) uses the SDK. `+"`sdk_client: true`"+` sends PutRecords through
the SDK too.

`+"`protocol`"+` chooses the encoding of the PutRecords requests. `+"`json`"+` (the default) is the JSON 1.1 body the AWS
SDK for Go sends, record data in base64. `+"`cbor`"+` sends the same request in CBOR (Content-Type
`+"`application/x-amz-cbor-1.1`"+`), as the AWS SDKs for Java and the KPL do by default: record data travels as raw
bytes, so a body is about a quarter smaller (no base64) and costs about a tenth less CPU per record to build, hash,
sign and send. The answer is read in whichever encoding the endpoint answers in (its Content-Type), errors included:
error codes, messages and their handling are the same in both. Kinesis and kinesis-mock (LocalStack's Kinesis) take
CBOR. kinesalite takes it but truncates CBOR answers over 16 KiB (about 150 records), which the output then reads
as a broken answer and re-sends, forever: use `+"`json`"+` against kinesalite, and against any stand-in that refuses
CBOR. `+"`cbor`"+` needs the output's own request path (not with `+"`sdk_client: true`"+`).

### Shards, parallelism and pacing
At connect the output checks the stream exists (DescribeStreamSummary; a missing stream is a connect error naming
it) and lists its open shards and hash-key ranges (ListShards). Each record is routed like Kinesis does, by
MD5(partition key) or by its explicit hash key. The shards of a batch are written in parallel with at most one
PutRecords in flight per shard (also across concurrent batches when `+"`max_in_flight`"+` > 1). Each shard is
paced at `+"`shard_rate`"+` (default the Kinesis limits: 1000 records/s and 1 MiB/s) over a sliding one-second
window: a request is counted from its answer for a second, and goes only when it fits with the requests still
counted (it is cut to what fits), so no second at Kinesis holds more than the rate, also when writes resume after an
idle spell (a record larger than a second's bytes goes alone and counts for as many seconds as it is worth). The
rate drops by 30 % whenever Kinesis throttles the shard and climbs back 5 % per unthrottled request, so throttling is
rare and capacity used (a shard sustains the rate times 1 s / (1 s + request latency)). The shard map is refreshed every `+"`shard_refresh_interval`"+` and as soon as a response shows a record
landing on a shard other than the one it was routed to (a split or merge happened).

### Configuration checks
Every setting is checked when the config is linted (`+"`dmsbridge lint`"+`, the lint `+"`run`"+` does before
starting, and the streams API's POST/PUT), with the error the start would give, naming the field (the
`+"`dead_letter`"+` output is linted as an output of its own). An empty `+"`stream`"+` is refused too, except under
`+"`lint --skip-env-var-check`"+` and `+"`dmsbridge test`"+`, where it stands for an unset `+"`${STREAM}`"+` and is left to the start, as is a stream ARN with an empty
partition, region, account id or name (`+"`arn:aws:kinesis:${AWS_REGION}:${ACCOUNT_ID}:stream/dms`"+`, the variables unset). An `+"`endpoint`"+` quoted in an error never shows its
user information or query string. With `+"`endpoint`"+` empty, the endpoint the AWS SDK takes from
AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL or the shared config gets the same checks when the output connects.
The AWS configuration is resolved when the output is built (without a request; not by lint, which may
run on another machine): no region anywhere, or a `+"`credentials.profile`"+` the shared config files lack, is
refused at start, naming it.
`+"`ordering`"+` is read in any case, as Benthos' lint compares its options.
`+"`batching`"+` is checked too: a `+"`period`"+` that is no duration, or a negative `+"`count`"+`, `+"`byte_size`"+` or `+"`period`"+`
(which would silently disable that trigger), is refused naming the field. A `+"`dead_letter`"+` that names no output (a string, an empty
object), which Benthos' lint lets through, is refused too.
One mistake escapes the lint: a scalar of the wrong type (`+"`max_in_flight: many`"+`, `+"`sdk_client: maybe`"+`). Benthos' lint checks only that a
scalar field holds a scalar, and skips a component's checks altogether when one of its fields does not
decode, so such a config lints clean (and hides the component's other mistakes); the start refuses it,
naming the field. In streams mode the API's POST/PUT lets it through, and the build fails after the
stream's input has started.

### Failures and retries
Records rejected with `+"`ProvisionedThroughputExceededException`"+`, `+"`InternalFailure`"+` or
`+"`KMSThrottlingException`"+` are re-sent, alone (records already written are never re-sent, except as below for
ordering). Request-level failures (throttling, HTTP 5xx, dropped connections, timeouts, and refusals an operator
fixes: `+"`AccessDeniedException`"+`, a KMS key disabled, missing or not accessible, logged at error level) re-send
the request. A
request that made progress is retried at once (pacing still applies); one that made none waits a jittered exponential
`+"`backoff`"+`; every wait honours shutdown. A write the engine cancels (e.g. a stream stop timing out) or that the
output's shutdown cuts short reports the records it has not written failed (batch error), so the input replays them.
`+"`backoff.max_elapsed_time`"+` bounds the time a shard may go
without progress: after it the records not written fail (batch error) and go back to the input. Expired, invalid or
missing credentials, a credentials provider that fails (an instance role gone, STS refusing to assume
`+"`credentials.role`"+`; with either PutRecords path) and a stream deleted under the output stop the batch and
return "not connected" (nothing is re-sent or failed for it); so does Kinesis
not answering at all (transport errors, HTTP 5xx, requests timed out after `+"`request_timeout`"+`) for 5 s when
`+"`backoff.max_elapsed_time`"+` is 0 (retry until it passes), and so does, also only when `+"`backoff.max_elapsed_time`"+`
is 0, a refusal an operator must fix (`+"`AccessDeniedException`"+`, e.g. a policy allowing DescribeStreamSummary but
not PutRecords, or a KMS key disabled, missing or not accessible; with a retry budget it is retried within it and
then fails the records, as above). The engine then reports the output not connected (`+"`/ready`"+` answers 503 naming it), calls Connect
(which describes the stream, every second) until Kinesis answers (a failure that lasts is logged at once, then after
10 s and at doubling intervals up to once a minute, saying for how long it has failed; the recovery is logged once with
its length), and retries the same batch: the output remembers which of its
records were written and sends only the others, so a lost connection neither duplicates records nor sends them to a
dead letter. After a refusal, the first Connect fails with an error naming the stream, the shard and the refusal
(`+"`/ready`"+` shows it; logged at error level once by the output, then by the engine at every attempt; the engine's
`+"`output_connection_lost`"+` and `+"`output_connection_failed`"+` counters rise with every attempt) and makes the
engine wait the next `+"`backoff`"+` interval (growing to `+"`max_interval`"+`; reset once a write goes through) before
it connects and tries the batch again, which is how the end of the refusal is seen.
Error texts never quote the session token: the canonical request that AWS quotes in a
rejected signature's message (InvalidSignatureException), signed headers included, is cut from it.
Requests cut short by the stop may have been written: they are sent again and counted as
unknown-outcome re-sends. A request Kinesis rejects as invalid is split in halves until the offending record fails
alone.

### Ordering and duplicates
With `+"`ordering: strict`"+` (default) no record is written after an earlier record of the same partition key that
has not been written yet, with one exception the PutRecords API forces: Kinesis may accept a later record of a key
while rejecting an earlier one in the same request. When that happens the later records of that key are re-sent
after the failed one, in order, so the stream holds copies: reading a shard gives, per partition key, for example
`+"`2 3 1 2 3`"+` for records 1, 2, 3 when 1 was throttled. The last copy of every record is in order. Copies are
byte-identical (the data is never altered), so a consumer tells them by the position each record carries (the DMS
position the pipeline renders into the record, the message's `+"`dms_position`"+`): a position at or below the last
one applied for that key starts an in-order replay of that key. Each ordering re-send is counted in
`+"`kinesis_duplicates_ordering`"+` and logged at debug level with the messages' `+"`dms_position`"+`. To keep copies
few, a request carries at most a per-shard cap of records of one partition key: after a request needed ordering
re-sends the cap drops to the run of records Kinesis accepted in order before the failure (at most half the cap, at least 1), and it doubles again after
four requests in a row went through whole (so without failures it is the full 500). One request in flight per shard
means a re-sent record always goes out after the answer about its predecessor. Re-sending a request whose outcome is
unknown (dropped connection, HTTP 5xx, timeout) can also copy that request, in order; those records are counted in
`+"`kinesis_resends_unknown_outcome`"+`. If an earlier record of a key finally fails, the later records of that key in
the batch fail too (they are not written, or were written out of order and are replayed after it), so a replay by the
input keeps the order. With `+"`ordering: relaxed`"+` only failed records are re-sent: no ordering copies, no per-key
cap, but a retried record can land after later records of its key. Order across batches needs `+"`max_in_flight: 1`"+`
(the default): concurrent batches may interleave records of one key.

### Dead letter
With `+"`dead_letter`"+` set (any output, with its own processors), the output routes what must not reach Kinesis
itself: a message arriving with an error flag (a processor failed on it) is not written to Kinesis, and neither is a
record that failed for good (invalid: too large, bad partition or hash key; or still unwritten when the retry budget
ran out). After the batch's records are written, copies of those messages, in batch order, are written to
`+"`dead_letter`"+` with the metadata `+"`fallback_error`"+` (the error text, as the `+"`fallback`"+` output sets it,
so the same dead-letter mappings work; a flagged message keeps its flag, so `+"`errored()`"+` and `+"`error()`"+`
work too), and the batch is acknowledged once the dead letter has taken them. If the dead letter fails (its disk full
or not writable, its service down), the batch waits, like one stopped by a lost connection: its records written to
Kinesis are remembered, the output reports itself not connected (`+"`/ready`"+` answers 503 with the dead letter's error,
logged at error level once, then by the engine at every attempt) and the engine retries the same batch after a wait
(`+"`backoff`"+`, growing to `+"`max_interval`"+`; reset once the dead letter takes messages again), sending only what
was not written, so nothing is lost, acknowledged early or written to Kinesis again. (A batch error instead would
make the input redeliver the whole batch, and every batch after it, writing all their records again at every retry
for as long as the dead letter fails.) A retry may write some of the messages to the dead letter twice, when it
failed after taking some of them. A write cancelled or cut short by shutdown reports them failed to the engine
(replayed). At shutdown the dead letter gets 2 s to finish, then is stopped (one that cannot connect would
otherwise hold the stop until `+"`shutdown_timeout`"+`, and in streams mode keep running after the stream's
deletion). Counted in `+"`kinesis_dead_lettered`"+`. This does what
`+"`fallback: [{reject_errored: {aws_kinesis_streams: ...}}, <dead letter>]`"+` does, without the per-message copies
and sort groups of the two brokers (about 11 % of the reference pipeline's CPU per row). A connection lost mid-batch
(see Failures and retries) sends nothing to the dead letter, and neither does a write cancelled by the engine or cut
short by shutdown: records it did not write have not failed for good, and every message it did not write to Kinesis
(flagged and failed ones included) is reported failed to the engine, replayed, and dead-lettered on the replay if it
still must be.

### Metrics
`+"`kinesis_records_written`, `kinesis_bytes_written`, `kinesis_requests` (label `outcome`: ok, partial, error), "+
			"`kinesis_records_throttled` (label `shard`), `kinesis_retries` (records re-sent), `kinesis_duplicates_ordering`, "+
			"`kinesis_resends_unknown_outcome`, `kinesis_records_failed` (records Kinesis can never take or that ran out of retry budget, "+
			"counted once each when dead-lettered or reported failed; not while their batch waits for the dead letter or a reconnection), "+
			"`kinesis_dead_lettered`, `kinesis_request_records`, `kinesis_request_bytes`, "+
			"`kinesis_record_bytes_max` (gauges of the last request / batch), `kinesis_shard_rate_percent` (label `shard`), "+
			"`kinesis_put_records_latency_ns`. The counters are exported at 0 from the start (an absent series is not a zero), "+
			"`kinesis_records_throttled` for every open shard once the output has listed the shards."+`

### Batching
Each batch the engine hands over is written as it comes, split into requests of up to 500 records. Behind an input
that emits batches (`+"`aws_s3_dms`, `batch_size`"+`) no `+"`batching`"+` is needed; behind one that emits single messages, a
`+"`batching`"+` policy groups them into fewer, fuller PutRecords requests. A policy that waits for a `+"`count`"+` (above 1),
a `+"`byte_size`"+` or a `+"`check`"+` and sets no `+"`period`"+` gets `+"`period: 1s`"+`: without one, messages wait in the batcher,
unacknowledged, until more arrive, so the last rows of a tail would not go out until the next file, and behind
`+"`aws_s3_dms`"+` with `+"`checkpoint.interval: 0s`"+` (at most 4 batches beyond the saved checkpoint) nothing would ever go out.`).
		LintRule(lintcheck.Rule("aws_kinesis_streams", outputSpec, lintConf)).
		Fields(
			service.NewStringField(fStream).
				Description("The stream name, or its ARN (`arn:aws:kinesis:<region>:<account>:stream/<name>`; then requests carry StreamARN and the region defaults to the ARN's; another `region` is a config error)."),
			service.NewInterpolatedStringField(fPartitionKey).
				Description("The partition key of each record (valid UTF-8, 1 to 256 characters as Kinesis counts them: UTF-16 code units, so an emoji counts two). The default is the key the `dms_csv_to_json` processor computes the DMS way.").
				Default("${! @dms_partition_key }"),
			service.NewInterpolatedStringField(fHashKey).
				Description("Optional explicit hash key (decimal, 0 to 2^128-1) overriding the MD5 of the partition key for shard routing. Empty: not set.").
				Optional().Advanced(),
			service.NewStringField(fRegion).Description("AWS region. Empty: from the ARN, AWS_REGION or the profile. A name the AWS SDK would refuse at every request (not dot-separated labels of letters, digits and inner hyphens) is refused by lint and at start.").Default(""),
			service.NewStringField(fEndpoint).Description("Custom endpoint URL, e.g. a local Kinesis stand-in (http or https; user information such as `user:password@` is refused: credentials go in `credentials`; so is a query string or fragment, which the AWS SDK would not send). Empty: the AWS endpoint of the region.").Default("").Advanced(),
			service.NewObjectField(fCredentials,
				service.NewStringField("id").Description("Static access key id.").Default(""),
				service.NewStringField("secret").Description("Static secret access key.").Default("").Secret(),
				service.NewStringField("token").Description("Session token for temporary static credentials.").Default("").Secret(),
				service.NewStringField("profile").Description("Profile of the shared config/credentials files.").Default(""),
				service.NewStringField("role").Description("ARN of a role to assume (`arn:aws:iam::<account>:role/<name>`, with STS) using the credentials above or the default chain. STS is called at its regional endpoint, not at `endpoint`; a stand-in STS is named by AWS_ENDPOINT_URL_STS. Any other form is refused by lint and at start; under `lint --skip-env-var-check` an ARN with an empty partition, account id or name (`arn:aws:iam::${ACCOUNT_ID}:role/dms`, the variable unset) is left to the start.").Default(""),
				service.NewStringField("role_external_id").Description("External id for assuming `role`.").Default(""),
			).Description("Credentials. All empty: the AWS default chain (environment, shared files, web identity, container or instance role). Temporary credentials (an assumed role, a credential_process, web identity) are renewed 30 to 60 s before they expire (an instance role's 5 minutes before), so that no request reaches Kinesis signed with credentials that expired on the way.").Advanced(),
			service.NewOutputMaxInFlightField().Default(1).
				Description("Batches written concurrently. 1 (default) keeps per-key order across batches; more only adds concurrency across batches, shards of one batch are already written in parallel."),
			service.NewBatchPolicyField(fBatching),
			service.NewIntField(fMaxRecordSize).
				Description("Largest record, data plus partition key, in bytes. Kinesis' default is 1 MiB; streams raised with UpdateMaxRecordSize accept up to 10 MiB.").
				Default(default1MiB).Advanced(),
			service.NewIntField(fMaxRequestSize).
				Description("Largest PutRecords request, data plus partition keys, in bytes: 5 MiB (default, the long-standing limit) up to 10 MiB.").
				Default(default5MiB).Advanced(),
			service.NewStringAnnotatedEnumField(fOrdering, map[string]string{
				"strict":  "No record of a partition key is written after an earlier unwritten record of that key; later records of the key are re-sent after a failed one (counted duplicates).",
				"relaxed": "Only failed records are re-sent: no ordering duplicates, but a retried record may land after later records of its key.",
			}).Description("How records are retried when a request partly fails: keeping per-partition-key order (see Ordering and duplicates) or not.").Default("strict"),
			service.NewBackOffField(fBackoff, true, &backoff.ExponentialBackOff{
				InitialInterval: 100 * time.Millisecond,
				MaxInterval:     5 * time.Second,
				MaxElapsedTime:  time.Minute,
			}).Description("Retry waits (jittered exponential) when a shard makes no progress. `max_elapsed_time` is the retry budget: the longest a shard may go without writing a record before its unwritten records fail; `0s` retries forever (a negative budget is refused at start)."),
			service.NewObjectField(fShardRate,
				service.NewIntField("records_per_second").Description("Records per second per shard; 0 disables this limit.").Default(1000),
				service.NewIntField("bytes_per_second").Description("Bytes (data plus partition key) per second per shard; 0 disables this limit.").Default(default1MiB),
			).Description("Starting pace of each shard, adapted down on throttling and back up when it stops.").Advanced(),
			service.NewDurationField(fReqTimeout).
				Description("Longest a request to Kinesis may take (a PutRecords, and each call Connect makes) before it counts as failed with an unknown outcome and is re-sent: without it, a connection on which Kinesis stopped answering (a network partition) would hang until TCP gives up, minutes later. Leave room for the largest request on the slowest link (5 MiB in 30 s is 170 KiB/s).").
				Default("30s").Advanced(),
			service.NewDurationField(fShardRefresh).
				Description("How often the shard map is re-listed (it is also re-listed when a write lands on an unexpected shard).").
				Default("1m").Advanced(),
			service.NewOutputField(fDeadLetter).
				Description("Optional output for the messages that must not reach Kinesis: those arriving with an error flag (a processor failed on them) and the records that fail for good (see Dead letter). Without it, flagged messages are written like any other and failed records are reported to the engine (batch error), for a `fallback` output to route.").
				Optional(),
			service.NewBoolField(fSDKClient).
				Description("Send PutRecords through the AWS SDK's generic client instead of the output's own request path (see Requests and limits). The own path is about twice as cheap in CPU; this switch is a fallback should it ever disagree with an AWS endpoint.").
				Default(false).Advanced(),
			service.NewStringEnumField(fProtocol, "json", "cbor").
				Description("Encoding of PutRecords requests: `json` (JSON 1.1, data in base64, what the AWS SDK for Go sends) or `cbor` (CBOR, data as raw bytes, what the AWS SDKs for Java and the KPL send; a quarter fewer bytes, a tenth less CPU per record). See Requests and limits.").
				Default("json").Advanced(),
		).
		Example("DMS pipeline target", "Writes the JSON records of `dms_csv_to_json` to a stream, strict per-key order.", `
output:
  aws_kinesis_streams:
    stream: arn:aws:kinesis:us-east-1:123456789012:stream/dms-target
    partition_key: ${! @dms_partition_key }
    batching:
      count: 500
      period: 100ms
`).
		Example("Local stand-in", "Writes to kinesalite with static credentials, 5 MiB requests, relaxed order.", `
output:
  aws_kinesis_streams:
    stream: dms-target
    region: us-east-1
    endpoint: http://127.0.0.1:4567
    credentials:
      id: testkey
      secret: testsecret
    ordering: relaxed
    batching:
      count: 1000
      period: 50ms
`)
}

func init() {
	service.MustRegisterBatchOutput("aws_kinesis_streams", outputSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			pol, err := conf.FieldBatchPolicy(fBatching)
			if err != nil {
				return nil, pol, 0, err
			}
			mif, err := maxInFlight(conf)
			if err != nil {
				return nil, pol, 0, err
			}
			oc, err := parseOutputConfig(conf)
			if err != nil {
				return nil, pol, 0, err
			}
			// Resolved without a request (credentials are fetched at the
			// first one): a missing profile or region is a config error,
			// not a Connect that fails at every retry.
			if _, err := awsconf.Load(context.Background(), oc.conn); err != nil {
				return nil, pol, 0, err
			}
			return newOutput(oc, res), withPeriod(pol), mif, nil
		})
}

// defaultBatchPeriod is the period given to a batching policy that waits
// for a count, a byte size or a check and has none.
const defaultBatchPeriod = "1s"

// withPeriod gives a batching policy that would wait for more messages
// without a time limit (count above 1, byte_size or check, no period) the
// period defaultBatchPeriod. Without one, messages wait in the batcher,
// unacknowledged, until more arrive: the last rows of a tail never go out
// while the input waits for new files, and behind aws_s3_dms with
// checkpoint.interval: 0s (which emits no more than 4 batches beyond the
// saved checkpoint, and saves only acknowledged ones) nothing goes out ever.
func withPeriod(pol service.BatchPolicy) service.BatchPolicy {
	if pol.Period == "" && (pol.Count > 1 || pol.ByteSize > 0 || pol.Check != "") {
		pol.Period = defaultBatchPeriod
	}
	return pol
}

// kinesisAPI is the part of the Kinesis client the output uses; tests inject
// fakes through it.
type kinesisAPI interface {
	PutRecords(context.Context, *kinesis.PutRecordsInput, ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

type outputConfig struct {
	stream         streamRef
	partitionKey   *service.InterpolatedString
	hashKey        *service.InterpolatedString
	conn           awsconf.Config
	maxRecordSize  int
	maxRequestSize int
	strict         bool
	backoff        backoff.ExponentialBackOff
	shardRecords   float64
	shardBytes     float64
	shardRefresh   time.Duration
	reqTimeout     time.Duration
	sdkClient      bool
	cbor           bool // protocol: cbor
	deadLetter     *service.OwnedOutput
	// keyMeta is the metadata key when partition_key is exactly
	// ${! @name }: string values are then read without the interpolation
	// engine (same result, a fraction of the CPU).
	keyMeta string
}

var metaRefPattern = regexp.MustCompile(`^\$\{!\s*@([A-Za-z0-9_.\-]+)\s*\}$`)

func maxInFlight(conf *service.ParsedConfig) (int, error) {
	mif, err := conf.FieldMaxInFlight()
	if err != nil {
		return 0, err
	}
	if mif < 1 {
		return 0, fmt.Errorf("max_in_flight must be at least 1, got %d", mif)
	}
	return mif, nil
}

// lintConf is the output's lint rule: the checks of its constructor, except
// building the dead-letter output (linted by Benthos as an output of its
// own) and, under lint --skip-env-var-check only, with an empty stream
// (an unset ${STREAM}, see lintcheck) left to the start.
func lintConf(conf *service.ParsedConfig) error {
	if _, err := maxInFlight(conf); err != nil {
		return err
	}
	_, err := parseConfig(conf, true)
	return err
}

func parseOutputConfig(conf *service.ParsedConfig) (outputConfig, error) {
	return parseConfig(conf, false)
}

// placeholderStream fills, under lint --skip-env-var-check (which replaces
// an unset variable with ""), what of the stream may be such a variable: the
// whole stream, or an empty partition, region, account id or name of its ARN
// (arn:aws:kinesis:${AWS_REGION}:${ACCOUNT_ID}:stream/dms). The start sees
// the real values and checks them.
func placeholderStream(conf *service.ParsedConfig, s string) (string, error) {
	if s == "" {
		return "stream-from-the-environment", nil
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kinesis" {
		return s, nil
	}
	if parts[1] == "" {
		parts[1] = "aws"
	}
	if parts[3] == "" {
		region, err := conf.FieldString(fRegion)
		if err != nil {
			return "", err
		}
		if region == "" {
			region = "us-east-1"
		}
		parts[3] = region
	}
	if parts[4] == "" {
		parts[4] = "123456789012"
	}
	if parts[5] == "stream/" {
		parts[5] = "stream/stream-from-the-environment"
	}
	return strings.Join(parts, ":"), nil
}

func parseConfig(conf *service.ParsedConfig, lint bool) (outputConfig, error) {
	var oc outputConfig
	s, err := conf.FieldString(fStream)
	if err != nil {
		return oc, err
	}
	if lint && lintcheck.EmptyIsPlaceholder() {
		if s, err = placeholderStream(conf, s); err != nil {
			return oc, err
		}
	}
	if oc.stream, err = parseStream(s); err != nil {
		return oc, fmt.Errorf("%s: %w", fStream, err)
	}
	if oc.partitionKey, err = conf.FieldInterpolatedString(fPartitionKey); err != nil {
		return oc, err
	}
	if k, ok := oc.partitionKey.Static(); ok {
		if err := checkPartitionKey(k); err != nil {
			return oc, fmt.Errorf("%s: %w", fPartitionKey, err)
		}
	} else if raw, err := conf.FieldString(fPartitionKey); err == nil {
		if m := metaRefPattern.FindStringSubmatch(raw); m != nil {
			oc.keyMeta = m[1]
		}
	}
	if conf.Contains(fHashKey) {
		if oc.hashKey, err = conf.FieldInterpolatedString(fHashKey); err != nil {
			return oc, err
		}
		if k, ok := oc.hashKey.Static(); ok && k == "" {
			oc.hashKey = nil // not set, as `dmsbridge create` and an unset ${HASH_KEY:} write it
		} else if ok {
			if _, err := parseHashKey(k); err != nil {
				return oc, fmt.Errorf("%s: %w", fHashKey, err)
			}
		}
	}
	str := func(path ...string) string {
		if err != nil {
			return ""
		}
		var v string
		v, err = conf.FieldString(path...)
		return v
	}
	oc.conn = awsconf.Config{
		Region:         str(fRegion),
		Endpoint:       str(fEndpoint),
		ID:             str(fCredentials, "id"),
		Secret:         str(fCredentials, "secret"),
		Token:          str(fCredentials, "token"),
		Profile:        str(fCredentials, "profile"),
		Role:           str(fCredentials, "role"),
		RoleExternalID: str(fCredentials, "role_external_id"),
		// The output retries itself, per record, honouring its context.
		NoSDKRetries: true,
	}
	if err != nil {
		return oc, err
	}
	if oc.conn.Region == "" {
		oc.conn.Region = oc.stream.region()
	} else if r := oc.stream.region(); r != "" && r != oc.conn.Region {
		return oc, fmt.Errorf("%s: stream ARN is in region %s but region is %s: a Kinesis stream takes requests only in its own region (leave region empty to use the ARN's)",
			fStream, r, oc.conn.Region)
	}
	if err := oc.conn.Validate(); err != nil {
		return oc, err
	}
	if oc.maxRecordSize, err = conf.FieldInt(fMaxRecordSize); err != nil {
		return oc, err
	}
	if oc.maxRecordSize < 1 || oc.maxRecordSize > limit10MiB {
		return oc, fmt.Errorf("%s must be between 1 and %d bytes (10 MiB), got %d", fMaxRecordSize, limit10MiB, oc.maxRecordSize)
	}
	if oc.maxRequestSize, err = conf.FieldInt(fMaxRequestSize); err != nil {
		return oc, err
	}
	if oc.maxRequestSize < 1 || oc.maxRequestSize > limit10MiB {
		return oc, fmt.Errorf("%s must be between 1 and %d bytes (10 MiB), got %d", fMaxRequestSize, limit10MiB, oc.maxRequestSize)
	}
	if oc.maxRecordSize > oc.maxRequestSize {
		return oc, fmt.Errorf("%s (%d) must not exceed %s (%d)", fMaxRecordSize, oc.maxRecordSize, fMaxRequestSize, oc.maxRequestSize)
	}
	ord, err := conf.FieldString(fOrdering)
	if err != nil {
		return oc, err
	}
	// Benthos' lint compares the options without case.
	switch strings.ToLower(ord) {
	case "strict":
		oc.strict = true
	case "relaxed":
	default:
		return oc, fmt.Errorf("%s must be strict or relaxed, got %q", fOrdering, ord)
	}
	bo, err := conf.FieldBackOff(fBackoff)
	if err != nil {
		return oc, err
	}
	if bo.InitialInterval <= 0 || bo.MaxInterval < bo.InitialInterval {
		return oc, fmt.Errorf("%s: initial_interval must be > 0 and <= max_interval", fBackoff)
	}
	if bo.MaxElapsedTime < 0 {
		// The backoff stops at once when the budget is negative: no
		// retry at all, where the documented values are 0 (forever)
		// and a positive budget.
		return oc, fmt.Errorf("%s: max_elapsed_time must not be negative (0s retries forever), got %s", fBackoff, bo.MaxElapsedTime)
	}
	oc.backoff = *bo
	rps, err := conf.FieldInt(fShardRate, "records_per_second")
	if err != nil {
		return oc, err
	}
	bps, err := conf.FieldInt(fShardRate, "bytes_per_second")
	if err != nil {
		return oc, err
	}
	if rps < 0 || bps < 0 {
		return oc, fmt.Errorf("%s: rates must be >= 0 (0 disables), got records_per_second %d, bytes_per_second %d", fShardRate, rps, bps)
	}
	oc.shardRecords, oc.shardBytes = float64(rps), float64(bps)
	if oc.reqTimeout, err = conf.FieldDuration(fReqTimeout); err != nil {
		return oc, err
	}
	if oc.reqTimeout <= 0 {
		return oc, fmt.Errorf("%s must be > 0", fReqTimeout)
	}
	if oc.shardRefresh, err = conf.FieldDuration(fShardRefresh); err != nil {
		return oc, err
	}
	if oc.shardRefresh <= 0 {
		return oc, fmt.Errorf("%s must be > 0", fShardRefresh)
	}
	if oc.sdkClient, err = conf.FieldBool(fSDKClient); err != nil {
		return oc, err
	}
	proto, err := conf.FieldString(fProtocol)
	if err != nil {
		return oc, err
	}
	// Benthos' lint compares the options without case.
	switch strings.ToLower(proto) {
	case "json":
	case "cbor":
		if oc.sdkClient {
			return oc, fmt.Errorf("%s: cbor needs the output's own PutRecords path; it cannot be combined with %s: true", fProtocol, fSDKClient)
		}
		oc.cbor = true
	default:
		return oc, fmt.Errorf("%s must be json or cbor, got %q", fProtocol, proto)
	}
	if err := checkBatching(conf); err != nil {
		return oc, err
	}
	hasDL := conf.Contains(fDeadLetter)
	if hasDL {
		// Benthos' lint of an output field passes a scalar and an empty
		// object, which fail only when built (in streams mode after the
		// input has started). null is not set, as `dmsbridge create`
		// writes it.
		v, _ := conf.FieldAny(fDeadLetter)
		n, ok := v.(*yaml.Node)
		if v == nil || ok && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
			hasDL = false
		} else if ok && (n.Kind != yaml.MappingNode || len(n.Content) == 0) {
			got := "an empty object"
			if n.Kind != yaml.MappingNode {
				got = n.ShortTag() + " " + strconv.Quote(n.Value)
			}
			return oc, fmt.Errorf("%s: must name an output, such as {file: {path: ...}}, got %s", fDeadLetter, got)
		}
	}
	if hasDL && !lint {
		if oc.deadLetter, err = conf.FieldOutput(fDeadLetter); err != nil {
			return oc, fmt.Errorf("%s: %w", fDeadLetter, err)
		}
	}
	return oc, nil
}

// checkBatching refuses a batch policy that Benthos would refuse at start
// (a period that is no duration), or would run with a trigger silently
// disabled (a negative count, byte size or period), naming the field.
func checkBatching(conf *service.ParsedConfig) error {
	pol, err := conf.FieldBatchPolicy(fBatching)
	if err != nil {
		return fmt.Errorf("%s: %w", fBatching, err)
	}
	if pol.Count < 0 {
		return fmt.Errorf("%s.count: must not be negative (0 disables it), got %d", fBatching, pol.Count)
	}
	if pol.ByteSize < 0 {
		return fmt.Errorf("%s.byte_size: must not be negative (0 disables it), got %d", fBatching, pol.ByteSize)
	}
	if pol.Period != "" {
		d, err := time.ParseDuration(pol.Period)
		if err != nil {
			return fmt.Errorf("%s.period: %w", fBatching, err)
		}
		if d < 0 {
			return fmt.Errorf("%s.period: must not be negative (empty disables it), got %s", fBatching, pol.Period)
		}
	}
	return nil
}

func checkPartitionKey(k string) error {
	if k == "" {
		return errors.New("partition key is empty")
	}
	// Kinesis takes a Unicode string, and the JSON body cannot carry
	// other bytes (they go out as U+FFFD: another key than the one hashed
	// for routing and pacing, and distinct keys merged). ValidString is
	// cheap on the usual ASCII keys (8 bytes a step), unlike counting.
	if !utf8.ValidString(k) {
		q := k
		if len(q) > 64 {
			q = q[:64] + "..."
		}
		return fmt.Errorf("partition key %q is not valid UTF-8: Kinesis takes Unicode characters (convert the source's encoding, e.g. Latin-1, to UTF-8)", q)
	}
	// Kinesis measures the length in UTF-16 code units (Java's
	// String.length; kinesalite does the same): a character outside the
	// Basic Multilingual Plane (4 bytes of UTF-8: emoji, rare CJK) counts
	// twice. A key of at most 256 bytes has at most 256 units: only longer
	// ones are counted (counting every key cost 1.4 % of the pipeline).
	if len(k) <= maxPartitionKeyChars {
		return nil
	}
	chars, units := 0, 0
	for _, r := range k {
		chars++
		units++
		if r > 0xFFFF {
			units++
		}
	}
	if units <= maxPartitionKeyChars {
		return nil
	}
	if units == chars {
		return fmt.Errorf("partition key has %d characters, Kinesis allows at most %d", chars, maxPartitionKeyChars)
	}
	return fmt.Errorf("partition key has %d UTF-16 code units (%d characters; those outside the Basic Multilingual Plane, e.g. emoji, count twice), Kinesis allows at most %d",
		units, chars, maxPartitionKeyChars)
}

// stats are the output's counters, mirrored into Benthos metrics.
type stats struct {
	written, bytes, requests, throttled, retries, dupOrdering, unknownResends, failed, deadLettered atomic.Int64
}

type metrics struct {
	written, bytes, requests, throttled, retries, dupOrdering, unknownResends, failed, deadLettered *service.MetricCounter
	reqRecords, reqBytes, recMax, rateFactor                                                        *service.MetricGauge
	latency                                                                                         *service.MetricTimer
}

func newMetrics(m *service.Metrics) metrics {
	ms := metrics{
		written:        m.NewCounter("kinesis_records_written"),
		bytes:          m.NewCounter("kinesis_bytes_written"),
		requests:       m.NewCounter("kinesis_requests", "outcome"),
		throttled:      m.NewCounter("kinesis_records_throttled", "shard"),
		retries:        m.NewCounter("kinesis_retries"),
		dupOrdering:    m.NewCounter("kinesis_duplicates_ordering"),
		unknownResends: m.NewCounter("kinesis_resends_unknown_outcome"),
		failed:         m.NewCounter("kinesis_records_failed"),
		deadLettered:   m.NewCounter("kinesis_dead_lettered"),
		reqRecords:     m.NewGauge("kinesis_request_records"),
		reqBytes:       m.NewGauge("kinesis_request_bytes"),
		recMax:         m.NewGauge("kinesis_record_bytes_max"),
		rateFactor:     m.NewGauge("kinesis_shard_rate_percent", "shard"),
		latency:        m.NewTimer("kinesis_put_records_latency_ns"),
	}
	// Exported at 0 from the start: an absent series reads as "no data",
	// not as "none happened", in dashboards and alerts.
	for _, c := range []*service.MetricCounter{ms.written, ms.bytes, ms.retries, ms.dupOrdering, ms.unknownResends, ms.failed, ms.deadLettered} {
		c.Incr(0)
	}
	for _, outcome := range []string{"ok", "partial", "error"} {
		ms.requests.Incr(0, outcome)
	}
	return ms
}

// shardState is what the output keeps per shard across batches.
type shardState struct {
	id       string
	inflight chan struct{} // capacity 1: at most one PutRecords in flight
	pacer    *pacer
	// keyCap (strict mode) is the most records of one partition key a
	// request carries; it adapts to the failures the shard sees.
	keyCap atomic.Int64
	clean  atomic.Int64 // requests in a row without any failure
}

type output struct {
	conf outputConfig
	log  *service.Logger
	m    metrics
	st   stats

	// newClient builds the Kinesis client; tests replace it.
	newClient func(ctx context.Context) (kinesisAPI, error)

	mu     sync.Mutex
	client kinesisAPI
	shards map[string]*shardState

	smap      atomic.Pointer[shardMap]
	refreshCh chan struct{}
	// lastList is when the last ListShards was made, as monoSince: a
	// monotonic reading, so that a step of the wall clock neither holds
	// the next re-listing back (by the step) nor lets them burst.
	lastList atomic.Int64

	closeCtx  context.Context
	closeFn   context.CancelFunc
	bgOnce    sync.Once
	bgDone    chan struct{}
	now       func() time.Time
	sleepHook func(time.Duration) // tests: observe backoff waits
	clockSkew atomic.Int64        // the own PutRecords path's clock-skew correction, kept across reconnects

	// outageAfter is how long a shard may fail with no answer from Kinesis
	// (transport errors, 5xx) before the batch stops and WriteBatch
	// reports "not connected" (0: never); only without a retry budget.
	outageAfter time.Duration
	// resume remembers, for a batch stopped by a lost connection, which
	// of its records were written, so that the engine's retry of the same
	// batch after reconnecting sends only the others (guarded by mu).
	resume map[resumeKey]*resumeState
	// dlPrimed: the dead_letter output was started (guarded by mu).
	dlPrimed bool
	// refused is the refusal (access denied, KMS key state) that stopped
	// the last batch without a retry budget, reported by the next Connect
	// with a wait from refuseBo, which a write that goes through resets
	// (guarded by mu).
	refused  *refusedError
	refusing bool // a refusal stopped a batch, and no batch went through since
	refuseBo backoff.ExponentialBackOff
	// dlMu is held shared by a write to the dead letter and exclusively by
	// Close while it sets dlClosed, before closing the dead letter: a
	// write after that would send on the dead letter's closed channel.
	dlMu     sync.RWMutex
	dlClosed bool
	// dlDown is the dead letter's failure that stopped the last batch,
	// reported by the next Connect with a wait from dlBo; dlFailing holds
	// until the dead letter takes a batch again, which resets dlBo
	// (guarded by mu).
	dlDown    error
	dlFailing bool
	dlBo      backoff.ExponentialBackOff
	// connFails paces the log of a lasting Connect failure.
	connFails outage.Tracker
}

// maxResume bounds the remembered stopped batches (one per batch in
// flight); forgetting one only means re-sending its written records.
const maxResume = 64

// resumeKey identifies a batch by its size and its first and last
// messages' bytes (address and length): the engine retries a batch with the
// same messages, whose bytes do not move. The state keeps those bytes
// referenced, so their addresses cannot be reused by another batch while it
// is remembered.
type resumeKey struct {
	n           int
	first, last *byte
	flen, llen  int
}

type resumeState struct {
	first, last []byte // keep the identifying bytes alive
	written     []bool // by index in the batch
	at          time.Time
}

func batchResumeKey(batch service.MessageBatch) (resumeKey, []byte, []byte, bool) {
	if len(batch) == 0 {
		return resumeKey{}, nil, nil, false
	}
	first, err1 := batch[0].AsBytes()
	last, err2 := batch[len(batch)-1].AsBytes()
	if err1 != nil || err2 != nil || len(first) == 0 || len(last) == 0 {
		return resumeKey{}, nil, nil, false
	}
	return resumeKey{n: len(batch), first: unsafe.SliceData(first), last: unsafe.SliceData(last), flen: len(first), llen: len(last)}, first, last, true
}

// takeResume returns (and forgets) the written flags of a stopped batch
// being retried, or nil.
func (o *output) takeResume(batch service.MessageBatch) []bool {
	k, _, _, ok := batchResumeKey(batch)
	if !ok {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	st := o.resume[k]
	if st == nil {
		return nil
	}
	delete(o.resume, k)
	return st.written
}

// saveResume remembers which records of a stopped batch were written.
func (o *output) saveResume(batch service.MessageBatch, recs []record) {
	k, first, last, ok := batchResumeKey(batch)
	if !ok {
		return
	}
	written := make([]bool, len(batch))
	some := false
	for i := range recs {
		if recs[i].written {
			written[recs[i].idx], some = true, true
		}
	}
	if !some {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.resume == nil {
		o.resume = map[resumeKey]*resumeState{}
	}
	if len(o.resume) >= maxResume {
		var oldest resumeKey
		var at time.Time
		for rk, st := range o.resume {
			if at.IsZero() || st.at.Before(at) {
				oldest, at = rk, st.at
			}
		}
		delete(o.resume, oldest)
	}
	o.resume[k] = &resumeState{first: first, last: last, written: written, at: o.now()}
}

func newOutput(c outputConfig, res *service.Resources) *output {
	o := &output{
		conf:      c,
		log:       res.Logger(),
		m:         newMetrics(res.Metrics()),
		shards:    map[string]*shardState{},
		refreshCh: make(chan struct{}, 1),
		bgDone:    make(chan struct{}),
		now:       time.Now,
	}
	if c.backoff.MaxElapsedTime == 0 {
		o.outageAfter = defaultOutageAfter
	}
	o.refuseBo = c.backoff
	o.refuseBo.MaxElapsedTime = 0
	o.refuseBo.Reset()
	o.dlBo = o.refuseBo
	o.closeCtx, o.closeFn = context.WithCancel(context.Background())
	o.newClient = func(ctx context.Context) (kinesisAPI, error) {
		cfg, err := awsconf.Load(ctx, c.conn)
		if err != nil {
			return nil, err
		}
		kc := kinesis.NewFromConfig(cfg)
		if err := c.conn.CheckResolvedEndpoint(kc.Options().BaseEndpoint, "AWS_ENDPOINT_URL_KINESIS"); err != nil {
			return nil, err
		}
		return o.clientFor(kc), nil
	}
	return o
}

// clientFor turns an SDK client into the one the output writes with: its
// credentials provider's failures typed (see awsconf.CredentialsError) and, unless
// sdk_client is set, PutRecords on the output's own path.
func (o *output) clientFor(c *kinesis.Client) kinesisAPI {
	c = kinesis.New(c.Options(), typeCredentialErrors)
	if o.conf.sdkClient {
		return c
	}
	fc := newFastClient(c, o.conf.stream)
	fc.skew = &o.clockSkew
	fc.cbor = o.conf.cbor
	return fc
}

// typeCredentialErrors is a kinesis.Options function wrapping the
// credentials provider in awsconf.TypedCredentials.
func typeCredentialErrors(opts *kinesis.Options) {
	if opts.Credentials == nil {
		return
	}
	if _, ok := opts.Credentials.(awsconf.TypedCredentials); ok {
		return
	}
	opts.Credentials = awsconf.TypedCredentials{CredentialsProvider: opts.Credentials}
}

func (o *output) streamName() *string {
	if o.conf.stream.arn != "" {
		return nil
	}
	return aws.String(o.conf.stream.name)
}

func (o *output) streamARN() *string {
	if o.conf.stream.arn == "" {
		return nil
	}
	return aws.String(o.conf.stream.arn)
}

// Connect tries connect once a second while it fails, but returns (and so
// has the engine log) a lasting failure only at growing intervals, up to once
// a minute (see outage.Tracker): a Kinesis outage used to log an ERROR line a
// second for as long as it lasted. A back-off error (a refusal, a failing
// dead letter) is returned at once: it carries its own wait.
func (o *output) Connect(ctx context.Context) error {
	err := o.connFails.Retry(ctx, o.connect, func(err error) bool {
		var bo *service.ErrBackOff
		return errors.As(err, &bo)
	})
	if err == nil {
		o.connFails.Recovered()
	}
	return err
}

// connect builds the client, checks the stream exists and is writable, and
// learns its shards.
func (o *output) connect(ctx context.Context) error {
	o.mu.Lock()
	if r := o.refused; r != nil {
		// The stream refused the last batch: the engine reports this error
		// (/ready 503 naming it) and waits before connecting again and
		// retrying the batch, which is the only way to learn whether the
		// refusal has ended (DescribeStreamSummary may well be allowed).
		o.refused = nil
		wait := o.refuseBo.NextBackOff()
		o.mu.Unlock()
		return service.NewErrBackOff(fmt.Errorf("%w; trying again in %v", r, wait.Round(time.Millisecond)), wait)
	}
	if e := o.dlDown; e != nil {
		// The dead letter failed to take the last batch's messages: the
		// batch waits (not connected, /ready 503 with this error), and is
		// tried again after the wait.
		o.dlDown = nil
		wait := o.dlBo.NextBackOff()
		o.mu.Unlock()
		return service.NewErrBackOff(fmt.Errorf("%w; trying again in %v", e, wait.Round(time.Millisecond)), wait)
	}
	client := o.client
	if dl := o.conf.deadLetter; dl != nil && !o.dlPrimed {
		// Started with the output: it then stops with it (an owned output
		// never started cannot be closed).
		if err := dl.Prime(); err != nil {
			o.mu.Unlock()
			return fmt.Errorf("%s: %w", fDeadLetter, err)
		}
		o.dlPrimed = true
	}
	o.mu.Unlock()
	if client == nil {
		c, err := o.newClient(ctx)
		if err != nil {
			return err
		}
		client = c
	}
	dctx, dcancel := context.WithTimeout(ctx, o.conf.reqTimeout)
	out, err := client.DescribeStreamSummary(dctx, &kinesis.DescribeStreamSummaryInput{
		StreamName: o.streamName(), StreamARN: o.streamARN(),
	})
	dcancel()
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return fmt.Errorf("kinesis stream %q does not exist in region %s for these credentials: create it or correct the stream, region or credentials field: %w",
				o.streamLabel(), clientRegion(client, o.conf.conn.Region), err)
		}
		return fmt.Errorf("describing kinesis stream %q: %w", o.streamLabel(), err)
	}
	if d := out.StreamDescriptionSummary; d != nil {
		switch d.StreamStatus {
		case types.StreamStatusActive, types.StreamStatusUpdating:
		default:
			return fmt.Errorf("kinesis stream %q is %s, not ACTIVE", o.streamLabel(), d.StreamStatus)
		}
	}
	lctx, lcancel := context.WithTimeout(ctx, 3*o.conf.reqTimeout)
	m, err := o.listShards(lctx, client)
	lcancel()
	if err != nil {
		return err
	}
	o.smap.Store(m)
	o.exportShards(m)
	o.pruneShards(m)
	o.mu.Lock()
	o.client = client
	o.mu.Unlock()
	o.bgOnce.Do(func() { go o.refresher() })
	after := ""
	if d := o.connFails.Recovered(); d > 0 {
		after = fmt.Sprintf(" (after failing for %v)", d.Round(time.Second))
	}
	proto := "JSON"
	if fc, ok := client.(*fastClient); ok && fc.cbor {
		proto = "CBOR"
	}
	o.log.Infof("Writing to kinesis stream %s with %d open shards%s, PutRecords in %s", o.streamLabel(), len(m.shards), after, proto)
	return nil
}

// clientRegion is the region client sends to (resolved from the
// environment or profile when the region field is empty).
func clientRegion(client kinesisAPI, configured string) string {
	if c, ok := client.(interface{ Options() kinesis.Options }); ok && c.Options().Region != "" {
		return c.Options().Region
	}
	if configured == "" {
		return "(none)"
	}
	return configured
}

func (o *output) streamLabel() string {
	if o.conf.stream.arn != "" {
		return o.conf.stream.arn
	}
	return o.conf.stream.name
}

// listShards lists the open shards of the stream (all pages).
func (o *output) listShards(ctx context.Context, client kinesisAPI) (*shardMap, error) {
	var ranges []shardRange
	in := &kinesis.ListShardsInput{StreamName: o.streamName(), StreamARN: o.streamARN()}
	for {
		out, err := client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing shards of kinesis stream %q: %w", o.streamLabel(), err)
		}
		for _, s := range out.Shards {
			if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
				continue // closed
			}
			if s.ShardId == nil || s.HashKeyRange == nil || s.HashKeyRange.StartingHashKey == nil || s.HashKeyRange.EndingHashKey == nil {
				continue
			}
			start, err1 := parseHashKey(*s.HashKeyRange.StartingHashKey)
			end, err2 := parseHashKey(*s.HashKeyRange.EndingHashKey)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("shard %s of %q has an invalid hash key range %q-%q", *s.ShardId, o.streamLabel(),
					*s.HashKeyRange.StartingHashKey, *s.HashKeyRange.EndingHashKey)
			}
			ranges = append(ranges, shardRange{id: *s.ShardId, start: start, end: end})
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	o.lastList.Store(int64(monoSince()))
	if len(ranges) == 0 {
		return nil, fmt.Errorf("kinesis stream %q has no open shards", o.streamLabel())
	}
	return newShardMap(ranges)
}

// refresher re-lists the shards on a timer and on request.
func (o *output) refresher() {
	defer close(o.bgDone)
	t := time.NewTicker(o.conf.shardRefresh)
	defer t.Stop()
	for {
		select {
		case <-o.closeCtx.Done():
			return
		case <-t.C:
		case <-o.refreshCh:
			// At most one re-list per second when writes keep hitting
			// unexpected shards.
			since := monoSince() - time.Duration(o.lastList.Load())
			if since < time.Second {
				if sleepCtx(o.closeCtx, time.Second-since) != nil {
					return
				}
			}
		}
		o.refreshNow(o.closeCtx)
	}
}

// monoStart anchors monoSince.
var monoStart = time.Now()

// monoSince is the time elapsed since monoStart on the monotonic clock,
// which wall-clock steps do not move.
func monoSince() time.Duration { return time.Since(monoStart) }

func (o *output) refreshNow(ctx context.Context) {
	o.mu.Lock()
	client := o.client
	o.mu.Unlock()
	if client == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := o.listShards(ctx, client)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Warnf("Refreshing the shard map: %v", err)
		}
		return
	}
	old := o.smap.Swap(m)
	o.exportShards(m)
	o.pruneShards(m)
	if old == nil || strings.Join(old.ids(), ",") != strings.Join(m.ids(), ",") {
		o.log.Infof("Kinesis stream %s now has %d open shards: %v", o.streamLabel(), len(m.shards), m.ids())
	}
}

// exportShards exports the per-shard counter of every open shard at 0, as
// the other counters are from the start: a shard's series must exist before
// its first throttle, or that first increase is lost to rate() and increase().
func (o *output) exportShards(m *shardMap) {
	for _, id := range m.ids() {
		o.m.throttled.Incr(0, id)
	}
}

// pruneShards forgets the state (pacer, request size) of the shards that are
// not open in m: after every reshard the closed shards' ids never come back,
// so keeping them would grow the state with every shard the stream ever had.
// A write still under way on one keeps its own reference; a batch that routed
// by the map before m and asks for a closed shard afterwards gets fresh
// state, forgotten at the next refresh.
func (o *output) pruneShards(m *shardMap) {
	open := make(map[string]bool, len(m.shards))
	for _, s := range m.shards {
		open[s.id] = true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for id := range o.shards {
		if id != unknownShard && !open[id] {
			delete(o.shards, id)
		}
	}
}

func (o *output) requestRefresh() {
	select {
	case o.refreshCh <- struct{}{}:
	default:
	}
}

func (o *output) shard(id string) *shardState {
	o.mu.Lock()
	defer o.mu.Unlock()
	s, ok := o.shards[id]
	if !ok {
		s = &shardState{id: id, inflight: make(chan struct{}, 1), pacer: newPacer(o.conf.shardRecords, o.conf.shardBytes, nil)}
		s.keyCap.Store(maxRecordsPerRequest)
		if id == unknownShard {
			// Records of unknown hash ranges: no pacing, the real shard is
			// learnt from the response.
			s.pacer = newPacer(0, 0, nil)
		}
		o.shards[id] = s
	}
	return s
}

var recordPool sync.Pool // *[]record

// record is one message of a batch on its way to Kinesis.
type record struct {
	idx     int
	key     string
	hashKey *string
	data    []byte
	size    int  // data + partition key bytes
	routed  bool // passed validation, handed to a shard writer
	group   int  // index of its shard in the shard map (len: no known shard)
	written bool
	err     error
}

// batchRun is the state of one WriteBatch shared by its shard workers.
type batchRun struct {
	batch    service.MessageBatch
	cancel   context.CancelFunc
	mu       sync.Mutex
	abortErr error // credentials lost or stream gone: stop everything
	written  atomic.Int64
}

func (b *batchRun) aborted() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.abortErr != nil
}

func (b *batchRun) abort(err error) {
	b.mu.Lock()
	if b.abortErr == nil {
		b.abortErr = err
	}
	b.mu.Unlock()
	b.cancel()
}

// WriteBatch writes every message of the batch, see the spec description for
// the guarantees.
func (o *output) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	o.mu.Lock()
	client := o.client
	o.mu.Unlock()
	smap := o.smap.Load()
	if client == nil || smap == nil {
		return service.ErrNotConnected
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(o.closeCtx, cancel)
	defer stop()

	// The records live in a pooled slice: nothing refers to them once
	// every shard writer has returned (below), and clearing drops the
	// message data.
	rp, _ := recordPool.Get().(*[]record)
	if rp == nil || cap(*rp) < len(batch) {
		s := make([]record, len(batch))
		rp = &s
	}
	recs := (*rp)[:len(batch)]
	defer func() {
		clear(recs)
		*rp = recs[:0]
		recordPool.Put(rp)
	}()
	// failures are the messages that are not written to Kinesis: records
	// that failed, and (with a dead letter) messages flagged upstream.
	// kinesis_records_failed counts them once the batch is settled (see
	// countFailed), not here: a batch that waits (not connected) is
	// written again, and its failures are found again then.
	var failures []failure
	fail := func(i int, err error) {
		failures = append(failures, failure{idx: i, err: err, record: true})
	}
	deadLetter := o.conf.deadLetter

	staticKey, keyIsStatic := o.conf.partitionKey.Static()
	var staticHash *string
	var staticHashVal u128
	hashStatic := false
	if o.conf.hashKey != nil {
		if h, ok := o.conf.hashKey.Static(); ok {
			staticHashVal, _ = parseHashKey(h)
			staticHash, hashStatic = &h, true
		}
	}
	var keyExec, hashExec *service.MessageBatchInterpolationExecutor
	if !keyIsStatic && o.conf.keyMeta == "" {
		keyExec = batch.InterpolationExecutor(o.conf.partitionKey)
	}
	if o.conf.hashKey != nil && !hashStatic {
		hashExec = batch.InterpolationExecutor(o.conf.hashKey)
	}
	// groups[i] holds the records of smap.shards[i], the last one those
	// of no known shard; order lists the groups in first-use order.
	groups := make([][]*record, len(smap.shards)+1)
	counts := make([]int, len(groups))
	var order []int
	maxRec := 0
	var lastKey string // the last partition key hashed, and its hash
	var lastHash u128
	var haveLast bool
	done := o.takeResume(batch)
	resumed := 0
	for i, msg := range batch {
		r := &recs[i]
		r.idx = i
		if done != nil && done[i] {
			// Written before the connection was lost: not sent again.
			r.written = true
			resumed++
			continue
		}
		if deadLetter != nil {
			if err := msg.GetError(); err != nil {
				// A processor failed on it: the dead letter's, not Kinesis'.
				failures = append(failures, failure{idx: i, err: err})
				continue
			}
		}
		key := staticKey
		if !keyIsStatic {
			k, ok := o.metaKey(msg)
			if !ok {
				if keyExec == nil {
					keyExec = batch.InterpolationExecutor(o.conf.partitionKey)
				}
				var err error
				if k, err = keyExec.TryString(i); err != nil {
					fail(i, fmt.Errorf("partition_key: %w", err))
					continue
				}
			}
			key = k
		}
		if err := checkPartitionKey(key); err != nil {
			fail(i, fmt.Errorf("message %d: %w", i, err))
			continue
		}
		data, err := msg.AsBytes()
		if err != nil {
			fail(i, err)
			continue
		}
		r.key, r.data, r.size = key, data, len(data)+len(key)
		if r.size > o.conf.maxRecordSize {
			fail(i, fmt.Errorf("message %d: record of %d bytes (data %d + partition key %d) exceeds max_record_size %d",
				i, r.size, len(data), len(key), o.conf.maxRecordSize))
			continue
		}
		maxRec = max(maxRec, r.size)
		var h u128
		switch {
		case hashStatic:
			r.hashKey, h = staticHash, staticHashVal
		case o.conf.hashKey != nil:
			hs, err := hashExec.TryString(i)
			if err == nil {
				h, err = parseHashKey(hs)
			}
			if err != nil {
				fail(i, fmt.Errorf("message %d: hash_key: %w", i, err))
				continue
			}
			r.hashKey = &hs
		case key == lastKey && haveLast:
			h = lastHash // CDC rows of a table share the schema-table key
		default:
			h = hashPartitionKey(key)
			lastKey, lastHash, haveLast = key, h, true
		}
		g := smap.routeIndex(h)
		if g < 0 {
			g = len(smap.shards)
		}
		r.routed, r.group = true, g
		if counts[g] == 0 {
			order = append(order, g)
		}
		counts[g]++
	}
	// One backing array, each group its own capacity-bounded part.
	all := make([]*record, 0, len(batch))
	for g, n := range counts {
		groups[g] = all[len(all) : len(all) : len(all)+n]
		all = all[:len(all)+n]
	}
	for i := range recs {
		if r := &recs[i]; r.routed {
			groups[r.group] = append(groups[r.group], r)
		}
	}
	o.m.recMax.Set(int64(maxRec))

	run := &batchRun{batch: batch, cancel: cancel}
	shardID := func(g int) string {
		if g == len(smap.shards) {
			return unknownShard
		}
		return smap.shards[g].id
	}
	if len(order) == 1 {
		o.writeShard(ctx, client, run, o.shard(shardID(order[0])), groups[order[0]])
	} else {
		var wg sync.WaitGroup
		for _, g := range order {
			wg.Add(1)
			go func(sh *shardState, q []*record) {
				defer wg.Done()
				o.writeShard(ctx, client, run, sh, q)
			}(o.shard(shardID(g)), groups[g])
		}
		wg.Wait()
	}

	run.mu.Lock()
	abortErr := run.abortErr
	run.mu.Unlock()
	if abortErr != nil && o.closeCtx.Err() == nil {
		// The whole batch goes back to the engine, which reconnects (the
		// output reports itself not connected: /ready answers 503 until
		// Connect succeeds) and retries it; the records written so far are
		// remembered and not sent again. Records that failed for their own
		// sake are checked again on the retry.
		o.saveResume(batch, recs)
		var oe *outageError
		var re *refusedError
		switch {
		case errors.As(abortErr, &re):
			o.mu.Lock()
			first := !o.refusing
			o.refused, o.refusing = re, true
			o.client = nil // Connect builds fresh credentials
			o.mu.Unlock()
			// Said once here; the engine logs Connect's error (the
			// refusal again) at every attempt, one per back-off wait.
			logf := o.log.Debugf
			if first {
				logf = o.log.Errorf
			}
			logf("%v; %d of the batch's %d records written, the rest waits: the output reports itself not connected until Kinesis takes them", abortErr, int(run.written.Load())+resumed, len(batch))
		case errors.As(abortErr, &oe):
			o.log.Warnf("Kinesis connection lost: %v; %d of the batch's %d records written, the rest waits for the reconnection", abortErr, int(run.written.Load())+resumed, len(batch))
		default:
			o.log.Warnf("Kinesis connection lost: %v; %d of the batch's %d records written, the rest waits for the reconnection", abortErr, int(run.written.Load())+resumed, len(batch))
			o.mu.Lock()
			o.client = nil // Connect builds fresh credentials
			o.mu.Unlock()
		}
		return service.ErrNotConnected
	}
	if abortErr == nil {
		o.mu.Lock()
		if o.refusing {
			o.refusing = false
			o.refuseBo.Reset()
			o.log.Infof("Kinesis takes writes to stream %s again", o.streamLabel())
		}
		o.mu.Unlock()
	}
	for i := range recs {
		if r := &recs[i]; r.routed && !r.written {
			err := r.err
			if err == nil {
				err = errNotWritten
			}
			fail(r.idx, err)
		}
	}
	if len(failures) == 0 {
		return nil
	}
	if deadLetter == nil || ctx.Err() != nil {
		// Cancelled or shutting down: every message not written goes
		// back to the engine. The unwritten records did not fail for
		// good, and a dead-letter write on a done context may take
		// messages and still report failure (dead-lettered and replayed
		// to Kinesis); what did fail for good is dead-lettered when the
		// batch is replayed.
		if deadLetter == nil && ctx.Err() == nil {
			o.countFailed(failures)
		}
		return batchError(batch, failures)
	}
	return o.writeDeadLetter(ctx, deadLetter, batch, recs, failures)
}

var (
	// errInterrupted: the write was cancelled or the output closed before
	// the record was written. Not a failure for good: never dead-lettered.
	errInterrupted = errors.New("not written before shutdown or cancellation")
	// errNotWritten: a record left unwritten without a reason (should not
	// happen); treated like errInterrupted.
	errNotWritten       = errors.New("record not written")
	errDeadLetterClosed = errors.New("output closed")
)

// failure is a message of the batch that was not written to Kinesis, and
// why; record tells a record that failed in the output from a message
// flagged upstream.
type failure struct {
	idx    int
	err    error
	record bool
}

// countFailed adds to kinesis_records_failed the records of failures that
// failed for good, once their batch is settled: dead-lettered, or returned
// to the engine as failed. Not when the batch waits (not connected: the
// same batch is written again and its failures found again), nor for
// records interrupted by a shutdown (written when the batch is replayed).
func (o *output) countFailed(failures []failure) {
	n := 0
	for _, f := range failures {
		if f.record && f.forGood() {
			n++
		}
	}
	if n > 0 {
		o.st.failed.Add(int64(n))
		o.m.failed.Incr(int64(n))
	}
}

// forGood tells a failure the dead letter takes (a flagged message, a record
// invalid, rejected or out of retry budget) from one the engine must replay.
func (f failure) forGood() bool {
	return !errors.Is(f.err, errInterrupted) && !errors.Is(f.err, errNotWritten)
}

func batchError(batch service.MessageBatch, failures []failure) error {
	bErr := service.NewBatchError(batch, failures[0].err)
	for _, f := range failures {
		bErr = bErr.Failed(f.idx, f.err)
	}
	return bErr
}

// writeDeadLetter writes copies of the messages that failed for good, in
// batch order, to the dead_letter output, each with the fallback_error
// metadata the fallback output would set (so the same dead-letter mappings
// work), and waits for it to acknowledge them. If it fails, the batch waits:
// the records written are remembered and "not connected" makes the engine
// retry the same batch after Connect, which reports the dead letter's error
// and waits (a batch error would make aws_s3_dms redeliver the whole batch,
// writing every written record again at each retry for as long as the dead
// letter fails). When the write is cancelled or the output closes, they are
// reported failed to the engine instead (a retry may write some of them to
// the dead letter twice); so are the failures not for good.
func (o *output) writeDeadLetter(ctx context.Context, dl *service.OwnedOutput, batch service.MessageBatch, recs []record, failures []failure) error {
	slices.SortFunc(failures, func(a, b failure) int { return a.idx - b.idx })
	var dead, back []failure
	for _, f := range failures {
		if f.forGood() {
			dead = append(dead, f)
		} else {
			back = append(back, f)
		}
	}
	if len(dead) > 0 {
		err := o.deadLetterBatch(ctx, dl, batch, dead)
		if err != nil && ctx.Err() == nil && o.closeCtx.Err() == nil && !errors.Is(err, errDeadLetterClosed) {
			o.saveResume(batch, recs)
			o.mu.Lock()
			first := !o.dlFailing
			o.dlFailing = true
			o.dlDown = fmt.Errorf("%s output failed to take %d messages (%w): the batch waits, its %d records written to Kinesis are not written again", fDeadLetter, len(dead), err, countWritten(recs))
			o.mu.Unlock()
			logf := o.log.Debugf // the engine logs Connect's error at every attempt
			if first {
				logf = o.log.Errorf
			}
			logf("dead_letter output failed to take %d messages: %v; the batch waits, the output reports itself not connected until the dead letter takes them", len(dead), err)
			return service.ErrNotConnected
		}
		if err == nil {
			o.countFailed(dead)
			o.mu.Lock()
			if o.dlFailing {
				o.dlFailing = false
				o.dlBo.Reset()
				o.log.Infof("dead_letter output takes messages again")
			}
			o.mu.Unlock()
		}
		if err != nil {
			o.log.Errorf("dead_letter output failed to take %d messages: %v", len(dead), err)
			for k, f := range dead {
				dead[k].err = fmt.Errorf("%w; dead_letter: %v", f.err, err)
			}
			back = append(back, dead...)
		}
	}
	if len(back) == 0 {
		return nil
	}
	return batchError(batch, back)
}

func countWritten(recs []record) int {
	n := 0
	for i := range recs {
		if recs[i].written {
			n++
		}
	}
	return n
}

// deadLetterBatch writes copies of the failed messages to the dead letter,
// unless it is closed or ctx done.
func (o *output) deadLetterBatch(ctx context.Context, dl *service.OwnedOutput, batch service.MessageBatch, dead []failure) error {
	o.dlMu.RLock()
	defer o.dlMu.RUnlock()
	if o.dlClosed {
		return errDeadLetterClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	out := make(service.MessageBatch, len(dead))
	for k, f := range dead {
		m := batch[f.idx].Copy()
		m.MetaSetMut("fallback_error", f.err.Error())
		out[k] = m
	}
	if err := dl.WriteBatch(ctx, out); err != nil {
		return err
	}
	o.st.deadLettered.Add(int64(len(out)))
	o.m.deadLettered.Incr(int64(len(out)))
	return nil
}

// metaKey reads the partition key straight from the metadata when
// partition_key is ${! @name } and the value is a string (what the
// interpolation would return for it); ok is false otherwise.
func (o *output) metaKey(msg *service.Message) (string, bool) {
	if o.conf.keyMeta == "" {
		return "", false
	}
	v, ok := msg.MetaGetMut(o.conf.keyMeta)
	if !ok {
		return "", false
	}
	k, ok := v.(string)
	return k, ok
}

// Retryable per-record error codes.
func retryableRecordCode(code string) (retry, throttle bool) {
	switch code {
	case "ProvisionedThroughputExceededException", "KMSThrottlingException":
		return true, true
	case "InternalFailure", "InternalFailureException", "ServiceUnavailable", "ServiceUnavailableException":
		return true, false
	}
	return false, false
}

type errClass int

const (
	errRetry        errClass = iota // re-send, outcome known (nothing written)
	errRetryUnknown                 // re-send, the request may have been applied
	errThrottle                     // re-send after slowing down
	errInvalid                      // the request is invalid: do not re-send as is
	errConnection                   // credentials or stream: reconnect
	errFatal                        // refused until an operator acts (access denied, KMS key state): retried with backoff
	errCanceled
)

// defaultOutageAfter: how long a shard goes without an answer from Kinesis
// before the output reports itself not connected.
const defaultOutageAfter = 5 * time.Second

// outageError stops a batch when Kinesis has not answered for a while.
type outageError struct {
	d   time.Duration
	err error
}

func (e *outageError) Error() string {
	return fmt.Sprintf("no answer from Kinesis for %v: %v", e.d.Round(time.Millisecond), e.err)
}

func (e *outageError) Unwrap() error { return e.err }

// refusedError stops a batch, when there is no retry budget, on a refusal
// an operator must fix (errFatal): the output reports itself not connected.
type refusedError struct {
	stream, shard string
	err           error
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("Kinesis refuses writes to stream %q (shard %s; the credentials' PutRecords permission, or the stream's KMS key, must be fixed): %v", e.stream, e.shard, e.err)
}

func (e *refusedError) Unwrap() error { return e.err }

func classify(ctx context.Context, err error) errClass {
	if ctx.Err() != nil {
		return errCanceled
	}
	// Credentials that cannot be had, whatever the provider's error looks
	// like (an STS 403 must not pass for an invalid request), then a
	// request that could not be signed.
	var cErr *awsconf.CredentialsError
	if errors.As(err, &cErr) {
		return errConnection
	}
	var sErr *v4.SigningError
	if errors.As(err, &sErr) {
		return errConnection
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "ProvisionedThroughputExceededException", "KMSThrottlingException", "LimitExceededException",
			"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException":
			return errThrottle
		case "ExpiredTokenException", "ExpiredToken", "UnrecognizedClientException", "InvalidSignatureException",
			"IncompleteSignature", "MissingAuthenticationToken", "InvalidClientTokenId", "RequestExpired",
			// Kinesis's own names (JSON 1.1) of the last two common errors.
			"IncompleteSignatureException", "MissingAuthenticationTokenException",
			"ResourceNotFoundException":
			return errConnection
		case "ValidationException", "InvalidArgumentException", "SerializationException":
			return errInvalid
		case "AccessDeniedException", "KMSDisabledException", "KMSInvalidStateException", "KMSAccessDeniedException",
			"KMSNotFoundException", "KMSOptInRequired":
			return errFatal
		case "InternalFailure", "InternalFailureException", "ServiceUnavailable", "ServiceUnavailableException":
			return errRetryUnknown
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch sc := re.HTTPStatusCode(); {
		case sc == 413:
			return errInvalid
		case sc >= 500:
			return errRetryUnknown
		case sc == 429:
			return errThrottle
		case sc >= 400:
			return errInvalid
		}
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return errRetryUnknown
	}
	// Connection resets, EOFs, decoding a truncated body: the request may
	// have gone through.
	return errRetryUnknown
}

// writeShard writes the records of one shard, one request at a time, until
// every record is written or failed. queue holds the pending records in batch
// order; a request takes records from its front, and in strict mode at most
// keyCap records of one partition key (a record of a key is never taken
// after a later record of that key was skipped, so per-key order holds). The
// cap (kept per shard across batches) halves when a request had to re-send
// records for ordering and doubles after four requests in a row went through
// whole: under per-record failures that bounds the copies, without failures
// it costs nothing.
func (o *output) writeShard(ctx context.Context, client kinesisAPI, run *batchRun, sh *shardState, queue []*record) {
	bo := o.conf.backoff
	bo.Reset()
	strict := o.conf.strict
	var dead map[string]error // strict: keys with a record that finally failed
	split := maxRecordsPerRequest
	fast, _ := client.(fastPutter)
	var entries []types.PutRecordsRequestEntry
	var pc *putCall
	if fast != nil {
		pc = putCalls.Get().(*putCall)
		defer putCalls.Put(pc)
	} else {
		entries = make([]types.PutRecordsRequestEntry, 0, min(len(queue), maxRecordsPerRequest))
	}
	req := make([]*record, 0, min(len(queue), maxRecordsPerRequest))
	var perKey map[string]int
	var skipKey map[string]bool

	killKey := func(r *record) {
		if strict {
			if dead == nil {
				dead = map[string]error{}
			}
			if _, ok := dead[r.key]; !ok {
				dead[r.key] = r.err
			}
		}
	}
	failRest := func(err error) {
		for _, r := range queue {
			if r.err != nil || r.written {
				continue
			}
			if cause, ok := dead[r.key]; ok && strict {
				r.err = fmt.Errorf("not written: an earlier record of partition key %q failed (%w)", r.key, cause)
				continue
			}
			r.err = err
			killKey(r)
		}
	}
	// compact drops the written and failed records from the queue.
	compact := func() {
		kept := queue[:0]
		for _, r := range queue {
			if r.written || r.err != nil {
				continue
			}
			if cause, ok := dead[r.key]; ok && strict {
				r.err = fmt.Errorf("not written: an earlier record of partition key %q failed (%w)", r.key, cause)
				continue
			}
			kept = append(kept, r)
		}
		clear(queue[len(kept):])
		queue = kept
	}
	budgetErr := func(last string) error {
		return fmt.Errorf("retry budget (%v without progress) exhausted, last error: %s", bo.MaxElapsedTime, last)
	}
	var lastErr string
	var failingSince time.Time // start of the first request of the current run of unanswered ones
	for len(queue) > 0 {
		if ctx.Err() != nil {
			failRest(fmt.Errorf("%w: %w", errInterrupted, ctx.Err()))
			return
		}

		// One request in flight per shard; then wait until the shard's
		// pace lets at least the first record go, and take the next
		// request: count, bytes, what the pace lets through now and, in
		// strict mode, the per-key cap. (The first record of the queue
		// is always the request's first.)
		select {
		case sh.inflight <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		roomN, roomB, err := sh.pacer.room(ctx, 1, queue[0].size)
		if err != nil {
			<-sh.inflight
			continue
		}
		maxN := min(split, maxRecordsPerRequest, roomN)
		maxB := min(o.conf.maxRequestSize, roomB)
		keyCap := int(sh.keyCap.Load())
		limitKeys := strict && keyCap < maxRecordsPerRequest
		if limitKeys {
			if perKey == nil {
				perKey, skipKey = map[string]int{}, map[string]bool{}
			}
			clear(perKey)
			clear(skipKey)
		}
		req = req[:0]
		nbytes := 0
		for i, r := range queue {
			if len(req) == maxN || (limitKeys && i >= 20*maxRecordsPerRequest) {
				break
			}
			if limitKeys {
				if skipKey[r.key] {
					continue
				}
				if perKey[r.key] >= keyCap {
					skipKey[r.key] = true
					continue
				}
			}
			if len(req) > 0 && nbytes+r.size > maxB {
				break
			}
			if limitKeys {
				perKey[r.key]++
			}
			nbytes += r.size
			req = append(req, r)
		}
		n := len(req)
		if fast == nil {
			entries = entries[:0]
			for _, r := range req {
				entries = append(entries, types.PutRecordsRequestEntry{Data: r.data, PartitionKey: &r.key, ExplicitHashKey: r.hashKey})
			}
		}

		sh.pacer.take(n, nbytes)
		start := time.Now()
		var out *kinesis.PutRecordsOutput
		rctx, rcancel := context.WithTimeout(ctx, o.conf.reqTimeout)
		if fast != nil {
			out, err = fast.putRecordsFast(rctx, pc, req)
		} else {
			out, err = client.PutRecords(rctx, &kinesis.PutRecordsInput{
				StreamName: o.streamName(), StreamARN: o.streamARN(), Records: entries,
			})
		}
		rcancel()
		sh.pacer.landed()
		<-sh.inflight
		o.m.latency.Timing(time.Since(start).Nanoseconds())
		o.st.requests.Add(1)
		o.m.reqRecords.Set(int64(n))
		o.m.reqBytes.Set(int64(nbytes))
		if err == nil && len(out.Records) != n {
			err = fmt.Errorf("PutRecords answered %d results for %d records", len(out.Records), n)
		}

		if err != nil {
			o.m.requests.Incr(1, "error")
			lastErr = err.Error()
			cls := classify(ctx, err)
			if cls != errRetryUnknown {
				failingSince = time.Time{} // Kinesis answered
			}
			switch cls {
			case errCanceled:
				if o.closeCtx.Err() == nil && run.aborted() {
					// Cut short because the batch stopped: the request may
					// have been written, and it is sent again after the
					// reconnection.
					o.st.unknownResends.Add(int64(n))
					o.m.unknownResends.Incr(int64(n))
				}
				continue // the loop head fails the rest
			case errConnection:
				run.abort(err)
				failRest(fmt.Errorf("kinesis connection lost: %w", err))
				return
			case errFatal:
				// Access denied, a KMS key disabled or missing: the stream
				// cannot be written until an operator acts, the records
				// are not at fault. Without a retry budget the batch stops
				// and the output reports itself not connected (/ready 503
				// naming the refusal; Connect makes the engine wait before
				// the retry). With one, retried like any request-level
				// error within the budget, and said loudly.
				if o.outageAfter > 0 {
					run.abort(&refusedError{stream: o.streamLabel(), shard: sh.id, err: err})
					failRest(fmt.Errorf("kinesis refuses writes: %w", err))
					return
				}
				o.log.Errorf("Kinesis refuses writes to stream %s (shard %s): %v; retrying", o.streamLabel(), sh.id, err)
			case errInvalid:
				if n > 1 {
					// Isolate the record Kinesis refuses: halve until it is
					// alone, the others go through.
					split = max(1, n/2)
					continue
				}
				req[0].err = fmt.Errorf("rejected by Kinesis: %w", err)
				killKey(req[0])
				compact()
				continue
			case errThrottle:
				sh.pacer.throttled()
				o.st.throttled.Add(int64(n))
				o.m.throttled.Incr(int64(n), sh.id)
			case errRetryUnknown:
				o.st.unknownResends.Add(int64(n))
				o.m.unknownResends.Incr(int64(n))
				if failingSince.IsZero() {
					failingSince = start
				}
				if d := time.Since(failingSince); o.outageAfter > 0 && d >= o.outageAfter {
					// Kinesis has not answered for a while: stop the batch
					// so that the engine reports the output not connected
					// and reconnects; the request is sent again then.
					run.abort(&outageError{d: d, err: err})
					failRest(fmt.Errorf("kinesis connection lost: %w", err))
					return
				}
			}
			o.st.retries.Add(int64(n))
			o.m.retries.Incr(int64(n))
			if !o.backoffWait(ctx, &bo) && ctx.Err() == nil {
				failRest(budgetErr(lastErr))
				return
			}
			continue
		}

		failingSince = time.Time{} // Kinesis answered
		// Per-record results.
		var (
			blocked                                 map[string]bool
			seen                                    map[string]int // strict, only when a record failed
			runLen                                  int            // longest in-order run before a failure
			written, wbytes, throttled, retry, dups int
			moved                                   bool
		)
		if strict && out.FailedRecordCount != nil && *out.FailedRecordCount > 0 {
			seen = map[string]int{}
		}
		for j, r := range req {
			e := &out.Records[j]
			if seen != nil && !blocked[r.key] {
				seen[r.key]++
			}
			if e.ErrorCode == nil || *e.ErrorCode == "" {
				if strict && blocked[r.key] {
					// Written ahead of an earlier record of its key that
					// was not: it stays pending and goes again after it.
					dups++
					o.logResend(run, r)
					continue
				}
				r.written = true
				written++
				wbytes += r.size
				if sh.id == unknownShard || (e.ShardId != nil && *e.ShardId != sh.id) {
					moved = true
				}
				continue
			}
			code := *e.ErrorCode
			msg := ""
			if e.ErrorMessage != nil {
				msg = *e.ErrorMessage
			}
			lastErr = code + ": " + msg
			if strict {
				if blocked == nil {
					blocked = map[string]bool{}
				}
				if !blocked[r.key] && seen != nil {
					runLen = max(runLen, seen[r.key]-1)
				}
				blocked[r.key] = true
			}
			ok, thr := retryableRecordCode(code)
			if thr {
				throttled++
			}
			if ok {
				retry++
				continue
			}
			r.err = fmt.Errorf("rejected by Kinesis: %s: %s", code, msg)
			killKey(r)
		}
		if written > 0 {
			o.st.written.Add(int64(written))
			o.st.bytes.Add(int64(wbytes))
			o.m.written.Incr(int64(written))
			o.m.bytes.Incr(int64(wbytes))
			run.written.Add(int64(written))
		}
		if dups > 0 {
			o.st.dupOrdering.Add(int64(dups))
			o.m.dupOrdering.Incr(int64(dups))
			// A key's records went through in order only up to its first
			// failure: carry no more than that (at most half the cap).
			sh.keyCap.Store(int64(max(1, min(runLen, min(keyCap, n)/2))))
			sh.clean.Store(0)
		} else if written == n {
			if sh.clean.Add(1) >= keyCapGrowAfter && keyCap < maxRecordsPerRequest {
				sh.keyCap.Store(int64(min(maxRecordsPerRequest, keyCap*2)))
				sh.clean.Store(0)
			}
		} else {
			sh.clean.Store(0)
		}
		if retry+dups > 0 {
			o.st.retries.Add(int64(retry + dups))
			o.m.retries.Incr(int64(retry + dups))
		}
		if moved {
			o.requestRefresh()
		}
		if throttled > 0 {
			sh.pacer.throttled()
			o.st.throttled.Add(int64(throttled))
			o.m.throttled.Incr(int64(throttled), sh.id)
		} else {
			sh.pacer.accepted()
		}
		o.m.rateFactor.Set(int64(sh.pacer.rateFactor()*100), sh.id)
		if written == n {
			o.m.requests.Incr(1, "ok")
		} else {
			o.m.requests.Incr(1, "partial")
		}
		split = min(maxRecordsPerRequest, split*2)
		compact()
		if written > 0 {
			// Progress: no backoff (pacing still spaces the requests).
			bo.Reset()
			continue
		}
		if len(queue) > 0 && !o.backoffWait(ctx, &bo) && ctx.Err() == nil {
			failRest(budgetErr(lastErr))
			return
		}
	}
}

// logResend logs, at debug level, a record written ahead of a failed earlier
// record of its key, which is going to be written again.
func (o *output) logResend(run *batchRun, r *record) {
	pos, _ := run.batch[r.idx].MetaGetMut("dms_position")
	o.log.Debugf("Re-sending record of partition key %q after an earlier record of that key failed: the stream gets a copy (dms_position %v)", r.key, pos)
}

// backoffWait sleeps the next backoff interval. It returns false when the
// retry budget is exhausted or ctx is done.
func (o *output) backoffWait(ctx context.Context, bo *backoff.ExponentialBackOff) bool {
	d := bo.NextBackOff()
	if d == backoff.Stop {
		return false
	}
	if o.sleepHook != nil {
		o.sleepHook(d)
	}
	return sleepCtx(ctx, d) == nil
}

// deadLetterGrace is how long Close lets the dead letter finish what it holds
// before stopping it.
const deadLetterGrace = 2 * time.Second

// closeDeadLetter closes the dead_letter output: gracefully for
// deadLetterGrace (or until ctx ends), then at once. No write of the output
// waits on it any more (Close holds dlMu), so what it still holds was reported
// failed to the engine already. The owned output's Close only closes its
// input and waits: a dead letter that cannot connect (a socket, a broker that
// is down) retries its connection until stopped, so that wait, with the
// engine's Close context (which has no deadline), never ended.
func closeDeadLetter(ctx context.Context, dl *service.OwnedOutput) error {
	gctx, cancel := context.WithTimeout(ctx, deadLetterGrace)
	err := dl.Close(gctx)
	cancel()
	if err == nil || ctx.Err() != nil {
		return err
	}
	stopNow(dl)
	return dl.Close(ctx)
}

// stopNow stops an owned output at once, as the engine stops the outputs of a
// stream whose graceful stop timed out: the public OwnedOutput has no such
// call, its wrapped component has (TriggerCloseNow).
func stopNow(dl *service.OwnedOutput) {
	u := reflect.ValueOf(dl.XUnwrapper())
	m := u.MethodByName("Unwrap")
	if !m.IsValid() || m.Type().NumIn() != 0 || m.Type().NumOut() != 1 {
		return
	}
	if c, ok := m.Call(nil)[0].Interface().(interface{ TriggerCloseNow() }); ok {
		c.TriggerCloseNow()
	}
}

// Close stops the shard refresher and interrupts any write still waiting.
func (o *output) Close(ctx context.Context) error {
	o.closeFn()
	// Writes to the dead letter end promptly (their contexts are
	// cancelled with closeCtx); none starts after this.
	o.dlMu.Lock()
	o.dlClosed = true
	o.dlMu.Unlock()
	o.bgOnce.Do(func() { close(o.bgDone) })
	o.mu.Lock()
	dlPrimed := o.dlPrimed
	o.mu.Unlock()
	if dlPrimed {
		if err := closeDeadLetter(ctx, o.conf.deadLetter); err != nil {
			return err
		}
	}
	select {
	case <-o.bgDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
