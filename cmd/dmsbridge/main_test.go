package main

import (
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// The binary's default tracer is dmsbridge's `none` (plugins/tracer), not
// core's: both register the name, and the binary's package initialisation
// order decides which one stays.
func TestDefaultTracerIsDmsbridges(t *testing.T) {
	var summary string
	service.GlobalEnvironment().WalkTracers(func(name string, v *service.ConfigView) {
		if name != "none" {
			return
		}
		td, err := v.TemplateData()
		if err != nil {
			t.Fatal(err)
		}
		summary = td.Summary
	})
	if !strings.Contains(summary, "dmsbridge") {
		t.Fatalf("the binary's tracer none is core's (summary %q), not plugins/tracer", summary)
	}
}

// The lint rules leave an empty required value (an unset variable) to the
// start under `lint --skip-env-var-check` and `test`, however the root
// flags before the command are written; nowhere else.
func TestSkipsEnvVarCheck(t *testing.T) {
	for _, c := range []struct {
		args string
		want bool
	}{
		{"test ./config/tests/...", true},
		{"-e .env test ./x.yaml", true},
		{"--set=a=b --log.level debug test ./x.yaml", true},
		{"lint --skip-env-var-check x.yaml", true},
		{"lint --skip-env-var-check=false x.yaml", false},
		{"lint x.yaml", false},
		{"run test", false},
		{"-c test run", false},
		{"streams -o root.yaml test", false},
	} {
		if got := skipsEnvVarCheck(strings.Fields(c.args)); got != c.want {
			t.Errorf("%s: %v, want %v", c.args, got, c.want)
		}
	}
}
