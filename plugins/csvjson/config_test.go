package csvjson

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

// The YAML unit tests in config/tests run through the CLI's test command,
// as `dmsbridge test ./config/tests/...` would.
func TestConfigYAMLUnitTests(t *testing.T) {
	t.Chdir("../..")
	code, err := service.RunCLIToCode(context.Background(), service.CLIOptSetArgs("dmsbridge", "test", "./config/tests/dms_csv_to_json_benthos_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("dmsbridge test exited with %d", code)
	}
}

// config/dead-letter.yaml must lint cleanly and build; the YAML test's
// target config must lint too.
func TestDeadLetterConfigLints(t *testing.T) {
	b, err := os.ReadFile("../../config/dead-letter.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DMS_TABLE_DEFINITION", "./testdata/employee.json")
	sb := service.NewEnvironment().NewStreamBuilder()
	if err := sb.SetYAML(string(b)); err != nil {
		t.Fatalf("dead-letter.yaml: %v", err)
	}
	if _, err := sb.Build(); err != nil {
		t.Fatalf("dead-letter.yaml does not build: %v", err)
	}
	code, err := service.RunCLIToCode(context.Background(), service.CLIOptSetArgs("dmsbridge", "lint", "../../config/dead-letter.yaml", "../../config/tests/dms_csv_to_json.yaml"))
	if err != nil || code != 0 {
		t.Fatalf("dmsbridge lint: code %d, %v", code, err)
	}
}

// A negative max_workers was accepted and silently meant "one per CPU" (the
// documented meaning of 0): refused at start, naming the field.
func TestMaxWorkersNegativeRefused(t *testing.T) {
	conf, err := processorSpec().ParseYAML("table_definition: ./testdata/employee.json\nmax_workers: -3\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newProcessor(conf, service.MockResources()); err == nil || !strings.Contains(err.Error(), "max_workers") {
		t.Fatalf("max_workers -3: error %v", err)
	}
}

// Benthos' lint accepts an enum value in any case, so the processor reads it
// in any case: "Truncate" used to pass lint and then flag every long value
// as an error instead of cutting it, and "Primary-Key" to key CDC records
// by schema and table.
func TestConfigEnumsAnyCase(t *testing.T) {
	conf, err := processorSpec().ParseYAML("table_definition: ./testdata/employee.json\n"+
		"default_phase: CDC\nmessage_format: JSON-Unformatted\ntruncation_policy: Truncate\ncdc_partition_key: Primary-Key\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := optionsFromConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	if o.defaultPhase != "cdc" || o.pretty || !o.render.Truncate || o.cdcPartitionKey != "primary-key" {
		t.Fatalf("default_phase %q, json (indented) %v, truncate %v, cdc_partition_key %q", o.defaultPhase, o.pretty, o.render.Truncate, o.cdcPartitionKey)
	}
}
