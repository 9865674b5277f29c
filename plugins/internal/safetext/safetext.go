// Package safetext writes text taken from data (object keys, file names)
// into log lines and error texts without letting it forge a log line or
// drive a terminal.
package safetext

import (
	"strconv"
	"unicode/utf8"
)

// Quote returns s as it is when it is valid UTF-8 made only of printable
// characters (strconv.IsPrint: letters, marks, numbers, punctuation,
// symbols and the ASCII space), and otherwise s quoted as a Go string, its
// line breaks, escapes, other control and format characters (bidirectional
// overrides among them) and invalid bytes written as \n, \x1b, \u202e, ...
// A key such as "cdc/0001.csv" reads as before; one holding a line break
// stays on one line and says, unambiguously, which key it is.
func Quote(s string) string {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 || !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
		i += n
	}
	return s
}
