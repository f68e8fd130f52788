package graph

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Kind says whether a graph object is an entity or a relationship.
type Kind byte

const (
	KindEntity       Kind = 'e'
	KindRelationship Kind = 'r'
)

// String returns the event type used in change records: "entity" or "relationship".
func (k Kind) String() string {
	switch k {
	case KindEntity:
		return "entity"
	case KindRelationship:
		return "relationship"
	}
	return "unknown"
}

// Op is the operation of one change: create, update or delete.
type Op byte

const (
	OpCreate Op = 'c'
	OpUpdate Op = 'u'
	OpDelete Op = 'd'
)

// Limits on what one object may hold. They keep a single upload from using
// unbounded memory and keep every key of the store short.
const (
	MinKeyLen      = 10
	MaxKeyLen      = 1024
	MinTypeLen     = 5
	MaxTypeLen     = 256
	MaxClassLen    = 256
	MaxClasses     = 32
	MaxScopeLen    = 512
	MaxPropNameLen = 512
	MaxProps       = 2048
	MaxObjectBytes = 1 << 20
	maxArrayLen    = 10000
	// maxPreallocFields bounds the members the scanner makes room for
	// before it has seen them.
	maxPreallocFields = 128
	maxIDLen          = 64
	idNamespaceText   = "7f0d2b8e-7c0a-4d59-9b1d-5a3c9b4f1e2a"
)

// idNamespace is the UUIDv5 namespace of object ids. It never changes: ids
// are stable across versions of j1ds.
var idNamespace = uuid.MustParse(idNamespaceText)

// ObjectID returns the deterministic id of the object with the given scope
// and key in an account (UUIDv5 over the three, NUL separated).
func ObjectID(account, scope, key string) string {
	// uuid.NewSHA1(idNamespace, account+NUL+scope+NUL+key), computed
	// without its allocations (it runs for every upload).
	var buf [512]byte
	b := append(buf[:0], idNamespace[:]...)
	b = append(b, account...)
	b = append(b, 0)
	b = append(b, scope...)
	b = append(b, 0)
	b = append(b, key...)
	sum := sha1.Sum(b)
	var u uuid.UUID
	copy(u[:], sum[:])
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}

// Store-owned metadata. Values of these names in an upload are ignored: the
// store sets them.
var storeOwned = map[string]bool{
	"_id": true, "_version": true, "_createdOn": true, "_beginOn": true, "_endOn": true,
	"_deleted": true, "_accountId": true, "_scope": true, "_source": true,
	"_key": true, "_type": true, "_class": true,
	"_fromEntityId": true, "_toEntityId": true, "_fromEntityKey": true, "_toEntityKey": true,
	"_fromEntityScope": true, "_toEntityScope": true,
}

// dropped names are accepted in uploads and not stored. The SDK keeps raw
// provider data in _rawData, which JupiterOne stores apart from the graph.
var dropped = map[string]bool{"_rawData": true}

// isStoreOwned and isDropped test a member name; every such name starts
// with '_', which most property names do not (a map lookup was a tenth of
// parsing).
func isStoreOwned(name string) bool { return len(name) > 0 && name[0] == '_' && storeOwned[name] }

func isDropped(name string) bool { return len(name) > 0 && name[0] == '_' && dropped[name] }

// Prop is one property: a name and its value as canonical JSON.
type Prop struct {
	Name  string
	Value json.RawMessage
}

// Input is a graph object as a writer supplies it: key, type, class, the
// relationship's ends and flat properties. Metadata owned by the store is not
// part of it.
type Input struct {
	Kind   Kind
	Key    string
	Type   string
	Class  []string
	Scope  string
	Source string
	// Ends of a relationship: an id, or a key (in FromScope, default Scope).
	FromID, ToID       string
	FromKey, ToKey     string
	FromScope, ToScope string
	// Props are sorted by name and hold no store-owned metadata.
	Props []Prop
}

// InputError describes an invalid object. Field names the offending
// property; the message says what is allowed.
type InputError struct {
	Field  string
	Reason string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Reason)
}

