package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"
)

// field is one member of a flat JSON object: its name, the value as it was
// written, and the value's canonical encoding.
type field struct {
	name  string
	raw   []byte
	canon []byte
}

// fieldPool recycles scanFlat's member slices (getFields, putFields).
var fieldPool sync.Pool

func getFields() []field {
	if f, ok := fieldPool.Get().(*[]field); ok {
		return *f
	}
	return nil
}

// putFields recycles fs unless it is large; the members are cleared so the
// pool holds no input.
func putFields(fs []field) {
	if fs == nil || cap(fs) > maxPreallocFields {
		return
	}
	clear(fs[:cap(fs)])
	fs = fs[:0]
	fieldPool.Put(&fs)
}

// scanFlat parses a JSON object whose members are strings, numbers,
// booleans, null or arrays of those, in one pass without reflection. It is
// the hot path of every upload; encoding/json is used only for the rare
// string with escapes or non-ASCII bytes. Errors are *InputError naming the
// member. It reads stored objects, which it takes as they were stored:
// uploads are read by scanUpload.
func scanFlat(out []field, b []byte) ([]field, error) {
	return scanObject(out, b, false)
}

// scanUpload is scanFlat for an upload: its names and values must also be
// I-JSON (see checkNumber and loneSurrogate).
func scanUpload(out []field, b []byte) ([]field, error) {
	return scanObject(out, b, true)
}

func scanObject(out []field, b []byte, ijson bool) ([]field, error) {
	s := scanner{b: b, ijson: ijson}
	s.ws()
	if !s.eat('{') {
		return nil, inputErr("", "a graph object must be a JSON object")
	}
	// Room for every member up front (a ':' per member, more in strings),
	// and the member names as slices of one copy of the input rather than
	// a string each: the allocations were most of the cost.
	out = slices.Grow(out[:0], min(bytes.Count(b, []byte{':'}), maxPreallocFields))
	var src string
	s.ws()
	if s.eat('}') {
		return out, s.end()
	}
	for {
		s.ws()
		if s.peek() != '"' {
			return nil, s.syntax("a member name in double quotes")
		}
		start := s.i
		nameRaw, err := s.str()
		if err != nil {
			return nil, err
		}
		var name string
		if plainString(nameRaw) {
			if src == "" {
				src = string(b)
			}
			name = src[start+1 : s.i-1]
		} else if name, err = s.decodeString(nameRaw); errors.Is(err, errNotUTF8) {
			return nil, inputErr("", "a member name is not valid UTF-8")
		} else if ls, ok := errors.AsType[*loneSurrogateError](err); ok {
			// The name as written: decoded, it would not say which.
			return nil, inputErr(shorten(string(nameRaw)), "member name %v", ls)
		} else if err != nil {
			return nil, s.syntax("a valid member name")
		}
		s.ws()
		if !s.eat(':') {
			return nil, s.syntax("':' after " + quote(name))
		}
		s.ws()
		start = s.i
		if isDropped(name) {
			if err := s.skip(0); err != nil {
				return nil, err
			}
		} else {
			canon, err := s.value(name, -1)
			if err != nil {
				return nil, err
			}
			out = append(out, field{name: name, raw: b[start:s.i], canon: canon})
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return out, s.end()
		}
		return nil, s.syntax("',' or '}'")
	}
}

type scanner struct {
	b []byte
	i int
	// ijson refuses what is not I-JSON: numbers beyond a float64 and
	// strings with lone surrogates.
	ijson bool
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.peek() == c && s.i < len(s.b) {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return s.syntax("the end of the object")
	}
	return nil
}

func (s *scanner) syntax(want string) error {
	if s.i >= len(s.b) {
		return inputErr("", "invalid JSON: unexpected end of input, expected %s", want)
	}
	return inputErr("", "invalid JSON at byte %d: expected %s", s.i, want)
}

// str consumes a string token and returns it with its quotes.
func (s *scanner) str() ([]byte, error) {
	start := s.i
	s.i++ // opening quote
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start:s.i], nil
		case c == '\\':
			s.i += 2
		case c < 0x20:
			return nil, s.syntax("no raw control character inside a string")
		default:
			s.i++
		}
	}
	return nil, s.syntax("a closing '\"'")
}

// errNotUTF8 is returned by decodeString for a string that is not UTF-8.
var errNotUTF8 = errors.New("not valid UTF-8")

// decodeString decodes a string token (see plainString for when its
// canonical encoding is the token itself).
func decodeString(tok []byte) (string, error) {
	inner := tok[1 : len(tok)-1]
	if plainString(tok) {
		return string(inner), nil
	}
	// encoding/json would turn invalid bytes, and lone surrogates, into
	// U+FFFD, making two different keys one.
	if !utf8.Valid(inner) {
		return "", errNotUTF8
	}
	if esc := loneSurrogate(inner); esc != "" {
		return "", &loneSurrogateError{Esc: esc}
	}
	var v string
	if err := json.Unmarshal(tok, &v); err != nil {
		return "", err
	}
	return v, nil
}

// decodeString is the package's decodeString, which refuses lone
// surrogates, unless the scanner takes stored values as they are: it then
// reads them as encoding/json does (as U+FFFD).
func (s *scanner) decodeString(tok []byte) (string, error) {
	v, err := decodeString(tok)
	if _, ok := errors.AsType[*loneSurrogateError](err); ok && !s.ijson {
		err = json.Unmarshal(tok, &v)
	}
	return v, err
}

