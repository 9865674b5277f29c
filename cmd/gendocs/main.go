// Command gendocs writes the reference docs of dmsbridge's own components,
// rendered from their config specs, to the directory given as its argument
// (docs/components in the repository; `make docs` runs it and CI checks that
// the committed copy is current).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/dmsbridge/dmsbridge/plugins/all"
)

// ours lists the components dmsbridge adds, by kind.
var ours = map[string][]string{
	"inputs":     {"aws_s3_dms"},
	"processors": {"dms_csv_to_json"},
	"outputs":    {"aws_kinesis_streams"},
	"metrics":    {"prometheus"},
	"tracers":    {"none"},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	env := service.GlobalEnvironment()
	type doc struct{ kind, name string }
	rendered := map[doc][]byte{}
	var firstErr error
	collect := func(kind string) func(string, *service.ConfigView) {
		return func(name string, v *service.ConfigView) {
			for _, n := range ours[kind] {
				if n != name {
					continue
				}
				// Not v.RenderDocs: Benthos v4.60.0's template is AsciiDoc
				// (it rendered the tracer, which has no fields, as an
				// AsciiDoc page telling the reader to edit
				// internal/impl/<provider>) and fails on every component
				// with fields. Every page is rendered as Markdown from the
				// template data.
				b, err := renderPlain(v)
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s %s: %w", kind, name, err)
				}
				rendered[doc{kind, name}] = b
			}
		}
	}
	env.WalkInputs(collect("inputs"))
	env.WalkProcessors(collect("processors"))
	env.WalkOutputs(collect("outputs"))
	env.WalkMetrics(collect("metrics"))
	env.WalkTracers(collect("tracers"))
	if firstErr != nil {
		return firstErr
	}
	var index []string
	for kind, names := range ours {
		for _, name := range names {
			b, ok := rendered[doc{kind, name}]
			if !ok {
				return fmt.Errorf("%s %s is not registered", kind, name)
			}
			p := filepath.Join(dir, kind, name+".md")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return err
			}
			index = append(index, fmt.Sprintf("- %s: [`%s`](%s/%s.md)", strings.TrimSuffix(kind, "s"), name, kind, name))
		}
	}
	sort.Strings(index)
	readme := "# dmsbridge component reference\n\nGenerated from the components' config specs by `make docs`; do not edit by hand.\n\n" +
		strings.Join(index, "\n") + "\n"
	return os.WriteFile(filepath.Join(dir, "README.md"), []byte(readme), 0o644)
}

// renderPlain renders a component's docs from its template data.
func renderPlain(v *service.ConfigView) ([]byte, error) {
	td, err := v.TemplateData()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n%s\n\n%s\n\n", td.Name, td.Summary, strings.TrimSpace(td.Description))
	if len(td.Fields) > 0 {
		b.WriteString("## Fields\n\n")
	}
	for _, f := range td.Fields {
		fmt.Fprintf(&b, "### `%s`\n\n%s\n\n*Type*: `%s`\n\n", f.FullName, f.Description, f.Type)
		if f.DefaultMarshalled != "" {
			fmt.Fprintf(&b, "*Default*: `%s`\n\n", f.DefaultMarshalled)
		}
	}
	return []byte(b.String()), nil
}
