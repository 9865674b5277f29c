package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// Every pipeline file shipped in config/ passes `dmsbridge lint` with the
// plugins compiled in (unknown fields, wrong types and lint rules included).
func TestConfigFilesLint(t *testing.T) {
	var files []string
	err := filepath.Walk(filepath.Join(repoRoot(), "config"), func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() && info.Name() == "sample" {
			return filepath.SkipDir
		}
		if !info.IsDir() && strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, "_benthos_test.yaml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found only %d config files: %v", len(files), files)
	}
	for _, f := range files {
		// From the repository root, where the configs are run: lint runs the
		// components' start checks, which read table_definition files.
		lint := exec.Command(binPath, "lint", "--skip-env-var-check", f)
		lint.Dir = repoRoot()
		out, err := lint.CombinedOutput()
		if err != nil {
			t.Errorf("dmsbridge lint %s: %v\n%s", f, err, out)
		}
	}
	// A config with a mistake is refused, with the field named.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("input:\n  aws_s3_dms:\n    directory: x\n    table_definition: x\n    bogus_field: 1\noutput:\n  drop: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binPath, "lint", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bogus_field") {
		t.Fatalf("lint accepted an unknown field: %v\n%s", err, out)
	}
}

// config/dead-letter.yaml runs exactly as its header says, from the
// repository root with no variable set: the sample's reference-table rows
// reach stdout, a bad row appended to them reaches the dead letter.
func TestDeadLetterExampleAsDocumented(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join(repoRoot(), "config/sample/schema01/table01/full_000"))
	if err != nil {
		t.Fatal(err)
	}
	header, err := os.ReadFile(filepath.Join(repoRoot(), "config/dead-letter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(header), "#   dmsbridge run config/dead-letter.yaml < config/sample/schema01/table01/full_000\n") {
		t.Fatal("the header no longer gives the command this test runs")
	}
	dir := t.TempDir()
	cmd := exec.Command(binPath, "run", "config/dead-letter.yaml")
	cmd.Dir = repoRoot()
	// only the dead letter's path moved out of the checkout
	cmd.Env = append(os.Environ(), "DEAD_LETTER_PATH="+filepath.Join(dir, "dead-letter.jsonl"))
	cmd.Stdin = strings.NewReader(string(sample) + "2026-01-01 00:00:09,10.1000/x,not-a-number,1.00,sig\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dmsbridge run config/dead-letter.yaml: %v\n%s", err, stderr.String())
	}
	want := strings.Count(string(sample), "\n")
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(got) != want || !strings.Contains(got[0], `"table-name":"table01"`) {
		t.Fatalf("stdout: %d records, want %d of schema01.table01:\n%s\n%s", len(got), want, out, stderr.String())
	}
	dl := lines(t, filepath.Join(dir, "dead-letter.jsonl"))
	if len(dl) != 1 || !strings.Contains(dl[0], "column id") || !strings.Contains(dl[0], "not-a-number") {
		t.Fatalf("dead letter: %q", dl)
	}
}

