package safetext

import "testing"

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"s3://b/cdc/0001.csv":  "s3://b/cdc/0001.csv",
		"s3://b/日本/é file.csv": "s3://b/日本/é file.csv",
		"":                     "",
		"a\nlevel=error msg=x": `"a\nlevel=error msg=x"`,
		"a\x1b[31mred":         `"a\x1b[31mred"`,
		"a\rb":                 `"a\rb"`,
		"a\tb":                 `"a\tb"`,
		"evil\u202etxt.csv":    `"evil\u202etxt.csv"`,
		"line\u2028sep":        `"line\u2028sep"`,
		"bad\xffutf8":          `"bad\xffutf8"`,
		`back\slash "quoted"`:  `back\slash "quoted"`,
		"nbsp\u00a0":           `"nbsp\u00a0"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
