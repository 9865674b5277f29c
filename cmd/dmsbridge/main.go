// Command dmsbridge is a Benthos distribution that reproduces, and improves on,
// the AWS DMS path "Amazon S3 source -> Amazon Kinesis Data Streams target".
//
// It carries every Benthos core component (pure, io, extended) plus the
// dmsbridge plugins: the aws_s3_dms input, the dms_csv_to_json processor,
// the aws_kinesis_streams output and the prometheus metrics exporter.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure/extended"

	"github.com/dmsbridge/dmsbridge/plugins/all"
)

// Set at build time with -ldflags "-X main.Version=... -X main.DateBuilt=...".
var (
	Version   = "dev"
	DateBuilt = "unknown"
)

// defaultGOGC is the garbage collector target used unless GOGC is set: the
// pipeline allocates per row and is otherwise GC-bound (about 17 % less CPU
// per row than Go's default of 100 in bench-e2e, for a few tens of MiB more
// heap). GOMEMLIMIT still caps the heap when set.
const defaultGOGC = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	all.SetEmptyIsPlaceholder(skipsEnvVarCheck(os.Args[1:]))
	code, err := service.RunCLIToCode(context.Background(), cliOptions()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, productMessage(err.Error()))
	}
	if code != 0 {
		os.Exit(code)
	}
}

// productMessage is a message of the Benthos CLI with the product name in
// it: Benthos v4.60 words the streams mode's lint failure "... run
// {{.ProductName}} with --chilled", its template unexpanded.
func productMessage(msg string) string {
	return strings.ReplaceAll(msg, "{{.ProductName}}", "dmsbridge")
}

func cliOptions() []service.CLIOptFunc {
	return []service.CLIOptFunc{
		service.CLIOptSetBinaryName("dmsbridge"),
		service.CLIOptSetProductName("dmsbridge"),
		service.CLIOptSetVersion(Version, DateBuilt),
		service.CLIOptSetDocumentationURL("https://github.com/dmsbridge/dmsbridge/tree/main/docs"),
		service.CLIOptSetDefaultConfigPaths("/config.yaml", "/etc/dmsbridge/config.yaml", "./dmsbridge.yaml"),
		service.CLIOptAddCommand(tablesCommand()),
	}
}

// skipsEnvVarCheck reports whether args run a command that lints with an
// unset variable replaced by "", so that the lint rules leave an empty
// required value to the start (see all.SetEmptyIsPlaceholder): lint with
// --skip-env-var-check (set true; no other command has the flag), and test,
// which lints a unit test's target config that way (Benthos: each test case
// may set its own environment).
func skipsEnvVarCheck(args []string) bool {
	if command(args) == "test" {
		return true
	}
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "skip-env-var-check" {
			continue
		}
		if !hasVal {
			return true
		}
		b, err := strconv.ParseBool(val)
		return err == nil && b
	}
	return false
}

// rootValueFlags are the root flags of the Benthos CLI that take a value.
var rootValueFlags = map[string]bool{
	"config": true, "c": true, "log.level": true, "set": true, "s": true, "resources": true, "r": true,
	"env-file": true, "e": true, "templates": true, "t": true,
}

// command is the command args run: the first argument that is neither a
// root flag nor its value ("" for none).
func command(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return ""
		}
		if !strings.HasPrefix(a, "-") {
			return a
		}
		name, _, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasVal && rootValueFlags[name] {
			i++
		}
	}
	return ""
}
