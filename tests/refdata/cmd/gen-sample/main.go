// Command gen-sample writes the reference data set (see package refdata) to a
// directory, and its manifest of expected records as JSON lines.
//
//	go run ./tests/refdata/cmd/gen-sample -out DIR [-scale 1.0] [-seed 1]
//
// DIR receives table-definition.json, schema01/table01/full_000..004,
// cdcfile/cdc_000..003 and manifest.jsonl. Upload DIR to a bucket with any S3
// client (aws s3 cp --recursive) to get the reference bucket layout.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
)

func main() {
	out := flag.String("out", "", "directory to write the data set into")
	scale := flag.Float64("scale", 1, "multiply every file size by this factor")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *out == "" || *scale <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *scale, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gen-sample:", err)
		os.Exit(1)
	}
}

func run(out string, scale float64, seed uint64) error {
	o := refdata.Scaled(scale)
	o.Seed = seed
	files, manifest := refdata.Generate(o)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "table-definition.json"), []byte(refdata.Definition), 0o644); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(out, filepath.FromSlash(f.Key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Body, 0o644); err != nil {
			return err
		}
	}
	if err := refdata.WriteManifest(filepath.Join(out, "manifest.jsonl"), manifest); err != nil {
		return err
	}
	fmt.Printf("wrote %d files and %d expected records to %s\n", len(files), len(manifest), out)
	return nil
}
