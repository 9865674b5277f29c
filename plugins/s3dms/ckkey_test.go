package s3dms

import (
	"strings"
	"testing"
)

// TestDefaultCheckpointKeySpelling: the default checkpoint key names the
// data, not the spelling of the settings. A restart after "dms" became
// "dms/" (or a TablePath lost its trailing slash, or the directory gained
// one) must find the same checkpoint; with a new key it would silently
// start from scratch and send the whole full load and every CDC file again.
// Settings that name other data give another key.
func TestDefaultCheckpointKeySpelling(t *testing.T) {
	root := t.TempDir()
	def := func(zetaPath string) string {
		return strings.Replace(twoTables, `"TablePath":"hr/zeta/"`, `"TablePath":"`+zetaPath+`"`, 1)
	}
	key := func(dir, folder, cdc, zetaPath string) string {
		t.Helper()
		yaml := "directory: '" + dir + "'\nbucket_folder: '" + folder + "'\ncdc_path: '" + cdc + "'\ntable_definition: '" + def(zetaPath) + "'\n"
		in, _ := directInput(t, yaml)
		return in.conf.ckKey
	}
	base := key(root, "dms", "changes", "hr/zeta/")
	for _, v := range [][4]string{
		{root + "/", "dms", "changes", "hr/zeta/"},
		{root + "/.", "dms", "changes", "hr/zeta/"},
		{root, "dms/", "changes", "hr/zeta/"},
		{root, "/dms/", "changes", "hr/zeta/"},
		{root, "dms", "changes/", "hr/zeta/"},
		{root, "dms", "/changes", "hr/zeta/"},
		{root, "dms", "changes", "hr/zeta"},
		{root, "dms", "changes", "/hr/zeta/"},
	} {
		if got := key(v[0], v[1], v[2], v[3]); got != base {
			t.Errorf("directory %q bucket_folder %q cdc_path %q TablePath %q: key %s, want %s (same data as directory %q, dms, changes, hr/zeta/)", v[0], v[1], v[2], v[3], got, base, root)
		}
	}
	for _, v := range [][4]string{
		{t.TempDir(), "dms", "changes", "hr/zeta/"},
		{root, "dms2", "changes", "hr/zeta/"},
		{root, "", "changes", "hr/zeta/"},
		{root, "dms", "cdc", "hr/zeta/"},
		{root, "dms", "changes", "hr/zeta2/"},
	} {
		if got := key(v[0], v[1], v[2], v[3]); got == base {
			t.Errorf("directory %q bucket_folder %q cdc_path %q TablePath %q names other data but has the same key %s", v[0], v[1], v[2], v[3], got)
		}
	}
}
