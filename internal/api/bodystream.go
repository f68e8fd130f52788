package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// streamTarget is a struct that a body decodes into as it streams: the
// elements of its slice fields (a sync upload's entities and
// relationships) are decoded one at a time, so the body is never held
// whole beside them.
type streamTarget struct {
	v      reflect.Value // the struct
	fields []streamField
}

type streamField struct {
	name  string
	index int
	slice bool // decoded element by element
}

// streamTargetOf returns v as a streamTarget, or nil when v is not a
// pointer to a struct of plainly tagged exported fields with a slice among
// them (such bodies are read whole, then decoded).
func streamTargetOf(v any) *streamTarget {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil
	}
	st := &streamTarget{v: rv.Elem()}
	t := st.v.Type()
	unmarshaler := reflect.TypeFor[json.Unmarshaler]()
	anySlice := false
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return nil
		}
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		if opts != "" && opts != "omitempty" {
			return nil
		}
		if name == "" {
			name = f.Name
		}
		slice := f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() != reflect.Uint8 &&
			!reflect.PointerTo(f.Type).Implements(unmarshaler)
		anySlice = anySlice || slice
		st.fields = append(st.fields, streamField{name: name, index: i, slice: slice})
	}
	if !anySlice {
		return nil
	}
	return st
}

// field returns the field a key names, as encoding/json matches it: the
// exact name first, else one equal under case folding.
func (st *streamTarget) field(key string) *streamField {
	for i := range st.fields {
		if st.fields[i].name == key {
			return &st.fields[i]
		}
	}
	for i := range st.fields {
		if strings.EqualFold(st.fields[i].name, key) {
			return &st.fields[i]
		}
	}
	return nil
}

// decode decodes one JSON value from dec into st as encoding/json would
// unmarshal it, and checks that nothing follows. empty reports a body of
// nothing but white space.
func (st *streamTarget) decode(dec *json.Decoder) (empty bool, err error) {
	tok, err := dec.Token()
	switch {
	case err == io.EOF:
		return true, nil
	case err != nil:
		return false, err
	case tok == nil:
		// null leaves the struct as it is.
	case tok != json.Delim('{'):
		return false, &json.UnmarshalTypeError{Value: tokenKind(tok), Type: st.v.Type(), Offset: dec.InputOffset()}
	default:
		if err := st.decodeFields(dec); err != nil {
			return false, err
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("another value follows the first at byte %d; send one JSON object", dec.InputOffset())
		}
		return false, err
	}
	return false, nil
}

// decodeFields decodes the members of an object whose '{' was read, and
// its '}'.
func (st *streamTarget) decodeFields(dec *json.Decoder) error {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		f := st.field(key)
		if f == nil {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		fv := st.v.Field(f.index)
		if !f.slice {
			if err := dec.Decode(fv.Addr().Interface()); err != nil {
				return inField(err, key)
			}
			continue
		}
		tok, err = dec.Token()
		switch {
		case err != nil:
			return err
		case tok == nil:
			fv.SetZero()
		case tok != json.Delim('['):
			return &json.UnmarshalTypeError{Value: tokenKind(tok), Type: fv.Type(), Field: key, Offset: dec.InputOffset()}
		default:
			s := reflect.MakeSlice(fv.Type(), 0, 0)
			for dec.More() {
				e := reflect.New(fv.Type().Elem())
				if err := dec.Decode(e.Interface()); err != nil {
					return inField(err, key)
				}
				s = reflect.Append(s, e.Elem())
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			fv.Set(s)
		}
	}
	_, err := dec.Token()
	return err
}

// inField names field in a type error found inside its value.
func inField(err error, field string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			te.Field = field
		} else {
			te.Field = field + "." + te.Field
		}
	}
	return err
}

// tokenKind names a JSON token's kind as encoding/json's type errors do.
func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		if tok == json.Delim('[') {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case bool:
		return "bool"
	}
	return "number"
}