func inputErr(field, format string, args ...any) error {
	return &InputError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ParseObject decodes one flat graph object as uploaded through the sync API
// or the REST API: {"_key","_type","_class",...properties}, relationships add
// "_fromEntityId"/"_toEntityId" or "_fromEntityKey"/"_toEntityKey". Nested
// objects, arrays of non-scalars and oversized objects are rejected.
func ParseObject(kind Kind, raw []byte) (Input, error) {
	if len(raw) > MaxObjectBytes {
		return Input{}, inputErr("", "object is %d bytes, more than the limit of %d", len(raw), MaxObjectBytes)
	}
	members, err := scanUpload(getFields(), raw)
	defer putFields(members)
	if err != nil {
		return Input{}, err
	}
	var room [8]field
	fields := ownedFields(room[:0])
	in := Input{Kind: kind, Props: make([]Prop, 0, len(members))}
	for _, m := range members {
		if isStoreOwned(m.name) {
			fields = append(fields, m)
			continue
		}
		if err := validatePropName(m.name); err != nil {
			return Input{}, err
		}
		in.Props = append(in.Props, Prop{Name: m.name, Value: m.canon})
	}
	if in.Key, err = stringField(fields, "_key", true); err != nil {
		return Input{}, err
	}
	if in.Type, err = stringField(fields, "_type", true); err != nil {
		return Input{}, err
	}
	if in.Class, err = classField(fields, kind); err != nil {
		return Input{}, err
	}
	if kind == KindRelationship {
		for _, f := range []struct {
			name string
			dst  *string
		}{
			{"_fromEntityId", &in.FromID}, {"_toEntityId", &in.ToID},
			{"_fromEntityKey", &in.FromKey}, {"_toEntityKey", &in.ToKey},
			{"_fromEntityScope", &in.FromScope}, {"_toEntityScope", &in.ToScope},
		} {
			if *f.dst, err = stringField(fields, f.name, false); err != nil {
				return Input{}, err
			}
		}
		if in.FromID == "" && in.FromKey == "" {
			return Input{}, inputErr("_fromEntityId", "a relationship needs _fromEntityId or _fromEntityKey")
		}
		if in.ToID == "" && in.ToKey == "" {
			return Input{}, inputErr("_toEntityId", "a relationship needs _toEntityId or _toEntityKey")
		}
	}
	if len(in.Props) > MaxProps {
		return Input{}, inputErr("", "object has %d properties, more than the limit of %d", len(in.Props), MaxProps)
	}
	in.Props = dedupeProps(in.Props)
	if err := in.Validate(); err != nil {
		return Input{}, err
	}
	return in, nil
}

// CheckMembers checks the members of a partial object, such as the body of
// a REST update, as ParseObject checks an upload's (a flat object, I-JSON
// names and values), without requiring _key, _type and _class. Decoding the
// body with encoding/json would hide a lone surrogate in a member name.
func CheckMembers(raw []byte) error {
	if len(raw) > MaxObjectBytes {
		return inputErr("", "object is %d bytes, more than the limit of %d", len(raw), MaxObjectBytes)
	}
	members, err := scanUpload(getFields(), raw)
	putFields(members)
	return err
}

// AppendCanonical appends the input as a flat JSON object in a canonical
// form (members sorted, values canonical) that ParseObject reads back to an
// equal Input: two uploads of the same object encode to the same bytes
// whatever their member order or formatting.
func (in *Input) AppendCanonical(b []byte) []byte {
	b = append(b, `{"_class":`...)
	b = appendStrings(b, in.Class)
	for _, f := range []struct{ name, v string }{
		{"_fromEntityId", in.FromID}, {"_fromEntityKey", in.FromKey}, {"_fromEntityScope", in.FromScope},
		{"_key", in.Key},
		{"_toEntityId", in.ToID}, {"_toEntityKey", in.ToKey}, {"_toEntityScope", in.ToScope},
		{"_type", in.Type},
	} {
		if f.v != "" {
			b = append(b, ',')
			b = appendString(b, f.name)
			b = append(b, ':')
			b = appendString(b, f.v)
		}
	}
	for _, p := range in.Props {
		b = append(b, ',')
		b = appendString(b, p.Name)
		b = append(b, ':')
		b = append(b, p.Value...)
	}
	return append(b, '}')
}

// Validate checks the fields a writer sets; ParseObject calls it, and so
// does the store for inputs built in code.
func (in *Input) Validate() error {
	if err := checkText("_key", in.Key, MinKeyLen, MaxKeyLen); err != nil {
		return err
	}
	if err := checkText("_type", in.Type, MinTypeLen, MaxTypeLen); err != nil {
		return err
	}
	if len(in.Class) == 0 {
		return inputErr("_class", "is required: a class such as \"User\" (entities may give an array)")
	}
	if len(in.Class) > MaxClasses {
		return inputErr("_class", "has %d classes, more than the limit of %d", len(in.Class), MaxClasses)
	}
	if in.Kind == KindRelationship && len(in.Class) != 1 {
		return inputErr("_class", "a relationship has exactly one class, such as \"HAS\"")
	}
	for _, c := range in.Class {
		if err := checkText("_class", c, 1, MaxClassLen); err != nil {
			return err
		}
	}
	if in.Scope != "" {
		if err := checkText("_scope", in.Scope, 1, MaxScopeLen); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, v string }{
		{"_fromEntityKey", in.FromKey}, {"_toEntityKey", in.ToKey},
		{"_fromEntityScope", in.FromScope}, {"_toEntityScope", in.ToScope},
	} {
		if f.v != "" {
			if err := checkText(f.name, f.v, 1, MaxKeyLen); err != nil {
				return err
			}
		}
	}
	for _, f := range []struct{ name, v string }{{"_fromEntityId", in.FromID}, {"_toEntityId", in.ToID}} {
		if f.v != "" && !validID(f.v) {
			return inputErr(f.name, "%s is not an object id (a UUID such as 3e6fa6e5-158d-5f03-8839-a964652b57dc)", quote(f.v))
		}
	}
	return nil
}

func checkText(field, v string, min, max int) error {
	n := utf8.RuneCountInString(v)
	switch {
	case v == "":
		return inputErr(field, "is required")
	case n < min:
		return inputErr(field, "%s is %d characters; it needs at least %d", quote(v), n, min)
	case len(v) > max:
		return inputErr(field, "is %d bytes; the limit is %d", len(v), max)
	case !utf8.ValidString(v):
		return inputErr(field, "is not valid UTF-8")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return inputErr(field, "%s contains a control character", quote(v))
		}
	}
	return nil
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

func validatePropName(name string) error {
	if err := checkText(name, name, 1, MaxPropNameLen); err != nil {
		return &InputError{Field: quote(name), Reason: "property name " + err.(*InputError).Reason}
	}
	return nil
}

// quote renders a user value for an error message, shortened.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

// ownedFields are the store-owned members of an object, as scanned; of a
// repeated name the last one counts.
type ownedFields []field

func (fs ownedFields) get(name string) (json.RawMessage, bool) {
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].name == name {
			return fs[i].raw, true
		}
	}
	return nil, false
}

