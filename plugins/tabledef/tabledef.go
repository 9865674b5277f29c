// Package tabledef parses and validates an AWS DMS external table definition
// (the S3 source endpoint's ExternalTableDefinition), the document that names
// each table's schema, folder and typed columns.
//
// It is lenient where DMS is lenient and strict where a mistake would corrupt
// data later:
//   - every numeric and boolean key is accepted both as a string ("5", "true")
//     and as a native JSON value (5, true); keys are case-sensitive as in DMS;
//   - column type names are case-insensitive; TIMESTAMP is an alias of DATETIME,
//     BYTES of BYTE, WSTRING of STRING and NCLOB of CLOB;
//   - unknown keys are ignored (DMS behaviour is unconfirmed; ignoring keeps
//     definitions written for newer DMS versions usable);
//   - validation errors name the table, the column and the rule.
//
// The package does not import Benthos.
package tabledef

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxDocumentSize is DMS's limit for an external table definition (2 MB).
const MaxDocumentSize = 2 * 1000 * 1000

// MaxColumnLength is DMS's limit for ColumnLength (2,147,483,647 bytes).
const MaxColumnLength = 2147483647

// Type is a DMS column data type.
type Type int

// The DMS column types of an S3 source.
const (
	TypeInvalid Type = iota
	TypeByte
	TypeDate
	TypeTime
	TypeDateTime
	TypeInt1
	TypeInt2
	TypeInt4
	TypeInt8
	TypeNumeric
	TypeReal4
	TypeReal8
	TypeString
	TypeUInt1
	TypeUInt2
	TypeUInt4
	TypeUInt8
	TypeBlob
	TypeClob
	TypeBoolean
)

var typeNames = map[string]Type{
	"BYTE": TypeByte, "BYTES": TypeByte,
	"DATE": TypeDate, "TIME": TypeTime,
	"DATETIME": TypeDateTime, "TIMESTAMP": TypeDateTime,
	"INT1": TypeInt1, "INT2": TypeInt2, "INT4": TypeInt4, "INT8": TypeInt8,
	"NUMERIC": TypeNumeric, "REAL4": TypeReal4, "REAL8": TypeReal8,
	"STRING": TypeString, "WSTRING": TypeString,
	"UINT1": TypeUInt1, "UINT2": TypeUInt2, "UINT4": TypeUInt4, "UINT8": TypeUInt8,
	"BLOB": TypeBlob, "CLOB": TypeClob, "NCLOB": TypeClob,
	"BOOLEAN": TypeBoolean,
}

var canonicalNames = map[Type]string{
	TypeByte: "BYTE", TypeDate: "DATE", TypeTime: "TIME", TypeDateTime: "DATETIME",
	TypeInt1: "INT1", TypeInt2: "INT2", TypeInt4: "INT4", TypeInt8: "INT8",
	TypeNumeric: "NUMERIC", TypeReal4: "REAL4", TypeReal8: "REAL8", TypeString: "STRING",
	TypeUInt1: "UINT1", TypeUInt2: "UINT2", TypeUInt4: "UINT4", TypeUInt8: "UINT8",
	TypeBlob: "BLOB", TypeClob: "CLOB", TypeBoolean: "BOOLEAN",
}

// String returns the canonical DMS name of the type.
func (t Type) String() string {
	if n, ok := canonicalNames[t]; ok {
		return n
	}
	return "INVALID"
}

// ParseType maps a DMS type name (any case, aliases included) to a Type.
func ParseType(name string) (Type, bool) {
	t, ok := typeNames[strings.ToUpper(strings.TrimSpace(name))]
	return t, ok
}

// DateFormats are the ColumnDateFormat values DMS accepts.
var DateFormats = []string{
	"YYYY-MM-dd HH:mm:ss", "YYYY-MM-dd HH:mm:ss.F",
	"YYYY/MM/dd HH:mm:ss", "YYYY/MM/dd HH:mm:ss.F",
	"MM/dd/YYYY HH:mm:ss", "MM/dd/YYYY HH:mm:ss.F",
	"YYYYMMdd HH:mm:ss", "YYYYMMdd HH:mm:ss.F",
}

