// Command benthos-core is plain Benthos with only its core components (pure,
// io, extended) and none of the dmsbridge plugins: the binary that runs the
// core-components baseline of `make bench-e2e` (tests/bench/baseline-core.yaml),
// so that the baseline is what a Benthos user without dmsbridge would get.
package main

import (
	"context"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure/extended"
)

func main() {
	service.RunCLI(context.Background(), service.CLIOptSetBinaryName("benthos-core"))
}
