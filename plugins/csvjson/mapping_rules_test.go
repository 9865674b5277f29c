package csvjson

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// twoTablesDef defines sales.order_items and sales.order1items, whose names
// differ only where one has an underscore.
const twoTablesDef = `table_definition: '{"Tables":[` +
	`{"TableName":"order_items","TablePath":"sales/order_items/","TableOwner":"sales","TableColumns":[{"ColumnName":"id","ColumnType":"INT4","ColumnIsPk":"true"},{"ColumnName":"secret","ColumnType":"STRING"}],"TableColumnsTotal":"2"},` +
	`{"TableName":"order1items","TablePath":"sales/order1items/","TableOwner":"sales","TableColumns":[{"ColumnName":"id","ColumnType":"INT4","ColumnIsPk":"true"},{"ColumnName":"secret","ColumnType":"STRING"}],"TableColumnsTotal":"2"}]}'
message_format: json-unformatted
`

// DMS's table-mapping wildcards (CHAP_Tasks.CustomizingTasks.TableMapping.
// SelectionTransformation.Wildcards): % is any run, _ one character, [_] a
// literal underscore, [ab] a set and [a-d] a range. A rule written as DMS
// documents it must select the same tables here: a rule that silently
// matches nothing writes the columns its exclude-columns meant to keep out.
func TestObjectLocatorDMSWildcards(t *testing.T) {
	for _, c := range []struct {
		schema, pattern string
		under, digit1   bool // whether the rule applies to order_items, order1items
	}{
		{"sales", "order[_]items", true, false},
		{"sales", "order_items", true, true},
		{"sales", "orde_[_1]items", true, true},
		{"sales", "[n-p]rder[0-9]items", false, true},
		{"sales", "[op]rder%", true, true},
		{"sales", "order_item", false, false},
		{"sales", "order_items_", false, false},
		{"sales", "%[_]%", true, false},
		{"sa_es", "%", true, true},
		{"Sales", "%", false, false}, // schema names are case-sensitive
		{"sales", "ORDER[_]ITEMS", false, false},
	} {
		p := newTestProc(t, twoTablesDef+`table_mappings: '[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record",`+
			`"object-locator":{"schema-name":"`+c.schema+`","table-name":"`+c.pattern+`"},"mapping-parameters":{"exclude-columns":["secret"]}}]'
`)
		out := process(t, p, fullLoad("sales", "order_items", "k", 1, "1,pin"), fullLoad("sales", "order1items", "k", 1, "2,pin"))
		for i, applies := range []bool{c.under, c.digit1} {
			mustOK(t, out[i])
			want := `{"id":` + string(rune('1'+i)) + `,"secret":"pin"}`
			if applies {
				want = `{"id":` + string(rune('1'+i)) + `}`
			}
			if got := dataOf(t, body(t, out[i])); got != want {
				t.Errorf("schema-name %q table-name %q, table %s: data %s, want %s", c.schema, c.pattern, []string{"order_items", "order1items"}[i], got, want)
			}
		}
	}
}

// like agrees with the regular expression of the DMS pattern on random
// patterns and names (% .*, _ ., [set] a class, anything else literal).
func TestLikeMatchesRegexp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(alpha []string, n int) string {
		var b strings.Builder
		for range rng.IntN(n) {
			b.WriteString(alpha[rng.IntN(len(alpha))])
		}
		return b.String()
	}
	for range 20000 {
		pat := pick([]string{"a", "b", "é", "%", "_", "[_]", "[ab]", "[a-b]", "[", "]", "-"}, 7)
		s := pick([]string{"a", "b", "é", "_", "[", "]", "-"}, 8)
		var re strings.Builder
		re.WriteString("^")
		for _, tk := range likeTokens(pat) {
			switch {
			case tk.any:
				re.WriteString(".*")
			case tk.single:
				re.WriteString(".")
			default:
				re.WriteString(`(?:[^\x00-\x{10FFFF}]`) // a reversed range matches nothing
				for i := 0; i < len(tk.set); i += 2 {
					if tk.set[i] <= tk.set[i+1] {
						re.WriteString("|[" + regexp.QuoteMeta(string(tk.set[i])) + "-" + regexp.QuoteMeta(string(tk.set[i+1])) + "]")
					}
				}
				re.WriteString(")")
			}
		}
		re.WriteString("$")
		if got, want := like(pat, s), regexp.MustCompile(re.String()).MatchString(s); got != want {
			t.Fatalf("like(%q, %q) = %v, want %v (%s)", pat, s, got, want, re.String())
		}
	}
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"a[", "a[", true}, {"[]", "[]", true}, {"[a-", "[a-", true}, {"x[a-]", "x-", true}, {"%", "", true}, {"_", "", false}, {"é_", "éé", true},
	} {
		if like(c.pat, c.s) != c.want {
			t.Errorf("like(%q, %q) != %v", c.pat, c.s, c.want)
		}
	}
}

// An object-mapping rule that applies to no table of the definition (a
// misspelt or differently cased name, or a rule every table of which an
// earlier rule maps) is not applied; the start says so, since its
// exclude-columns and partition key then silently do nothing.
func TestObjectMappingRuleThatAppliesToNoTableIsLogged(t *testing.T) {
	_, logs := newLoggedProc(t, twoTablesDef+`table_mappings: '[`+
		`{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"sales","table-name":"order%"}},`+
		`{"rule-type":"object-mapping","rule-id":"2","rule-name":"pii","rule-action":"map-record-to-record","object-locator":{"schema-name":"sales","table-name":"order[_]items"},"mapping-parameters":{"exclude-columns":["secret"]}},`+
		`{"rule-type":"object-mapping","rule-id":"3","rule-action":"map-record-to-record","object-locator":{"schema-name":"Sales","table-name":"order_items"},"mapping-parameters":{"exclude-columns":["secret"]}}]'
`)
	for _, want := range []string{
		`object-mapping rule 2 (pii) applies to no table: every table it matches (sales.order_items) is mapped by an earlier rule`,
		`object-mapping rule 3 matches no table of the table definition (schema-name \"Sales\", table-name \"order_items\"); it is not applied`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "object-mapping rule 1") {
		t.Errorf("rule 1 applies, yet it is reported:\n%s", logs.String())
	}
}

// An exclude-columns entry that names no column of any table the rule maps
// (a typo, "scret" for "secret") keeps nothing out: the start says so.
func TestExcludeColumnNamingNoColumnIsLogged(t *testing.T) {
	p, logs := newLoggedProc(t, twoTablesDef+`table_mappings: '[`+
		`{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"sales","table-name":"order%"},"mapping-parameters":{"exclude-columns":["ID","scret"]}}]'
`)
	want := `object-mapping rule 1: exclude-columns \"scret\" names no column of the tables it maps (sales.order_items, sales.order1items); it excludes nothing`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("the log lacks %s:\n%s", want, logs.String())
	}
	if strings.Contains(logs.String(), `\"ID\"`) {
		t.Errorf("ID names a column (case-insensitively), yet it is reported:\n%s", logs.String())
	}
	if got := dataOf(t, body(t, process(t, p, fullLoad("sales", "order_items", "k", 1, "1,pin"))[0])); got != `{"secret":"pin"}` {
		t.Errorf("data %s", got)
	}
}