// plainString reports whether a string token holds only ASCII without
// escapes: its canonical encoding is then the token itself.
func plainString(tok []byte) bool {
	for _, c := range tok[1 : len(tok)-1] {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// value consumes one value of member name and returns its canonical
// encoding. Arrays are allowed only at the top (item < 0) and may hold
// only scalars; item is the index of an array's item. Numbers and strings
// must be I-JSON (see checkNumber and loneSurrogate).
func (s *scanner) value(name string, item int) ([]byte, error) {
	switch c := s.peek(); {
	case c == '"':
		tok, err := s.str()
		if err != nil {
			return nil, err
		}
		if plainString(tok) {
			return tok, nil
		}
		v, err := s.decodeString(tok)
		if ls, ok := errors.AsType[*loneSurrogateError](err); ok {
			return nil, inputErr(fieldName(name), "%s%v", itemAt(item), ls)
		}
		if err != nil {
			return nil, inputErr(fieldName(name), "invalid string: %v", err)
		}
		return appendString(nil, v), nil
	case c == '{' && name == "_mapping":
		return nil, inputErr("_mapping", "mapped relationships are not supported by j1ds yet; upload a direct relationship with _fromEntityKey and _toEntityKey instead")
	case c == '{':
		return nil, inputErr(fieldName(name), "is a nested object; properties must be flat: a string, number, boolean, null or an array of those")
	case c == '[':
		if item >= 0 {
			return nil, inputErr(fieldName(name), "holds an array inside an array; arrays may hold only strings, numbers, booleans and null")
		}
		return s.array(name)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		tok, err := s.number()
		if err != nil {
			return nil, err
		}
		if s.ijson {
			if why := checkNumber(tok); why != "" {
				return nil, inputErr(fieldName(name), "%s%s", itemAt(item), why)
			}
		}
		return tok, nil
	}
	return nil, s.syntax(fmt.Sprintf("a value for %s", quote(name)))
}

// itemAt names an array's item in an error ("" for a member's value).
func itemAt(item int) string {
	if item < 0 {
		return ""
	}
	return fmt.Sprintf("item %d ", item)
}

func (s *scanner) array(name string) ([]byte, error) {
	s.i++ // [
	out := []byte{'['}
	s.ws()
	if s.eat(']') {
		return append(out, ']'), nil
	}
	for n := 0; ; n++ {
		if n == maxArrayLen {
			return nil, inputErr(fieldName(name), "array has more than %d items", maxArrayLen)
		}
		s.ws()
		switch s.peek() {
		case '{':
			return nil, inputErr(fieldName(name), "item %d is an object; arrays may hold only strings, numbers, booleans and null", n)
		case '[':
			return nil, inputErr(fieldName(name), "item %d is an array; arrays may hold only strings, numbers, booleans and null", n)
		}
		v, err := s.value(name, n)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, v...)
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat(']') {
			return append(out, ']'), nil
		}
		return nil, s.syntax("',' or ']'")
	}
}

func (s *scanner) literal(lit string) ([]byte, error) {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return nil, s.syntax("a value")
	}
	start := s.i
	s.i += len(lit)
	return s.b[start:s.i], nil
}

// number consumes a JSON number: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
func (s *scanner) number() ([]byte, error) {
	start := s.i
	s.eat('-')
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.eat('0') {
		// no more integer digits after a leading zero
	} else if digits() == 0 {
		return nil, s.syntax("a digit")
	}
	if s.eat('.') && digits() == 0 {
		return nil, s.syntax("a digit after '.'")
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if digits() == 0 {
			return nil, s.syntax("a digit in the exponent")
		}
	}
	return s.b[start:s.i], nil
}

// maxSkipDepth bounds the nesting of values that are skipped (_rawData).
const maxSkipDepth = 64

// skip consumes any JSON value, nested or not.
func (s *scanner) skip(depth int) error {
	if depth > maxSkipDepth {
		return inputErr("", "JSON nested deeper than %d levels", maxSkipDepth)
	}
	switch c := s.peek(); c {
	case '{', '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.i++
		s.ws()
		if s.eat(closer) {
			return nil
		}
		for {
			s.ws()
			if c == '{' {
				if s.peek() != '"' {
					return s.syntax("a member name in double quotes")
				}
				if _, err := s.str(); err != nil {
					return err
				}
				s.ws()
				if !s.eat(':') {
					return s.syntax("':'")
				}
				s.ws()
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat(closer) {
				return nil
			}
			return s.syntax(fmt.Sprintf("',' or '%c'", closer))
		}
	case '"':
		start := s.i
		tok, err := s.str()
		if err != nil {
			return err
		}
		// Skipped values are not stored: only their syntax and UTF-8
		// matter, not I-JSON.
		_, err = decodeString(tok)
		if _, ok := errors.AsType[*loneSurrogateError](err); err != nil && !ok {
			return inputErr("", "invalid string at byte %d: %v", start, err)
		}
		return nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		_, err := s.number()
		return err
	}
	_, err := s.value("", 0)
	return err
}

// fieldName renders a member name for an error: metadata names bare, the
// writer's property names quoted.
func fieldName(name string) string {
	if isStoreOwned(name) {
		return name
	}
	return quote(name)
}

// plainStrings reads an array of plain strings (see plainString), such as
// the canonical encoding of a class array; ok is false for anything else.
func plainStrings(v []byte) (out []string, ok bool) {
	s := scanner{b: v}
	if !s.eat('[') {
		return nil, false
	}
	for s.ws(); !s.eat(']'); s.ws() {
		if len(out) > 0 && !s.eat(',') {
			return nil, false
		}
		s.ws()
		if s.peek() != '"' {
			return nil, false
		}
		tok, err := s.str()
		if err != nil || !plainString(tok) {
			return nil, false
		}
		out = append(out, string(tok[1:len(tok)-1]))
	}
	return out, s.i == len(s.b)
}