func stringField(fields ownedFields, name string, required bool) (string, error) {
	v, ok := fields.get(name)
	if !ok || string(v) == "null" {
		if required {
			return "", inputErr(name, "is required")
		}
		return "", nil
	}
	if len(v) >= 2 && v[0] == '"' { // a string token, checked by the scanner
		if s, err := decodeString(v); err == nil {
			return s, nil
		}
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", inputErr(name, "must be a string, got %s", jsonKind(v))
	}
	return s, nil
}

func classField(fields ownedFields, kind Kind) ([]string, error) {
	v, ok := fields.get("_class")
	if !ok || string(v) == "null" {
		return nil, inputErr("_class", "is required: a class such as \"User\" (entities may give an array)")
	}
	if len(v) >= 2 && v[0] == '"' { // a string token, checked by the scanner
		if one, err := decodeString(v); err == nil {
			return []string{one}, nil
		}
	}
	if many, ok := plainStrings(v); ok && (kind != KindRelationship || len(many) == 1) {
		return many, nil
	}
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(v, &many); err != nil {
		return nil, inputErr("_class", "must be a string or an array of strings, got %s", jsonKind(v))
	}
	if kind == KindRelationship && len(many) != 1 {
		return nil, inputErr("_class", "a relationship has exactly one class, such as \"HAS\"")
	}
	return many, nil
}

func jsonKind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// appendString appends s as a JSON string without HTML escaping.
func appendString(dst []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return append(dst, bytes.TrimSuffix(b.Bytes(), []byte("\n"))...)
}

// dedupeProps sorts properties by name; of a name given twice the last
// wins, as with encoding/json.
func dedupeProps(ps []Prop) []Prop {
	strictly := true
	for i := 1; i < len(ps); i++ {
		if ps[i-1].Name >= ps[i].Name {
			strictly = false
			break
		}
	}
	if strictly {
		return ps
	}
	// Sort positions, not the props (moving a prop is two pointers and
	// their write barriers); a tie keeps the upload's order, so of a
	// repeated name the last one wins, as in a JSON object.
	idx := make([]uint16, len(ps)) // len(ps) <= MaxProps
	for i := range idx {
		idx[i] = uint16(i)
	}
	slices.SortFunc(idx, func(a, b uint16) int {
		if c := strings.Compare(ps[a].Name, ps[b].Name); c != 0 {
			return c
		}
		return int(a) - int(b)
	})
	out := make([]Prop, 0, len(ps))
	for k, i := range idx {
		if k+1 < len(idx) && ps[idx[k+1]].Name == ps[i].Name {
			continue
		}
		out = append(out, ps[i])
	}
	return out
}

func sortProps(ps []Prop) {
	slices.SortFunc(ps, func(a, b Prop) int { return strings.Compare(a.Name, b.Name) })
}
