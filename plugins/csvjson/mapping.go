package csvjson

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/dmsbridge/dmsbridge/plugins/dmsjson"
	"github.com/dmsbridge/dmsbridge/plugins/tabledef"
)

// mappingRule is one DMS table-mapping rule of rule-type object-mapping.
type mappingRule struct {
	id        int
	name      string
	schemaPat string
	tablePat  string
	document  bool // map-record-to-document
	keyType   keyKind
	keyName   string
	keyValue  string
	exclude   map[string]bool // lower-case column names
	excludes  []string        // exclude-columns as written, in order
	attrs     []attrSpec
}

type attrSpec struct {
	name  string
	value any // a string template, or a document (object) whose strings are templates
}

// tableMapping is a rule resolved against one table.
type tableMapping struct {
	rule    *mappingRule
	attrs   []attrPlan
	keyCol  int // attribute-name key: a column index, or -1
	keyAttr int // attribute-name key: an attribute index, or -1
}

type attrPlan struct {
	name string
	key  []byte // `"name":`
	segs []seg
}

// seg is a piece of a compiled attribute value: literal JSON bytes, or the
// escaped text of a column (inside a JSON string).
type seg struct {
	lit []byte
	raw []byte // the literal's unescaped text (for partition keys)
	col int    // -1 for a literal
}

func (r *mappingRule) where() string {
	if r.name != "" {
		return fmt.Sprintf("object-mapping rule %d (%s)", r.id, r.name)
	}
	return fmt.Sprintf("object-mapping rule %d", r.id)
}

// parseTableMappings reads object-mapping rules from a table-mapping
// document, a rules list, inline JSON or a file path.
func parseTableMappings(v any) ([]*mappingRule, error) {
	if s, ok := v.(string); ok {
		s = strings.TrimSpace(s)
		var doc []byte
		if strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") {
			doc = []byte(s)
		} else {
			b, err := os.ReadFile(s)
			if err != nil {
				return nil, fmt.Errorf("%w%s", err, tabledef.RelativeTo(s, err))
			}
			doc = b
		}
		var parsed any
		if err := yaml.Unmarshal(doc, &parsed); err != nil {
			return nil, fmt.Errorf("neither JSON nor YAML: %w", err)
		}
		v = parsed
	}
	var list []any
	switch x := v.(type) {
	case map[string]any:
		rl, ok := x["rules"].([]any)
		if !ok {
			return nil, fmt.Errorf("a table-mapping document needs a rules list")
		}
		list = rl
	case []any:
		list = x
	default:
		return nil, fmt.Errorf("expected a table-mapping document, a rules list or a file path, got %T", v)
	}
	var rules []*mappingRule
	for i, item := range list {
		rm, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("rules[%d] is not an object", i)
		}
		if str(rm["rule-type"]) != "object-mapping" {
			continue // selection and transformation rules do not shape Kinesis records
		}
		r, err := parseRule(i, rm)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	sort.SliceStable(rules, func(a, b int) bool { return rules[a].id < rules[b].id })
	return rules, nil
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

