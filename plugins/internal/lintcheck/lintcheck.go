// Package lintcheck makes a component's start-time validation part of its
// lint rules, so that `dmsbridge lint`, the lint `run` does before starting
// and the streams API (POST/PUT /streams/{id}, which lints before building)
// refuse a bad value with the same error the component's constructor gives.
//
// Benthos lints only a field's type and enum options; everything else (a
// negative size, an empty required string, conflicting settings, a table
// definition that does not parse) was only found when the component was
// built. In streams mode that is too late: Benthos builds the input before
// the processors and the output, and when a later one fails it never closes
// the input, which keeps running, holding its checkpoint, for the life of the
// process (a corrected POST of the same stream is then refused).
//
// The rule is a Bloblang lint mapping calling a method registered here
// (dmsbridge_lint_<component>) that parses the component's config with its
// spec and runs the component's own validation, without connecting to
// anything.
package lintcheck

import (
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
)

var (
	mu         sync.Mutex
	registered = map[string]bool{}
)

// MethodPrefix starts the name of every method registered by Rule.
const MethodPrefix = "dmsbridge_lint_"

// Rule returns the lint rule (a Bloblang mapping) of a component: it parses
// the component's config with the spec built by spec (called once, at the
// first lint) and returns check's error as the lint message. A config that
// does not parse (a wrong type) is left to Benthos' own lints.
func Rule(component string, spec func() *service.ConfigSpec, check func(*service.ParsedConfig) error) string {
	name := MethodPrefix + component
	mu.Lock()
	defer mu.Unlock()
	if !registered[name] {
		var once sync.Once
		var sp *service.ConfigSpec
		err := bloblang.RegisterMethodV2(name,
			bloblang.NewPluginSpec().
				Category("dmsbridge").
				Description("Used by the lint rule of dmsbridge's "+component+": returns the error the component would give at start for this config, or an empty string."),
			func(*bloblang.ParsedParams) (bloblang.Method, error) {
				return func(v any) (any, error) {
					once.Do(func() { sp = spec() })
					return Check(sp, v, check), nil
				}, nil
			})
		if err != nil {
			panic(err)
		}
		registered[name] = true
	}
	return "root = this." + name + "()"
}

// Check returns check's error for the component config v (as decoded from
// YAML), or "" when it passes or does not parse.
func Check(spec *service.ConfigSpec, v any, check func(*service.ParsedConfig) error) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	b, err := json.Marshal(m)
	if err != nil {
		return ""
	}
	pc, err := spec.ParseYAML(string(b), nil)
	if err != nil {
		// Benthos hands the rule an empty list ([]) as null, which the
		// spec refuses where it expects a list (batching.processors: [],
		// as in the full config `dmsbridge create` writes): the rule would
		// then never run. Read without its nulls: an empty list, like an
		// optional field written null, is as good as absent there.
		if b, err = json.Marshal(withoutNulls(m)); err != nil {
			return ""
		}
		if pc, err = spec.ParseYAML(string(b), nil); err != nil {
			return ""
		}
	}
	if err := check(pc); err != nil {
		return err.Error()
	}
	return ""
}

// withoutNulls returns v without the object keys whose value is null.
func withoutNulls(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if e != nil {
				out[k] = withoutNulls(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = withoutNulls(e)
		}
		return out
	}
	return v
}

// placeholders is set while the process runs `lint --skip-env-var-check`.
var placeholders atomic.Bool

// SetEmptyIsPlaceholder tells the lint rules that an empty value may stand
// for an unset variable (`dmsbridge lint --skip-env-var-check` replaces one
// with ""), to be left to the start. Everywhere else (`run`, `streams` and
// the streams API replace every variable before they lint, refusing an
// unset one) an empty required value is the user's own, and refused: the
// streams API builds a stream's input before its output, and never closes
// the input when a later component fails to build.
func SetEmptyIsPlaceholder(v bool) { placeholders.Store(v) }

// EmptyIsPlaceholder reports whether an empty required value is left to
// the start (see SetEmptyIsPlaceholder).
func EmptyIsPlaceholder() bool { return placeholders.Load() }