// config/dead-letter.yaml, run as its header says (`dmsbridge run
// config/dead-letter.yaml < rows`): good rows reach stdout as DMS records in
// order, each bad row lands in the dead-letter file once with its reason and
// its bytes, and the pipeline ends normally when stdin ends.
func TestDeadLetterExampleRuns(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, "dead-letter.jsonl")
	rows := strings.Join([]string{
		`101,Smith,Bob,2014-06-04 00:00:00,New York`,
		`102,Smith,Bob,not-a-date,Boston`,
		`103,Smith,Bob,2014-06-04 00:00:00`,
		`104,Jones,Ann,2015-01-02 03:04:05,Chicago`,
		`x105,Doe,Jo,2016-01-01 00:00:00,Denver`,
		`106,Lee,Kim,2017-02-03 04:05:06,Seattle`,
	}, "\n") + "\n"
	cmd := exec.Command(binPath, "run", filepath.Join(repoRoot(), "config/dead-letter.yaml")) // the shipped log level: the log must stay off stdout
	cmd.Env = append(os.Environ(),
		"DMS_TABLE_DEFINITION="+filepath.Join(repoRoot(), "plugins/csvjson/testdata/employee.json"),
		"DEAD_LETTER_PATH="+dead)
	cmd.Stdin = strings.NewReader(rows)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dmsbridge run config/dead-letter.yaml: %v\n%s", err, stderr.String())
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var rec struct {
			Data     map[string]any    `json:"data"`
			Metadata map[string]string `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("stdout line %q is not a DMS record: %v", l, err)
		}
		if rec.Metadata["operation"] != "load" || rec.Metadata["table-name"] != "employee" {
			t.Errorf("record metadata %v", rec.Metadata)
		}
		ids = append(ids, fmt.Sprint(rec.Data["Id"]))
	}
	if got := strings.Join(ids, ","); got != "101,104,106" {
		t.Errorf("good rows on stdout: %s, want 101,104,106 in order", got)
	}
	// The log (on stderr) says so too: the first bad row at once, the others
	// together, counted by reason.
	if !strings.Contains(stderr.String(), "1 row flagged as bad (hr.employee bad_value 1); each keeps its CSV row") ||
		!strings.Contains(stderr.String(), "2 rows flagged as bad (hr.employee bad_value 1, hr.employee field_count 1); each keeps its CSV row") {
		t.Errorf("stderr does not report the bad rows:\n%s", stderr.String())
	}
	want := map[string]string{
		`102,Smith,Bob,not-a-date,Boston`:        "column HireDate",
		`103,Smith,Bob,2014-06-04 00:00:00`:      "has 4 fields, expected 5",
		`x105,Doe,Jo,2016-01-01 00:00:00,Denver`: "column Id",
	}
	dl := lines(t, dead)
	if len(dl) != len(want) {
		t.Fatalf("dead-letter file has %d lines, want %d:\n%s", len(dl), len(want), strings.Join(dl, "\n"))
	}
	for _, l := range dl {
		var d struct {
			Error string `json:"error"`
			Row   string `json:"row"`
		}
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("dead-letter line %q: %v", l, err)
		}
		reason, ok := want[d.Row]
		if !ok {
			t.Errorf("unexpected dead-letter row %q", d.Row)
			continue
		}
		delete(want, d.Row)
		if !strings.Contains(d.Error, reason) {
			t.Errorf("row %q: error %q does not say %q", d.Row, d.Error, reason)
		}
	}
}

// config/local.yaml and the README tell the user to drop a CDC file into
// config/sample/cdcfile/ to see it tailed. The directory input reads a file
// as soon as it is listed and never again (its documented contract: files
// must appear atomically), so a file created first and written after (`cat >
// file`, an editor, a slow cp) is printed empty and its rows are lost without
// a word. Both places must give the atomic way: write elsewhere, then mv.
func TestLocalConfigSaysDropAtomically(t *testing.T) {
	for _, f := range []string{"config/local.yaml", "README.md"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(), f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "write it elsewhere, then `mv` it in") {
			t.Errorf("%s tells the user to drop a CDC file without saying it must appear atomically (write it elsewhere, then `mv` it in)", f)
		}
	}
}