func parseRule(i int, rm map[string]any) (*mappingRule, error) {
	r := &mappingRule{id: i + 1, name: str(rm["rule-name"]), exclude: map[string]bool{}}
	if id := str(rm["rule-id"]); id != "" {
		n, err := strconv.Atoi(id)
		if err != nil {
			return nil, fmt.Errorf("rules[%d]: rule-id %q is not a number", i, id)
		}
		r.id = n
	}
	loc, _ := rm["object-locator"].(map[string]any)
	r.schemaPat, r.tablePat = str(loc["schema-name"]), str(loc["table-name"])
	if r.schemaPat == "" || r.tablePat == "" {
		return nil, fmt.Errorf("%s: object-locator needs schema-name and table-name", r.where())
	}
	switch a := str(rm["rule-action"]); a {
	case "map-record-to-record":
	case "map-record-to-document":
		r.document = true
	default:
		return nil, fmt.Errorf("%s: rule-action %q is not map-record-to-record or map-record-to-document", r.where(), a)
	}
	mp, ok := rm["mapping-parameters"].(map[string]any)
	if !ok && rm["mapping-parameters"] != nil {
		return nil, fmt.Errorf("%s: mapping-parameters must be an object", r.where())
	}
	if kt := str(mp["partition-key-type"]); kt != "" {
		k, ok := parseKeyKind(kt)
		if !ok {
			return nil, fmt.Errorf("%s: partition-key-type %q is not attribute-name, schema-table, primary-key, constant or transaction-id", r.where(), kt)
		}
		r.keyType = k
	}
	r.keyName = str(mp["partition-key-name"])
	// DMS documents the key forms SchemaName.TableName and ${AttributeName}:
	// "${LastName}" names the attribute LastName.
	if n := r.keyName; len(n) > 3 && strings.HasPrefix(n, "${") && strings.HasSuffix(n, "}") && !strings.ContainsAny(n[2:len(n)-1], "${}") {
		r.keyName = n[2 : len(n)-1]
	}
	if pk, ok := mp["partition-key"].(map[string]any); ok {
		r.keyValue = str(pk["value"])
	} else if mp["partition-key"] != nil {
		return nil, fmt.Errorf("%s: partition-key must be an object ({value: ...})", r.where())
	}
	switch {
	case r.keyType == keyAttribute && r.keyName == "":
		return nil, fmt.Errorf("%s: partition-key-type attribute-name needs partition-key-name", r.where())
	case r.keyType == keyConstant && r.keyValue == "":
		return nil, fmt.Errorf("%s: partition-key-type constant needs partition-key.value", r.where())
	case r.keyType == keyDefault && r.keyValue != "":
		r.keyType = keyConstant // DMS's constant-key example gives only partition-key.value
	}
	if r.keyType == keyConstant && strings.Contains(r.keyValue, "${") {
		// not expanded: every row would go to the one shard of that literal key
		return nil, fmt.Errorf("%s: partition-key.value %q is a constant, ${} is not expanded in it; for a key per row use partition-key-type attribute-name with partition-key-name", r.where(), r.keyValue)
	}
	// a parameter of the wrong shape is refused, not ignored: an ignored
	// exclude-columns would write the columns it meant to keep out
	if ex, ok := mp["exclude-columns"].([]any); ok {
		for _, c := range ex {
			r.exclude[strings.ToLower(str(c))] = true
			r.excludes = append(r.excludes, str(c))
		}
	} else if mp["exclude-columns"] != nil {
		return nil, fmt.Errorf("%s: exclude-columns must be a list of column names", r.where())
	}
	if am, ok := mp["attribute-mappings"].([]any); !ok && mp["attribute-mappings"] != nil {
		return nil, fmt.Errorf("%s: attribute-mappings must be a list", r.where())
	} else if ok {
		for j, a := range am {
			amm, ok := a.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: attribute-mappings[%d] is not an object", r.where(), j)
			}
			name := str(amm["target-attribute-name"])
			if name == "" {
				name = str(amm["attribute-name"])
			}
			if name == "" {
				return nil, fmt.Errorf("%s: attribute-mappings[%d] needs target-attribute-name", r.where(), j)
			}
			val := amm["value"]
			switch val.(type) {
			case string, map[string]any:
			default:
				return nil, fmt.Errorf("%s: attribute %s: value must be a string template or a document object", r.where(), name)
			}
			// data is a JSON object: a second attribute of one name, or an
			// attribute named _doc next to the document's _doc map, would
			// write a duplicate key (most readers keep only one of them)
			for _, prev := range r.attrs {
				if prev.name == name {
					return nil, fmt.Errorf("%s: attribute %q is mapped twice", r.where(), name)
				}
			}
			if r.document && name == "_doc" {
				return nil, fmt.Errorf("%s: attribute %q collides with the _doc map of map-record-to-document", r.where(), name)
			}
			r.attrs = append(r.attrs, attrSpec{name: name, value: val})
		}
	}
	return r, nil
}

