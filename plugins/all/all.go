// Package all registers every dmsbridge plugin with the global Benthos
// environment. Import it for its side effects.
package all

import (
	"github.com/dmsbridge/dmsbridge/plugins/internal/lintcheck"

	// input aws_s3_dms
	_ "github.com/dmsbridge/dmsbridge/plugins/s3dms"
	// processor dms_csv_to_json
	_ "github.com/dmsbridge/dmsbridge/plugins/csvjson"
	// output aws_kinesis_streams
	_ "github.com/dmsbridge/dmsbridge/plugins/kinesis"
	// metrics exporter prometheus
	_ "github.com/dmsbridge/dmsbridge/plugins/prometheus"
	// tracer none (replaces core's: no work per message)
	_ "github.com/dmsbridge/dmsbridge/plugins/tracer"
)

// SetEmptyIsPlaceholder tells the lint rules of dmsbridge's components
// that an empty required value (the input's bucket and directory, the
// output's stream) may stand for an unset variable, and is to be left to
// the start: call it with true when running `lint --skip-env-var-check`,
// which replaces an unset variable with "". Otherwise such a value is
// refused at lint, naming the field.
func SetEmptyIsPlaceholder(v bool) { lintcheck.SetEmptyIsPlaceholder(v) }