// Every shipped pipeline that writes to Kinesis gives its dead-letter
// records what the reference config's comment and the README promise: the
// error, the stage that refused the row, the bucket, key, line and position
// of the row, and its bytes. config/streams/table01.yaml says "see
// config/s3-to-kinesis.yaml" for its dead letter: it must carry the same.
func TestShippedDeadLettersCarryTheSameFields(t *testing.T) {
	const key = "schema01/table01/full_000"
	good := "2026-01-01 00:00:00,10.1000/dmsbridge.demo.1,1001,12.50,a1b2c3d4e5\n"
	bad := "2026-01-01 00:00:09,10.1000/x,not-a-number,1.00,sig"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"s3-to-kinesis.yaml", []string{"run", "config/s3-to-kinesis.yaml"}},
		{"streams/table01.yaml", []string{"streams", "-o", "config/streams-root.yaml", "config/streams"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := testutil.NewBucket(t)
			stream := testutil.NewStream(t, 1)
			testutil.PutObject(t, bucket, key, []byte(good+bad+"\n"+good))
			dir := t.TempDir()
			dead := filepath.Join(dir, "dead-letter.jsonl")
			p := start(t, pipelineEnv(t, bucket, stream, dir), tc.args...)
			p.WaitReady(t, 30*time.Second)
			end := time.Now().Add(30 * time.Second)
			for len(lines(t, dead)) < 1 && time.Now().Before(end) {
				time.Sleep(100 * time.Millisecond)
			}
			dl := lines(t, dead)
			if len(dl) != 1 {
				t.Fatalf("dead letter: %q\n%s", dl, p.Stderr.String())
			}
			var d map[string]any
			if err := json.Unmarshal([]byte(dl[0]), &d); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"stage":      "dms_csv_to_json",
				"s3_bucket":  bucket,
				"s3_key":     key,
				"line":       float64(2),
				"row":        bad,
				"row_base64": base64.StdEncoding.EncodeToString([]byte(bad)),
			}
			for k, v := range want {
				if d[k] != v {
					t.Errorf("%s = %v, want %v (record %s)", k, d[k], v, dl[0])
				}
			}
			if e, _ := d["error"].(string); !strings.Contains(e, "not-a-number") {
				t.Errorf("error %q", d["error"])
			}
			if pos, _ := d["position"].(string); pos == "" {
				t.Errorf("no position: %s", dl[0])
			}
		})
	}
}

// The streams API has no authentication, and whoever reaches it runs any
// pipeline as the process: a stream with a `command` processor runs any
// program, a `file` input reads any file the process can. The shipped
// streams-mode root config must therefore serve it on loopback unless
// HTTP_ADDRESS says otherwise; it served on every interface (0.0.0.0), so
// `dmsbridge streams -o config/streams-root.yaml` on a host opened command
// execution to its whole network.
func TestStreamsRootServesLoopbackByDefault(t *testing.T) {
	cmd := exec.Command(binPath, "echo", "config/streams-root.yaml")
	cmd.Dir = repoRoot()
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "HTTP_ADDRESS=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dmsbridge echo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\n  address: 127.0.0.1:4195\n") {
		t.Fatalf("with HTTP_ADDRESS unset the streams API (unauthenticated) is not served on 127.0.0.1:4195:\n%s", out)
	}
	set := exec.Command(binPath, "echo", "config/streams-root.yaml")
	set.Dir = repoRoot()
	set.Env = append(cmd.Env, "HTTP_ADDRESS=0.0.0.0:4195")
	if out, err = set.CombinedOutput(); err != nil || !strings.Contains(string(out), "\n  address: 0.0.0.0:4195\n") {
		t.Fatalf("HTTP_ADDRESS=0.0.0.0:4195 is not used: %v\n%s", err, out)
	}
}

