package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/j1ds/j1ds/internal/graph"
)

// record is what the checks need of one line, once its shape is valid.
type record struct {
	op       graph.Op
	kind     graph.Kind
	id       string
	uid      [16]byte
	typ      string
	key      string
	version  int64
	deleted  bool
	commitMs int64           // _endOn of a delete, _beginOn otherwise
	props    json.RawMessage // the "properties" member
}

// what names the record's object in a message.
func (r *record) what() string { return fmt.Sprintf("%s %s (%s %q)", r.kind, r.id, r.typ, r.key) }

// problem is a violation found in one line, before the key and line are
// known.
type problem struct {
	kind   Kind
	detail string
}

// recordMembers are the top-level members of a record, and nothing else.
var recordMembers = []string{"operation", "eventType", "properties", "labels"}

// parseRecord checks one line against the record format of
// internal/graph.AppendRecord and returns the record. A shape problem
// (KindBadRecord) ends the checks of the line: ok is false. Other
// problems (account, labels, delete flags) leave the record usable.
func parseRecord(line []byte, account string) (r record, probs []problem, ok bool) {
	bad := func(format string, args ...any) (record, []problem, bool) {
		return record{}, []problem{{KindBadRecord, fmt.Sprintf(format, args...)}}, false
	}
	top, err := members(line)
	if err != nil {
		return bad("not a JSON object: %v", err)
	}
	for name := range top {
		if !slices.Contains(recordMembers, name) {
			return bad("unexpected top-level member %q: a record has exactly operation, eventType, properties and labels", name)
		}
	}
	for _, name := range recordMembers {
		if _, ok := top[name]; !ok {
			return bad("no %q member", name)
		}
	}
	var op, event string
	if json.Unmarshal(top["operation"], &op) != nil || (op != "c" && op != "u" && op != "d") {
		return bad(`operation is %s, not "c", "u" or "d"`, short(top["operation"]))
	}
	r.op = graph.Op(op[0])
	switch json.Unmarshal(top["eventType"], &event); event {
	case "entity":
		r.kind = graph.KindEntity
	case "relationship":
		r.kind = graph.KindRelationship
	default:
		return bad(`eventType is %s, not "entity" or "relationship"`, short(top["eventType"]))
	}
	var labels []string
	if json.Unmarshal(top["labels"], &labels) != nil || labels == nil {
		return bad("labels is %s, not an array of strings", short(top["labels"]))
	}
	r.props = top["properties"]
	var p map[string]json.RawMessage
	if json.Unmarshal(r.props, &p) != nil || p == nil {
		return bad("properties is %s, not a JSON object", short(r.props))
	}

	// Metadata every state carries, with its JSON type.
	str := func(name string, dst *string) error {
		v, ok := p[name]
		if !ok {
			return fmt.Errorf("properties has no %s", name)
		}
		if json.Unmarshal(v, dst) != nil || !strings.HasPrefix(string(v), `"`) {
			return fmt.Errorf("properties.%s is %s, not a string", name, short(v))
		}
		return nil
	}
	num := func(name string, dst *int64) error {
		v, ok := p[name]
		if !ok {
			return fmt.Errorf("properties has no %s", name)
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return fmt.Errorf("properties.%s is %s, not a whole number", name, short(v))
		}
		*dst = n
		return nil
	}
	var accountID, scope, source string
	var createdOn, beginOn int64
	for _, err := range []error{
		str("_id", &r.id), str("_key", &r.key), str("_type", &r.typ), str("_accountId", &accountID),
		str("_scope", &scope), str("_source", &source),
		num("_version", &r.version), num("_createdOn", &createdOn), num("_beginOn", &beginOn),
	} {
		if err != nil {
			return bad("%v", err)
		}
	}
	u, err := uuid.Parse(r.id)
	if err != nil {
		return bad("properties._id %q is not an object id (a UUID)", r.id)
	}
	r.uid = u
	if r.version < 1 {
		return bad("properties._version is %d; versions start at 1", r.version)
	}
	switch v := string(p["_deleted"]); v {
	case "true", "false":
		r.deleted = v == "true"
	case "":
		return bad("properties has no _deleted")
	default:
		return bad("properties._deleted is %s, not true or false", short(p["_deleted"]))
	}
	var endOn int64
	_, hasEnd := p["_endOn"]
	if hasEnd {
		if err := num("_endOn", &endOn); err != nil {
			return bad("%v", err)
		}
	}
	var class []string
	switch r.kind {
	case graph.KindEntity:
		if json.Unmarshal(p["_class"], &class) != nil || len(class) == 0 {
			return bad("properties._class of an entity is %s, not a non-empty array of strings", short(p["_class"]))
		}
		if _, ok := p["_fromEntityId"]; ok {
			return bad("an entity record has _fromEntityId: eventType says entity, the properties a relationship")
		}
	case graph.KindRelationship:
		var c string
		if err := str("_class", &c); err != nil {
			return bad("%v (a relationship has one class)", err)
		}
		class = []string{c}
		var from, to string
		for _, err := range []error{str("_fromEntityId", &from), str("_toEntityId", &to)} {
			if err != nil {
				return bad("%v", err)
			}
		}
	}

	if accountID != account {
		probs = append(probs, problem{KindWrongAccount, fmt.Sprintf("properties._accountId is %q, not the account %q", accountID, account)})
	}
	o := graph.Object{Kind: r.kind, Class: class, Type: r.typ}
	if want := o.Labels(); !slices.Equal(labels, want) {
		probs = append(probs, problem{KindWrongLabels, fmt.Sprintf("labels %s; _class and _type make them %s", jsonText(labels), jsonText(want))})
	}
	r.commitMs = beginOn
	if r.op == graph.OpDelete {
		r.commitMs = endOn
		if !r.deleted || !hasEnd {
			probs = append(probs, problem{KindDeleteFlags, fmt.Sprintf("a delete record has _deleted %v and %s; it needs _deleted true and _endOn", r.deleted, presence("_endOn", hasEnd))})
		}
	} else if r.deleted || hasEnd {
		probs = append(probs, problem{KindDeleteFlags, fmt.Sprintf("a %s record has _deleted %v and %s; it needs _deleted false and no _endOn", opName(r.op), r.deleted, presence("_endOn", hasEnd))})
	}
	return r, probs, true
}

// members decodes a JSON object into its members, refusing duplicate
// names and anything after the object.
func members(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("starts with %v", tok)
	}
	out := make(map[string]json.RawMessage, 4)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name := tok.(string) // the decoder allows only strings as names
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("member %q appears twice", name)
		}
		out[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the object")
	}
	return out, nil
}

func presence(name string, has bool) string {
	if has {
		return "has " + name
	}
	return "no " + name
}

func opName(op graph.Op) string {
	switch op {
	case graph.OpCreate:
		return "create"
	case graph.OpUpdate:
		return "update"
	case graph.OpDelete:
		return "delete"
	}
	return string(op)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// short renders a JSON value for a message, shortened.
func short(v json.RawMessage) string {
	if v == nil {
		return "missing"
	}
	s := string(v)
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}