// Column is one column of a table, in file order.
type Column struct {
	Name       string
	Type       Type
	TypeName   string // as written in the definition
	Length     int    // bytes; 0 when unset (DMS default)
	Precision  int
	Scale      int
	Nullable   bool
	IsPK       bool
	DateFormat string // one of DateFormats, or empty
	Index      int    // position in the table, 0-based
}

// Table is one source table.
type Table struct {
	Name         string // TableName
	Path         string // TablePath, as written
	Owner        string // TableOwner (the schema)
	Columns      []Column
	ColumnsTotal int
	// PrimaryKey holds the indexes of the ColumnIsPk columns, in column order.
	PrimaryKey []int
	// Raw is the table's own JSON object, as given.
	Raw json.RawMessage
}

// QualifiedName is "owner.name".
func (t *Table) QualifiedName() string { return t.Owner + "." + t.Name }

// Column returns the column with that exact name, or nil.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// Definition is a parsed and validated external table definition.
type Definition struct {
	TableCount int
	Tables     []*Table
	byName     map[string]*Table
}

// Table returns the table of that schema (TableOwner) and name, or nil.
func (d *Definition) Table(schema, name string) *Table {
	return d.byName[schema+"\x00"+name]
}

// flex accepts a JSON string, number or boolean and keeps its text.
type flex struct {
	set  bool
	text string
}

func (f *flex) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	f.set = true
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &f.text)
	}
	if len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		return fmt.Errorf("expected a string, number or boolean, got %s", truncate(string(b), 40))
	}
	f.text = string(b)
	return nil
}

func (f flex) int(key string) (int, error) {
	if !f.set {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(f.text))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a non-negative whole number", key, f.text)
	}
	return n, nil
}

