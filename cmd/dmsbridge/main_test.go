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
