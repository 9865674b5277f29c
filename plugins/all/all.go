// Package all registers every dmsbridge plugin with the global Benthos
// environment. Import it for its side effects.
package all

import (
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
