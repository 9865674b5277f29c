// Package dmscsv reads CSV the way an AWS DMS S3 source endpoint does: rows
// split on CsvRowDelimiter, fields on CsvDelimiter, RFC 4180 quoting when
// Rfc4180 is true (quotes are plain data when it is false), and CsvNullValue
// deciding what NULL is. rows.go splits a byte stream into rows (used by the
// input); fields.go splits a row into fields (used by the processor).
//
// The package does not import Benthos.
package dmscsv

import (
	"errors"
	"fmt"
	"strings"
)

// Settings are the DMS S3 source endpoint's CSV settings.
type Settings struct {
	// Delimiter is CsvDelimiter: one or more bytes, default ",".
	Delimiter string
	// RowDelimiter is CsvRowDelimiter: "\n" (default) or "\r\n". With "\n",
	// a row that ends in "\r\n" is accepted too and the "\r" is dropped.
	RowDelimiter string
	// NullValue is CsvNullValue. When NullValueSet is false an empty field is
	// NULL; when it is true a field equal to NullValue is NULL and an empty
	// field is an empty string.
	NullValue    string
	NullValueSet bool
	// RFC4180: quoted fields may hold delimiters, row delimiters and doubled
	// quotes. When false, quotes are data and a delimiter always ends a field.
	RFC4180 bool
}

// DefaultSettings are DMS's defaults.
func DefaultSettings() Settings {
	return Settings{Delimiter: ",", RowDelimiter: "\n", RFC4180: true}
}

// Unescape turns the escape sequences DMS stores in delimiter settings
// (`\n`, `\r`, `\t`, `\\`) into the bytes they name, so that both the
// typed-in "\r\n" (4 characters, as the DMS API stores it) and a real CR LF
// are accepted.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	r := strings.NewReplacer(`\r`, "\r", `\n`, "\n", `\t`, "\t", `\\`, `\`)
	return r.Replace(s)
}

// Validate checks the settings, naming the DMS setting at fault.
func (s Settings) Validate() error {
	if s.Delimiter == "" {
		return errors.New("csv_delimiter must not be empty")
	}
	if s.RowDelimiter != "\n" && s.RowDelimiter != "\r\n" {
		return fmt.Errorf("csv_row_delimiter must be \\n or \\r\\n, got %q", s.RowDelimiter)
	}
	if strings.Contains(s.Delimiter, "\n") || strings.Contains(s.Delimiter, "\r") {
		return fmt.Errorf("csv_delimiter %q must not contain a row delimiter", s.Delimiter)
	}
	if s.RFC4180 && strings.Contains(s.Delimiter, `"`) {
		return fmt.Errorf("csv_delimiter %q must not contain a double quote when rfc4180 is true", s.Delimiter)
	}
	// A marker holding the delimiter or a row delimiter never arrives as one
	// unquoted field: every NULL would silently read as text.
	if s.NullValueSet && (strings.Contains(s.NullValue, s.Delimiter) || strings.ContainsAny(s.NullValue, "\r\n")) {
		return fmt.Errorf("csv_null_value %q can never match a field: it contains csv_delimiter %q or a row delimiter", s.NullValue, s.Delimiter)
	}
	// With rfc4180 a field starting with a quote is quoted, and a quoted
	// field is never NULL.
	if s.NullValueSet && s.RFC4180 && strings.HasPrefix(s.NullValue, `"`) {
		return fmt.Errorf("csv_null_value %q can never match a field: with rfc4180 true a field starting with a double quote is a quoted field, never NULL", s.NullValue)
	}
	return nil
}
