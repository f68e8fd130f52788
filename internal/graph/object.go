package graph

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Object is a stored graph object: metadata kept by the store plus the
// writer's properties.
type Object struct {
	Kind      Kind
	ID        string
	Key       string
	Type      string
	Class     []string
	Scope     string
	Source    string
	AccountID string
	Version   int64
	CreatedOn int64 // epoch ms
	BeginOn   int64 // epoch ms
	EndOn     int64 // epoch ms, set when deleted
	Deleted   bool
	// Relationship ends.
	FromID, ToID, FromKey, ToKey string
	Props                        []Prop
}

// Labels returns the graph labels of the object: "Entity" or
// "Relationship", then each class, then the type.
func (o *Object) Labels() []string {
	l := make([]string, 0, len(o.Class)+2)
	if o.Kind == KindEntity {
		l = append(l, "Entity")
	} else {
		l = append(l, "Relationship")
	}
	l = append(l, o.Class...)
	return append(l, o.Type)
}

// Prop returns the value of the named writer property.
func (o *Object) Prop(name string) (json.RawMessage, bool) {
	i := sort.Search(len(o.Props), func(i int) bool { return o.Props[i].Name >= name })
	if i < len(o.Props) && o.Props[i].Name == name {
		return o.Props[i].Value, true
	}
	return nil, false
}

// AppendJSON appends the object's full state as one JSON object: metadata
// first in a fixed order, then the writer's properties sorted by name.
func (o *Object) AppendJSON(b []byte) []byte {
	b = append(b, `{"_scope":`...)
	b = appendString(b, o.Scope)
	b = append(b, `,"_source":`...)
	b = appendString(b, o.Source)
	b = append(b, `,"_key":`...)
	b = appendString(b, o.Key)
	b = append(b, `,"_accountId":`...)
	b = appendString(b, o.AccountID)
	b = append(b, `,"_type":`...)
	b = appendString(b, o.Type)
	b = append(b, `,"_class":`...)
	if o.Kind == KindRelationship {
		b = appendString(b, o.Class[0])
	} else {
		b = appendStrings(b, o.Class)
	}
	b = append(b, `,"_id":`...)
	b = appendString(b, o.ID)
	b = append(b, `,"_deleted":`...)
	b = strconv.AppendBool(b, o.Deleted)
	b = append(b, `,"_version":`...)
	b = strconv.AppendInt(b, o.Version, 10)
	b = append(b, `,"_createdOn":`...)
	b = strconv.AppendInt(b, o.CreatedOn, 10)
	b = append(b, `,"_beginOn":`...)
	b = strconv.AppendInt(b, o.BeginOn, 10)
	if o.Deleted {
		b = append(b, `,"_endOn":`...)
		b = strconv.AppendInt(b, o.EndOn, 10)
	}
	if o.Kind == KindRelationship {
		b = append(b, `,"_fromEntityId":`...)
		b = appendString(b, o.FromID)
		b = append(b, `,"_toEntityId":`...)
		b = appendString(b, o.ToID)
		b = append(b, `,"_fromEntityKey":`...)
		b = appendString(b, o.FromKey)
		b = append(b, `,"_toEntityKey":`...)
		b = appendString(b, o.ToKey)
	}
	for _, p := range o.Props {
		b = append(b, ',')
		b = appendString(b, p.Name)
		b = append(b, ':')
		b = append(b, p.Value...)
	}
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// AppendRecord appends the change record of the seed's format for an object
// after a change: {"operation","eventType","properties","labels"}. props is
// the object's encoded state (AppendJSON).
func AppendRecord(b []byte, op Op, o *Object, props []byte) []byte {
	b = append(b, `{"operation":"`...)
	b = append(b, byte(op))
	b = append(b, `","eventType":"`...)
	b = append(b, o.Kind.String()...)
	b = append(b, `","properties":`...)
	b = append(b, props...)
	b = append(b, `,"labels":`...)
	b = appendStrings(b, o.Labels())
	return append(b, '}')
}

// DecodeObject parses an object's stored JSON state (as AppendJSON writes it).
// The object refers to raw (its property values are slices of it): raw must
// not change while the object is in use.
func DecodeObject(raw []byte) (Object, error) {
	members, err := scanFlat(getFields(), raw)
	defer putFields(members)
	if err != nil {
		return Object{}, fmt.Errorf("decode object: %w", err)
	}
	var room [16]field
	fields := ownedFields(room[:0])
	o := Object{Props: make([]Prop, 0, len(members))}
	for _, m := range members {
		if isStoreOwned(m.name) {
			fields = append(fields, m)
		} else {
			o.Props = append(o.Props, Prop{Name: m.name, Value: m.canon})
		}
	}
	str := func(name string, dst *string) { *dst, _ = stringField(fields, name, false) }
	num := func(name string, dst *int64) {
		if v, ok := fields.get(name); ok {
			*dst, _ = strconv.ParseInt(string(v), 10, 64)
		}
	}
	str("_id", &o.ID)
	str("_key", &o.Key)
	str("_type", &o.Type)
	str("_scope", &o.Scope)
	str("_source", &o.Source)
	str("_accountId", &o.AccountID)
	num("_version", &o.Version)
	num("_createdOn", &o.CreatedOn)
	num("_beginOn", &o.BeginOn)
	num("_endOn", &o.EndOn)
	deleted, _ := fields.get("_deleted")
	o.Deleted = string(deleted) == "true"
	o.Kind = KindEntity
	if _, ok := fields.get("_fromEntityId"); ok {
		o.Kind = KindRelationship
		str("_fromEntityId", &o.FromID)
		str("_toEntityId", &o.ToID)
		str("_fromEntityKey", &o.FromKey)
		str("_toEntityKey", &o.ToKey)
	}
	if o.Class, err = classField(fields, o.Kind); err != nil {
		return Object{}, fmt.Errorf("decode object %s: %w", o.ID, err)
	}
	sortProps(o.Props)
	return o, nil
}

// MergeProps applies a JSON merge patch of flat properties to ps: a null
// value removes the property, any other value sets it. Both are sorted.
func MergeProps(ps, patch []Prop) []Prop {
	out := make([]Prop, 0, len(ps)+len(patch))
	i, j := 0, 0
	for i < len(ps) || j < len(patch) {
		switch {
		case j == len(patch) || (i < len(ps) && ps[i].Name < patch[j].Name):
			out = append(out, ps[i])
			i++
		default:
			if i < len(ps) && ps[i].Name == patch[j].Name {
				i++
			}
			if string(patch[j].Value) != "null" {
				out = append(out, patch[j])
			}
			j++
		}
	}
	return out
}
