package csvjson

// indent appends src, compact JSON, indented with tabs and ": " after keys
// (message_format json). Empty objects and arrays stay {} and [].
func indent(dst, src []byte) []byte {
	depth := 0
	inStr := false
	newline := func() {
		dst = append(dst, '\n')
		for range depth {
			dst = append(dst, '\t')
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inStr {
			dst = append(dst, c)
			switch c {
			case '\\':
				i++
				dst = append(dst, src[i])
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
			dst = append(dst, c)
		case '{', '[':
			dst = append(dst, c)
			if i+1 < len(src) && (src[i+1] == '}' || src[i+1] == ']') {
				dst = append(dst, src[i+1])
				i++
				continue
			}
			depth++
			newline()
		case '}', ']':
			depth--
			newline()
			dst = append(dst, c)
		case ',':
			dst = append(dst, c)
			newline()
		case ':':
			dst = append(dst, ':', ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