// like matches s against a DMS table-mapping pattern, as DMS documents its
// wildcards: % is any run of characters, _ is one character, [_] is a
// literal underscore, [ab] one character of a set and [a-d] one of a range.
// Anything else, an unclosed [ included, is itself. Names are compared
// case-sensitively.
func like(pat, s string) bool {
	toks := likeTokens(pat)
	// Every token but % matches exactly one character, so the classic
	// greedy match with one backtracking point (the last %) is exact.
	ti, si := 0, 0
	star, starSi := -1, 0
	for si < len(s) {
		r, n := utf8.DecodeRuneInString(s[si:])
		switch {
		case ti < len(toks) && !toks[ti].any && toks[ti].match(r):
			ti++
			si += n
		case ti < len(toks) && toks[ti].any:
			star, starSi = ti, si
			ti++
		case star >= 0:
			_, n = utf8.DecodeRuneInString(s[starSi:])
			starSi += n
			ti, si = star+1, starSi
		default:
			return false
		}
	}
	for ti < len(toks) && toks[ti].any {
		ti++
	}
	return ti == len(toks)
}

// likeToken is % (any) or a matcher of one character: a literal, _, or a
// [set] of characters and ranges.
type likeToken struct {
	any    bool
	single bool   // _
	set    []rune // pairs lo, hi: a literal is one pair
}

func (t *likeToken) match(r rune) bool {
	if t.single {
		return true
	}
	for i := 0; i < len(t.set); i += 2 {
		if t.set[i] <= r && r <= t.set[i+1] {
			return true
		}
	}
	return false
}

func likeTokens(pat string) []likeToken {
	var toks []likeToken
	for len(pat) > 0 {
		r, n := utf8.DecodeRuneInString(pat)
		switch r {
		case '%':
			toks = append(toks, likeToken{any: true})
			pat = pat[n:]
			continue
		case '_':
			toks = append(toks, likeToken{single: true})
			pat = pat[n:]
			continue
		case '[':
			if end := strings.IndexByte(pat[1:], ']'); end > 0 {
				cls := []rune(pat[1 : 1+end])
				var set []rune
				for i := 0; i < len(cls); i++ {
					if i+2 < len(cls) && cls[i+1] == '-' {
						set = append(set, cls[i], cls[i+2])
						i += 2
						continue
					}
					set = append(set, cls[i], cls[i])
				}
				toks = append(toks, likeToken{set: set})
				pat = pat[2+end:]
				continue
			}
		}
		toks = append(toks, likeToken{set: []rune{r, r}})
		pat = pat[n:]
	}
	return toks
}

func (r *mappingRule) matches(schema, table string) bool {
	return like(r.schemaPat, schema) && like(r.tablePat, table)
}

// resolve compiles the rule for one table and marks the columns that stay
// in data.
func (r *mappingRule) resolve(p *tablePlan) (*tableMapping, error) {
	m := &tableMapping{rule: r, keyCol: -1, keyAttr: -1}
	colIdx := map[string]int{}
	for i, c := range p.cols {
		colIdx[strings.ToLower(c.name)] = i
	}
	for name := range r.exclude {
		if i, ok := colIdx[name]; ok {
			p.cols[i].inData = false
		}
	}
	for _, a := range r.attrs {
		ap := attrPlan{name: a.name, key: jsonKey(a.name)}
		var err error
		if ap.segs, err = compileValue(nil, a.value, colIdx); err != nil {
			return nil, fmt.Errorf("%s, table %s.%s, attribute %s: %w", r.where(), p.schema, p.name, a.name, err)
		}
		if !r.document {
			if i, ok := colIdx[strings.ToLower(a.name)]; ok {
				p.cols[i].inData = false // the attribute replaces the column
			}
		}
		m.attrs = append(m.attrs, ap)
	}
	if r.keyType == keyAttribute {
		for j, a := range m.attrs {
			if strings.EqualFold(a.name, r.keyName) {
				m.keyAttr = j
			}
		}
		if m.keyAttr < 0 {
			i, ok := colIdx[strings.ToLower(r.keyName)]
			if !ok {
				return nil, fmt.Errorf("%s, table %s.%s: partition-key-name %q is neither a column nor an attribute", r.where(), p.schema, p.name, r.keyName)
			}
			m.keyCol = i
		}
	}
	return m, nil
}