// The README's streams-mode command, run without the variables its stream
// needs, stops with the lint errors and a last line saying how to start
// anyway, naming the binary. Benthos core (v4.60) words that line for
// streams mode with its template unexpanded: "run {{.ProductName}} with
// --chilled".
func TestStreamsLintErrorsSayHowToStart(t *testing.T) {
	cmd := exec.Command(binPath, "streams", "-o", "config/streams-root.yaml", "config/streams")
	cmd.Dir = repoRoot()
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "BUCKET=") && !strings.HasPrefix(e, "STREAM=") && !strings.HasPrefix(e, "HTTP_ADDRESS=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, "HTTP_ADDRESS="+freePort(t))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("dmsbridge streams without BUCKET and STREAM: %v, want exit code 1\n%s", err, out)
	}
	for _, want := range []string{"required environment variables were not set: [BUCKET STREAM]", "to prevent shutdown run dmsbridge with --chilled\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "{{") {
		t.Errorf("output holds an unexpanded template:\n%s", out)
	}
}

// The config unit tests run with the command their target's header gives,
// copied literally, from the repository root. It said `dmsbridge test
// ./config/tests/`, which finds nothing ("No tests were found", exit 1):
// Benthos searches a directory only when written as ./dir/...
func TestConfigTestsRunAsTheirHeaderSays(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(), "config/tests/dms_csv_to_json.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "(run: dmsbridge test ")
	args, _, ok2 := strings.Cut(rest, ")")
	if !ok || !ok2 {
		t.Fatalf("the header gives no command:\n%s", b[:200])
	}
	cmd := exec.Command(binPath, append([]string{"test"}, strings.Fields(args)...)...)
	cmd.Dir = repoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Test 'config/tests/dms_csv_to_json.yaml' succeeded") {
		t.Fatalf("dmsbridge test %s: %v\n%s", args, err, out)
	}
}

// `dmsbridge test` lints the target config with unset variables read as ""
// (Benthos: each test case may set its own environment), as `lint
// --skip-env-var-check` does: a unit test of the reference pipeline's
// processors passes without BUCKET and STREAM in the environment. It failed
// with "exactly one of bucket and directory must be set" and "stream must
// not be empty": dmsbridge's lint rules took the empty values for the
// user's own.
func TestUnitTestOfTheReferenceConfigWithoutItsVariables(t *testing.T) {
	dir := t.TempDir()
	ref, err := os.ReadFile(filepath.Join(repoRoot(), "config/s3-to-kinesis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	def := `tests:
  - name: a full-load row of schema01.table01
    target_processors: /pipeline/processors
    input_batch:
      - content: '2026-01-01T00:00:00Z,10.1000/x,1001,12.50,a1b2c3d4e5'
        metadata: {dms_phase: full-load, dms_schema: schema01, dms_table: table01}
    output_batches:
      - - bloblang: '!errored() && this.data.id == 1001 && this.metadata.operation == "load"'
`
	if err := os.WriteFile(filepath.Join(dir, "ref.yaml"), ref, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ref_benthos_test.yaml"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "test", filepath.Join(dir, "ref.yaml"))
	cmd.Dir = repoRoot()
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "BUCKET=") && !strings.HasPrefix(e, "STREAM=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "succeeded") {
		t.Fatalf("dmsbridge test without BUCKET and STREAM: %v\n%s", err, out)
	}
}

// `dmsbridge create` (the root help's way to start a config) writes every
// field of dmsbridge's components with its default, and "" or null for the
// optional ones without a default. Once its required fields are filled in,
// the config lints: an optional field written that way means "not set". It
// refused table_mappings: null ("expected a table-mapping document ...,
// got <nil>") and hash_key: "" ("explicit hash key must be a decimal
// integer ...").
func TestCreatedConfigLintsOnceFilledIn(t *testing.T) {
	out, err := exec.Command(binPath, "create", "aws_s3_dms/dms_csv_to_json/aws_kinesis_streams").Output()
	if err != nil {
		t.Fatalf("dmsbridge create: %v", err)
	}
	conf := string(out)
	for _, r := range [][2]string{
		{"    directory: \"\"\n", "    directory: config/sample\n"},
		{"    cdc_path: \"\"\n", "    cdc_path: cdcfile\n"},
		{"table_definition: null # No default (required)", "table_definition: config/sample/table-definition.json"},
		{"table_definition: null # No default (required)", "table_definition: config/sample/table-definition.json"},
		{"stream: \"\" # No default (required)", "stream: dms-target"},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("the created config has no %q:\n%s", r[0], conf)
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	path := filepath.Join(t.TempDir(), "created.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	lint := exec.Command(binPath, "lint", path)
	lint.Dir = repoRoot()
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("dmsbridge lint of the created config, filled in: %v\n%s", err, out)
	}
}
