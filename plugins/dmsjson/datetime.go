package dmsjson

// Date and time parsing and rendering (see the package comment).

type civil struct {
	year, month, day int
	hour, min, sec   int
	frac             [9]byte // fraction digits, '0'-padded
	fracLen          int
	hasDate, hasTime bool
}

var zeroFrac = [9]byte{'0', '0', '0', '0', '0', '0', '0', '0', '0'}

func num(v []byte, i, n int) (int, bool) {
	if i+n > len(v) {
		return 0, false
	}
	x := 0
	for k := i; k < i+n; k++ {
		d := v[k] - '0'
		if d > 9 {
			return 0, false
		}
		x = x*10 + int(d)
	}
	return x, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseDate reads the date at the start of v in layout l and returns the
// index after it.
func parseDate(v []byte, l dateLayout, t *civil) (int, bool) {
	var ok1, ok2, ok3 bool
	var end int
	switch l {
	case layoutISO, layoutSlash:
		sep := byte('-')
		if l == layoutSlash {
			sep = '/'
		}
		if len(v) < 10 || v[4] != sep || v[7] != sep {
			return 0, false
		}
		t.year, ok1 = num(v, 0, 4)
		t.month, ok2 = num(v, 5, 2)
		t.day, ok3 = num(v, 8, 2)
		end = 10
	case layoutUS:
		if len(v) < 10 || v[2] != '/' || v[5] != '/' {
			return 0, false
		}
		t.month, ok1 = num(v, 0, 2)
		t.day, ok2 = num(v, 3, 2)
		t.year, ok3 = num(v, 6, 4)
		end = 10
	case layoutCompact:
		t.year, ok1 = num(v, 0, 4)
		t.month, ok2 = num(v, 4, 2)
		t.day, ok3 = num(v, 6, 2)
		end = 8
	}
	if !ok1 || !ok2 || !ok3 {
		return 0, false
	}
	t.hasDate = true
	return end, true
}

// parseClock reads HH:MM:SS[.f{1,9}] from v[i:] and returns the index after.
func parseClock(v []byte, i int, t *civil) (int, bool) {
	if i+8 > len(v) || v[i+2] != ':' || v[i+5] != ':' {
		return 0, false
	}
	var ok1, ok2, ok3 bool
	t.hour, ok1 = num(v, i, 2)
	t.min, ok2 = num(v, i+3, 2)
	t.sec, ok3 = num(v, i+6, 2)
	if !ok1 || !ok2 || !ok3 {
		return 0, false
	}
	i += 8
	t.frac = zeroFrac
	t.fracLen = 0
	if i < len(v) && v[i] == '.' {
		i++
		for i < len(v) && v[i]-'0' <= 9 {
			if t.fracLen == 9 {
				return 0, false
			}
			t.frac[t.fracLen] = v[i]
			t.fracLen++
			i++
		}
		if t.fracLen == 0 {
			return 0, false
		}
	}
	t.hasTime = true
	return i, true
}

// parse parses "<date>[( |T)<clock>][Z]", or a bare clock when
// clockOnly is allowed.
func (c *Column) parse(v []byte, clockOnly bool) (civil, string) {
	t := civil{frac: zeroFrac}
	i, ok := parseDate(v, c.layout, &t)
	if !ok {
		if clockOnly {
			if j, ok := parseClock(v, 0, &t); ok {
				if j < len(v) && v[j] == 'Z' {
					j++
				}
				if j == len(v) {
					return t, c.checkRanges(&t)
				}
			}
		}
		return t, "not in the " + c.layoutName() + " form"
	}
	if i < len(v) {
		if v[i] != ' ' && v[i] != 'T' {
			return t, "not in the " + c.layoutName() + " form"
		}
		if i, ok = parseClock(v, i+1, &t); !ok {
			return t, "not in the " + c.layoutName() + " form"
		}
		if i < len(v) && v[i] == 'Z' {
			i++
		}
		if i != len(v) {
			return t, "not in the " + c.layoutName() + " form"
		}
	}
	return t, c.checkRanges(&t)
}

func (c *Column) checkRanges(t *civil) string {
	if t.hasDate {
		if t.year < 1 || t.month < 1 || t.month > 12 {
			return "month or year out of range"
		}
		if t.day < 1 || t.day > daysIn(t.year, t.month) {
			return "day out of range for the month"
		}
	}
	if t.hasTime && (t.hour > 23 || t.min > 59 || t.sec > 59) {
		return "time of day out of range"
	}
	return ""
}

func (c *Column) layoutName() string {
	d := "YYYY-MM-DD"
	switch c.layout {
	case layoutSlash:
		d = "YYYY/MM/DD"
	case layoutUS:
		d = "MM/DD/YYYY"
	case layoutCompact:
		d = "YYYYMMDD"
	}
	return d + "[ HH:MM:SS[.fffffffff]]"
}

func app2(dst []byte, x int) []byte { return append(dst, byte('0'+x/10), byte('0'+x%10)) }

func appDate(dst []byte, t *civil) []byte {
	dst = append(dst, byte('0'+t.year/1000), byte('0'+t.year/100%10), byte('0'+t.year/10%10), byte('0'+t.year%10), '-')
	dst = app2(dst, t.month)
	dst = append(dst, '-')
	return app2(dst, t.day)
}

func appClock(dst []byte, t *civil, scale int) []byte {
	dst = app2(dst, t.hour)
	dst = append(dst, ':')
	dst = app2(dst, t.min)
	dst = append(dst, ':')
	dst = app2(dst, t.sec)
	if scale > 9 {
		scale = 9
	}
	for k := 0; k < scale; k++ {
		if t.frac[k] != '0' {
			dst = append(dst, '.')
			return append(dst, t.frac[:scale]...)
		}
	}
	return dst
}

func (c *Column) appendDate(dst, v []byte) ([]byte, error) {
	t, msg := c.parse(v, false)
	if msg != "" {
		return dst, fail(ReasonBadValue, "%s", msg)
	}
	if t.hasTime && (t.hour|t.min|t.sec != 0 || t.frac != zeroFrac) {
		return dst, fail(ReasonBadValue, "has a time of day; a DATE holds only the date")
	}
	dst = append(dst, '"')
	dst = appDate(dst, &t)
	return append(dst, '"'), nil
}

func (c *Column) appendTime(dst, v []byte) ([]byte, error) {
	t, msg := c.parse(v, true)
	if msg == "" && !t.hasTime {
		msg = "has no time of day"
	}
	if msg != "" {
		return dst, fail(ReasonBadValue, "%s (or HH:MM:SS[.fffffffff])", msg)
	}
	dst = append(dst, '"')
	dst = appClock(dst, &t, c.Scale)
	return append(dst, '"'), nil
}

func (c *Column) appendDateTime(dst, v []byte) ([]byte, error) {
	t, msg := c.parse(v, false)
	if msg != "" {
		return dst, fail(ReasonBadValue, "%s", msg)
	}
	dst = append(dst, '"')
	dst = appDate(dst, &t)
	dst = append(dst, 'T')
	dst = appClock(dst, &t, c.Scale)
	return append(dst, 'Z', '"'), nil
}

// fastDate checks the 10-character date at the start of v in the layouts
// YYYY-MM-dd, YYYY/MM/dd and MM/dd/YYYY, and returns where its year, month
// and day digits are. ok is false for anything else, including dates out of
// range (the general path words the error).
func (c *Column) fastDate(v []byte) (y, m, d int, ok bool) {
	if len(v) < 10 {
		return 0, 0, 0, false
	}
	var sep byte
	switch c.layout {
	case layoutISO:
		y, m, d, sep = 0, 5, 8, '-'
	case layoutSlash:
		y, m, d, sep = 0, 5, 8, '/'
	case layoutUS:
		y, m, d, sep = 6, 0, 3, '/'
		if v[2] != sep || v[5] != sep {
			return 0, 0, 0, false
		}
	default:
		return 0, 0, 0, false
	}
	if c.layout != layoutUS && (v[4] != sep || v[7] != sep) {
		return 0, 0, 0, false
	}
	d0, d1, d2, d3 := v[y]-'0', v[y+1]-'0', v[y+2]-'0', v[y+3]-'0'
	m0, m1, e0, e1 := v[m]-'0', v[m+1]-'0', v[d]-'0', v[d+1]-'0'
	if d0 > 9 || d1 > 9 || d2 > 9 || d3 > 9 || m0 > 9 || m1 > 9 || e0 > 9 || e1 > 9 {
		return 0, 0, 0, false
	}
	year := int(d0)*1000 + int(d1)*100 + int(d2)*10 + int(d3)
	month, day := int(m0)*10+int(m1), int(e0)*10+int(e1)
	if year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// fastClock checks "HH:MM:SS[.f{1,9}][Z]" filling v[i:] to its end and
// returns where the fraction digits are (fs == fe when there are none).
func fastClock(v []byte, i int) (fs, fe int, ok bool) {
	if len(v)-i < 8 || v[i+2] != ':' || v[i+5] != ':' {
		return 0, 0, false
	}
	h0, h1, m0, m1, s0, s1 := v[i]-'0', v[i+1]-'0', v[i+3]-'0', v[i+4]-'0', v[i+6]-'0', v[i+7]-'0'
	if h0 > 9 || h1 > 9 || m0 > 9 || m1 > 9 || s0 > 9 || s1 > 9 ||
		h0*10+h1 > 23 || m0*10+m1 > 59 || s0*10+s1 > 59 {
		return 0, 0, false
	}
	i += 8
	fs, fe = i, i
	if i < len(v) && v[i] == '.' {
		i++
		fs = i
		for i < len(v) && v[i]-'0' <= 9 {
			i++
		}
		fe = i
		if fe == fs || fe-fs > 9 {
			return 0, 0, false
		}
	}
	if i < len(v) && v[i] == 'Z' {
		i++
	}
	return fs, fe, i == len(v)
}

// appendFraction writes the fraction digits v[fs:fe] as appClock does:
// truncated or zero-padded to scale (at most 9) digits, and nothing when
// those are all zero.
func appendFraction(dst, v []byte, fs, fe, scale int) []byte {
	scale = min(scale, 9)
	n := min(fe-fs, scale)
	for k := fs; k < fs+n; k++ {
		if v[k] != '0' {
			dst = append(dst, '.')
			dst = append(dst, v[fs:fs+n]...)
			for k := n; k < scale; k++ {
				dst = append(dst, '0')
			}
			return dst
		}
	}
	return dst
}

// appendDateTimeFast renders the common DATETIME shape, a 10-character date
// (YYYY-MM-dd, YYYY/MM/dd or MM/dd/YYYY layout), " " or "T", and
// "HH:MM:SS[.f{1,9}][Z]", straight from the input digits. It reports false,
// having written nothing, for any other input (a date alone, the compact
// layout, out-of-range fields, ...), which appendDateTime then renders or
// rejects. For the inputs it accepts its output is appendDateTime's
// (TestDateTimeFastPathMatches).
func (c *Column) appendDateTimeFast(dst, v []byte) ([]byte, bool) {
	if len(v) < 19 || len(v) > 30 || (v[10] != ' ' && v[10] != 'T') {
		return dst, false
	}
	y, m, d, ok := c.fastDate(v)
	if !ok {
		return dst, false
	}
	fs, fe, ok := fastClock(v, 11)
	if !ok {
		return dst, false
	}
	dst = append(dst, '"', v[y], v[y+1], v[y+2], v[y+3], '-', v[m], v[m+1], '-', v[d], v[d+1], 'T')
	dst = append(dst, v[11:19]...)
	dst = appendFraction(dst, v, fs, fe, c.Scale)
	return append(dst, 'Z', '"'), true
}

// appendDateFast renders a DATE given as a date alone (layouts as for
// appendDateTimeFast); false, having written nothing, for anything else
// (TestDateAndTimeFastPathsMatch).
func (c *Column) appendDateFast(dst, v []byte) ([]byte, bool) {
	if len(v) != 10 {
		return dst, false
	}
	y, m, d, ok := c.fastDate(v)
	if !ok {
		return dst, false
	}
	return append(dst, '"', v[y], v[y+1], v[y+2], v[y+3], '-', v[m], v[m+1], '-', v[d], v[d+1], '"'), true
}

// appendTimeFast renders a TIME given as a bare "HH:MM:SS[.f{1,9}][Z]". No
// date layout reads such text as a date (its third character is ':'), so
// the general path would read it as a bare clock too. False, having written
// nothing, for anything else (TestDateAndTimeFastPathsMatch).
func appendTimeFast(dst, v []byte, scale int) ([]byte, bool) {
	fs, fe, ok := fastClock(v, 0)
	if !ok {
		return dst, false
	}
	dst = append(dst, '"')
	dst = append(dst, v[:8]...)
	dst = appendFraction(dst, v, fs, fe, scale)
	return append(dst, '"'), true
}
