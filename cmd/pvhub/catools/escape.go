package catools

// hexDigits are the digits Escape writes after \x.
const hexDigits = "0123456789abcdef"

// Escape returns s with the characters that do not print escaped the way the
// EPICS tools print strings: \a \b \f \n \r \t \v \\ \' \" and \0 for those
// characters, \xNN (lower-case hex) for every other byte outside printable
// ASCII (0x20 to 0x7e). UTF-8 text is escaped byte by byte, as caget does.
func Escape(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '\\' || c == '\'' || c == '"' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return string(appendEscaped(make([]byte, 0, len(s)+8), s))
}

// appendEscaped appends s escaped as Escape describes.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\a':
			b = append(b, `\a`...)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		case '\v':
			b = append(b, `\v`...)
		case '\\':
			b = append(b, `\\`...)
		case '\'':
			b = append(b, `\'`...)
		case '"':
			b = append(b, `\"`...)
		case 0:
			b = append(b, `\0`...)
		default:
			if c >= 0x20 && c <= 0x7e {
				b = append(b, c)
			} else {
				b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
			}
		}
	}
	return b
}

// Unescape undoes Escape the way caput reads its value arguments: \a \b \f \n
// \r \t \v \\ \' \" and \0 stand for those characters, \x followed by one or
// two hex digits for that byte, and a backslash before any other character
// for the character itself. A backslash at the end is dropped, and \x not
// followed by a hex digit stands for nothing. The result may hold NUL bytes;
// callers that store C strings stop at the first.
func Unescape(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		i++
		if i >= len(s) {
			break
		}
		switch c = s[i]; c {
		case 'a':
			b = append(b, '\a')
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'v':
			b = append(b, '\v')
		case '0':
			b = append(b, 0)
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(s) && isHex(s[i+1]) {
				i++
				v = v<<4 | hexValue(s[i])
				n++
			}
			if n > 0 {
				b = append(b, byte(v))
			}
		default: // \\, \', \" and any other character stand for themselves
			b = append(b, c)
		}
	}
	return b
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexValue(c byte) int {
	switch {
	case c <= '9':
		return int(c - '0')
	case c >= 'a':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}