func (f flex) bool(key string) (bool, error) {
	if !f.set {
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(f.text)) {
	case "true", "t", "y", "yes", "1":
		return true, nil
	case "false", "f", "n", "no", "0", "":
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is not a boolean (true or false)", key, f.text)
}

type rawColumn struct {
	ColumnName       *string `json:"ColumnName"`
	ColumnType       *string `json:"ColumnType"`
	ColumnLength     flex    `json:"ColumnLength"`
	ColumnNullable   flex    `json:"ColumnNullable"`
	ColumnIsPk       flex    `json:"ColumnIsPk"`
	ColumnPrecision  flex    `json:"ColumnPrecision"`
	ColumnScale      flex    `json:"ColumnScale"`
	ColumnDateFormat string  `json:"ColumnDateFormat"`
}

type rawTable struct {
	TableName         string      `json:"TableName"`
	TablePath         string      `json:"TablePath"`
	TableOwner        string      `json:"TableOwner"`
	TableColumns      []rawColumn `json:"TableColumns"`
	TableColumnsTotal flex        `json:"TableColumnsTotal"`
}

type rawDef struct {
	TableCount flex              `json:"TableCount"`
	Tables     []json.RawMessage `json:"Tables"`
}

func (c *rawColumn) UnmarshalJSON(b []byte) error { return exactKeys(b, c) }
func (t *rawTable) UnmarshalJSON(b []byte) error  { return exactKeys(b, t) }
func (d *rawDef) UnmarshalJSON(b []byte) error    { return exactKeys(b, d) }

// exactKeys decodes the JSON object b into the struct v points to, taking
// each field from the key spelled exactly as its json tag. encoding/json
// alone matches keys case-insensitively: "columntype" would be read as
// ColumnType, and a stray "columnType" would override it. Other keys are
// ignored, like unknown ones.
func exactKeys(b []byte, v any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	rv := reflect.ValueOf(v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
		raw, ok := m[name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, rv.Field(i).Addr().Interface()); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// Parse parses and validates a definition given as JSON, or as YAML with the
// same keys.
func Parse(doc []byte) (*Definition, error) {
	if len(doc) > MaxDocumentSize {
		return nil, fmt.Errorf("table definition: document is %d bytes, larger than DMS's 2 MB limit", len(doc))
	}
	trimmed := bytes.TrimSpace(doc)
	if len(trimmed) == 0 {
		return nil, errors.New("table definition: document is empty")
	}
	if trimmed[0] != '{' {
		var v any
		if err := yaml.Unmarshal(trimmed, &v); err != nil {
			return nil, fmt.Errorf("table definition: neither JSON nor YAML: %w", err)
		}
		j, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("table definition: %w", err)
		}
		trimmed = j
	}
	var rd rawDef
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&rd); err != nil {
		return nil, fmt.Errorf("table definition: invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("table definition: trailing data after the JSON object")
	}
	d := &Definition{byName: map[string]*Table{}}
	var err error
	if d.TableCount, err = rd.TableCount.int("TableCount"); err != nil {
		return nil, fmt.Errorf("table definition: %w", err)
	}
	if len(rd.Tables) == 0 {
		return nil, errors.New("table definition: Tables is missing or empty")
	}
	if rd.TableCount.set && d.TableCount != len(rd.Tables) {
		return nil, fmt.Errorf("table definition: TableCount is %d but Tables holds %d tables", d.TableCount, len(rd.Tables))
	}
	d.TableCount = len(rd.Tables)
	for i, raw := range rd.Tables {
		t, err := parseTable(i, raw)
		if err != nil {
			return nil, err
		}
		key := t.Owner + "\x00" + t.Name
		if _, dup := d.byName[key]; dup {
			return nil, fmt.Errorf("table definition: table %s is defined twice", t.QualifiedName())
		}
		d.byName[key] = t
		d.Tables = append(d.Tables, t)
	}
	return d, nil
}

func parseTable(i int, raw json.RawMessage) (*Table, error) {
	var rt rawTable
	if err := json.Unmarshal(raw, &rt); err != nil {
		return nil, fmt.Errorf("table definition: Tables[%d]: %w", i, err)
	}
	where := fmt.Sprintf("table definition: Tables[%d]", i)
	if rt.TableName != "" {
		where = fmt.Sprintf("table definition: table %s.%s", rt.TableOwner, rt.TableName)
	}
	switch {
	case rt.TableName == "":
		return nil, fmt.Errorf("%s: TableName is missing", where)
	case rt.TableOwner == "":
		return nil, fmt.Errorf("%s: TableOwner is missing", where)
	case rt.TablePath == "":
		return nil, fmt.Errorf("%s: TablePath is missing", where)
	case len(rt.TableColumns) == 0:
		return nil, fmt.Errorf("%s: TableColumns is missing or empty", where)
	}
	t := &Table{Name: rt.TableName, Path: rt.TablePath, Owner: rt.TableOwner, Raw: append(json.RawMessage(nil), raw...)}
	total, err := rt.TableColumnsTotal.int("TableColumnsTotal")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if !rt.TableColumnsTotal.set {
		return nil, fmt.Errorf("%s: TableColumnsTotal is missing", where)
	}
	if total != len(rt.TableColumns) {
		return nil, fmt.Errorf("%s: TableColumnsTotal is %d but TableColumns holds %d columns", where, total, len(rt.TableColumns))
	}
	t.ColumnsTotal = total
	seen := map[string]bool{}
	for ci, rc := range rt.TableColumns {
		c, err := parseColumn(ci, rc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("%s: column %s is defined twice", where, c.Name)
		}
		seen[c.Name] = true
		if c.IsPK {
			t.PrimaryKey = append(t.PrimaryKey, ci)
		}
		t.Columns = append(t.Columns, c)
	}
	return t, nil
}

func parseColumn(i int, rc rawColumn) (Column, error) {
	if rc.ColumnName == nil || *rc.ColumnName == "" {
		return Column{}, fmt.Errorf("TableColumns[%d]: ColumnName is missing", i)
	}
	c := Column{Name: *rc.ColumnName, Index: i}
	fail := func(format string, args ...any) (Column, error) {
		return Column{}, fmt.Errorf("column %s: "+format, append([]any{c.Name}, args...)...)
	}
	if rc.ColumnType == nil || *rc.ColumnType == "" {
		return fail("ColumnType is missing")
	}
	c.TypeName = *rc.ColumnType
	t, ok := ParseType(c.TypeName)
	if !ok {
		return fail("ColumnType %q is not a DMS type (BYTE, DATE, TIME, DATETIME, INT1-8, NUMERIC, REAL4, REAL8, STRING, UINT1-8, BLOB, CLOB, BOOLEAN)", c.TypeName)
	}
	c.Type = t
	var err error
	if c.Length, err = rc.ColumnLength.int("ColumnLength"); err != nil {
		return fail("%v", err)
	}
	if c.Length > MaxColumnLength {
		return fail("ColumnLength %d is larger than DMS's maximum %d", c.Length, MaxColumnLength)
	}
	if c.Nullable, err = rc.ColumnNullable.bool("ColumnNullable"); err != nil {
		return fail("%v", err)
	}
	if c.IsPK, err = rc.ColumnIsPk.bool("ColumnIsPk"); err != nil {
		return fail("%v", err)
	}
	if c.Precision, err = rc.ColumnPrecision.int("ColumnPrecision"); err != nil {
		return fail("%v", err)
	}
	if c.Scale, err = rc.ColumnScale.int("ColumnScale"); err != nil {
		return fail("%v", err)
	}
	switch t {
	case TypeNumeric:
		if !rc.ColumnPrecision.set || c.Precision == 0 {
			return fail("NUMERIC needs ColumnPrecision (1 to 38)")
		}
		if c.Precision > 38 {
			return fail("ColumnPrecision %d is larger than 38", c.Precision)
		}
		if c.Scale > 31 {
			return fail("ColumnScale %d is larger than 31", c.Scale)
		}
		if c.Scale > c.Precision {
			return fail("ColumnScale %d is larger than ColumnPrecision %d", c.Scale, c.Precision)
		}
	case TypeDateTime, TypeTime:
		// Fractional-second digits, at most 9 (nanoseconds) as DMS
		// documents for DATETIME; TIME renders its fraction the same way.
		if c.Scale > 9 {
			return fail("ColumnScale %d is larger than 9 for %s", c.Scale, t)
		}
	}
	if rc.ColumnDateFormat != "" {
		if t != TypeDate && t != TypeTime && t != TypeDateTime {
			return fail("ColumnDateFormat is only valid for DATE, TIME and DATETIME columns")
		}
		valid := false
		for _, f := range DateFormats {
			if f == rc.ColumnDateFormat {
				valid = true
			}
		}
		if !valid {
			return fail("ColumnDateFormat %q is not one of DMS's formats (%s)", rc.ColumnDateFormat, strings.Join(DateFormats, ", "))
		}
		c.DateFormat = rc.ColumnDateFormat
	}
	return c, nil
}

// Load reads a definition from ref: inline JSON when ref starts with '{',
// otherwise a file path.
func Load(ref string) (*Definition, error) {
	s := strings.TrimSpace(ref)
	if s == "" {
		return nil, errors.New("table definition: empty reference")
	}
	if strings.HasPrefix(s, "{") {
		return Parse([]byte(s))
	}
	st, err := os.Stat(s)
	if err != nil {
		return nil, fmt.Errorf("table definition: %w%s", err, RelativeTo(s, err))
	}
	if st.Size() > MaxDocumentSize {
		return nil, fmt.Errorf("table definition %s: file is %d bytes, larger than DMS's 2 MB limit", s, st.Size())
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return nil, fmt.Errorf("table definition: %w", err)
	}
	d, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return d, nil
}

// RelativeTo says, when err is a file not found at the relative path p,
// which working directory p was read from: "" otherwise.
func RelativeTo(p string, err error) string {
	if !errors.Is(err, fs.ErrNotExist) || filepath.IsAbs(p) {
		return ""
	}
	wd, werr := os.Getwd()
	if werr != nil {
		return ""
	}
	return " (relative to the working directory " + wd + ")"
}

// FromAny builds a definition from a decoded configuration value: a string
// (a file path or inline JSON) or an object with the definition's keys.
func FromAny(v any) (*Definition, error) {
	switch x := v.(type) {
	case string:
		return Load(x)
	case nil:
		return nil, errors.New("table definition: missing")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("table definition: %w", err)
		}
		return Parse(b)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
