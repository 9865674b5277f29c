package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
		out, err := exec.Command(binPath, "lint", "--skip-env-var-check", f).CombinedOutput()
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
