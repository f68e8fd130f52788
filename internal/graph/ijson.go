package graph

import "strconv"

// Values every reader can parse. A stored value is exported as it was
// accepted, and customers read the export with whatever JSON library they
// have, so ParseObject accepts only I-JSON (RFC 7493): numbers a float64
// holds, and strings of Unicode characters.
//
// MaxNumberLen bounds the characters of one number (digits, sign, point
// and exponent together). 1,000 is the default limit of Jackson
// (StreamReadConstraints.maxNumberLength), the strictest of the common
// readers; it is far below the 4,300 digits of Python's int limit
// (sys.get_int_max_str_digits) and above anything a float64 or int64 needs
// (at most 24 characters).
const MaxNumberLen = 1000

// checkNumber says why a number token (valid JSON) is not I-JSON, or "".
// A number that a float64 cannot hold (beyond ±1.7976931348623157e308) is
// refused: Go's encoding/json fails on it and other readers turn it into
// Infinity, which is not JSON. A number too small for a float64 reads as
// zero everywhere and is accepted.
func checkNumber(tok []byte) string {
	if len(tok) > MaxNumberLen {
		return "is a number of " + strconv.Itoa(len(tok)) + " characters, more than the limit of " + strconv.Itoa(MaxNumberLen) + " that every JSON reader accepts: send it as a string"
	}
	// Without an exponent, a number of at most 308 integer digits is below
	// 1e308 and fits: most numbers need no parse.
	exp := false
	for _, c := range tok {
		if c == 'e' || c == 'E' {
			exp = true
			break
		}
	}
	if !exp && len(tok) <= 308 {
		return ""
	}
	if _, err := strconv.ParseFloat(string(tok), 64); err != nil {
		return "is the number " + shorten(string(tok)) + ", beyond the range of a 64-bit float (about ±1.8e308): Go's JSON reader refuses it and others read Infinity, which is not JSON; send it as a string"
	}
	return ""
}

// loneSurrogate returns the first \uXXXX escape of a string token that
// is a UTF-16 surrogate without its pair (a high surrogate not followed by
// a low one, or a low one alone), or "". Such a string has no Unicode
// text: readers refuse it or replace it, so it is refused. (Raw bytes of
// a surrogate are invalid UTF-8, refused before.)
func loneSurrogate(tok []byte) string {
	for i := 0; i < len(tok); i++ {
		if tok[i] != '\\' {
			continue
		}
		if i+1 < len(tok) && tok[i+1] != 'u' {
			i++ // a two-byte escape such as \" or \\
			continue
		}
		r, ok := hex4(tok, i+2)
		if !ok {
			return "" // not a valid escape: the JSON syntax check reports it
		}
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return string(tok[i : i+6])
		case r >= 0xd800 && r <= 0xdbff:
			if i+7 < len(tok) && tok[i+6] == '\\' && tok[i+7] == 'u' {
				if lo, ok := hex4(tok, i+8); ok && lo >= 0xdc00 && lo <= 0xdfff {
					i += 11
					continue
				}
			}
			return string(tok[i : i+6])
		}
		i += 5
	}
	return ""
}

// hex4 reads the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// loneSurrogateError is decodeString's error for a string with a lone
// surrogate escape (Esc, such as \ud800).
type loneSurrogateError struct{ Esc string }

func (e *loneSurrogateError) Error() string {
	return "holds " + e.Esc + ", half of a UTF-16 surrogate pair without the other half: it is not a Unicode character, and JSON readers refuse or alter it (I-JSON, RFC 7493); send valid UTF-8 text, or both halves of the pair"
}

// shorten renders a token for an error message, shortened.
func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