// compileValue turns an attribute value into segments.
func compileValue(segs []seg, v any, cols map[string]int) ([]seg, error) {
	switch x := v.(type) {
	case string:
		return compileTemplate(segs, x, cols)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		segs = appendLit(segs, []byte("{"), nil)
		for i, k := range keys {
			lit := []byte{}
			if i > 0 {
				lit = append(lit, ',')
			}
			lit = append(dmsjson.AppendStringNoCheck(lit, k), ':')
			segs = appendLit(segs, lit, nil)
			var err error
			if segs, err = compileValue(segs, x[k], cols); err != nil {
				return nil, err
			}
		}
		return appendLit(segs, []byte("}"), nil), nil
	case []any:
		segs = appendLit(segs, []byte("["), nil)
		for i, e := range x {
			if i > 0 {
				segs = appendLit(segs, []byte(","), nil)
			}
			var err error
			if segs, err = compileValue(segs, e, cols); err != nil {
				return nil, err
			}
		}
		return appendLit(segs, []byte("]"), nil), nil
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		return appendLit(segs, b, b), nil
	}
}

func appendLit(segs []seg, lit, raw []byte) []seg {
	if n := len(segs); n > 0 && segs[n-1].col < 0 {
		segs[n-1].lit = append(segs[n-1].lit, lit...)
		segs[n-1].raw = append(segs[n-1].raw, raw...)
		return segs
	}
	return append(segs, seg{lit: append([]byte(nil), lit...), raw: append([]byte(nil), raw...), col: -1})
}

// compileTemplate compiles "text ${col} text" into a JSON string.
func compileTemplate(segs []seg, s string, cols map[string]int) ([]seg, error) {
	segs = appendLit(segs, []byte(`"`), nil)
	for len(s) > 0 {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unterminated ${ in %q", s)
		}
		if i > 0 {
			esc, _ := dmsjson.AppendEscaped(nil, []byte(s[:i]))
			segs = appendLit(segs, esc, []byte(s[:i]))
		}
		name := s[i+2 : i+j]
		ci, ok := cols[strings.ToLower(name)]
		if !ok {
			return nil, fmt.Errorf("${%s} names no column of the table", name)
		}
		segs = append(segs, seg{col: ci})
		s = s[i+j+1:]
	}
	if s != "" {
		esc, _ := dmsjson.AppendEscaped(nil, []byte(s))
		segs = appendLit(segs, esc, []byte(s))
	}
	return appendLit(segs, []byte(`"`), nil), nil
}

// appendMapped writes the data object of an object-mapped table.
func (w *worker) appendMapped(dst []byte, p *tablePlan) []byte {
	m := p.mapping
	if m.rule.document {
		dst = append(dst, '{')
		for _, a := range m.attrs {
			dst = w.appendAttr(append(dst, a.key...), p, &a)
			dst = append(dst, ',')
		}
		dst = append(dst, `"_doc":`...)
		dst = w.appendColumns(dst, p)
		return append(dst, '}')
	}
	dst = w.appendColumns(dst, p)
	if len(m.attrs) == 0 {
		return dst
	}
	dst = dst[:len(dst)-1] // reopen the object
	for j, a := range m.attrs {
		if j > 0 || dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
		dst = w.appendAttr(append(dst, a.key...), p, &a)
	}
	return append(dst, '}')
}

func (w *worker) appendAttr(dst []byte, p *tablePlan, a *attrPlan) []byte {
	for _, s := range a.segs {
		if s.col < 0 {
			dst = append(dst, s.lit...)
			continue
		}
		// column texts are valid UTF-8: strings were checked when rendered
		dst, _ = dmsjson.AppendEscaped(dst, w.colText(p, s.col))
	}
	return dst
}

// mappedKey appends the attribute-name partition key text.
func (w *worker) mappedKey(dst []byte, p *tablePlan) []byte {
	m := p.mapping
	if m.keyCol >= 0 {
		return append(dst, w.colText(p, m.keyCol)...)
	}
	a := &m.attrs[m.keyAttr]
	if len(a.segs) > 0 && len(a.segs[0].lit) > 0 && a.segs[0].lit[0] == '"' {
		// a string template: its unescaped text
		for _, s := range a.segs {
			if s.col < 0 {
				dst = append(dst, s.raw...)
			} else {
				dst = append(dst, w.colText(p, s.col)...)
			}
		}
		return dst
	}
	return w.appendAttr(dst, p, a)
}
