package graph

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Named errors callers branch on.
var (
	ErrNotFound         = errors.New("object not found")
	ErrKindConflict     = errors.New("an object of the other kind has this scope and key")
	ErrEndpointNotFound = errors.New("relationship end not found")
	ErrClosed           = errors.New("store closed")
)

// EndpointError names the end of a relationship that does not resolve to a
// live entity.
type EndpointError struct {
	Field string // _fromEntityId, _fromEntityKey, _toEntityId or _toEntityKey
	Value string
}

func (e *EndpointError) Error() string {
	return fmt.Sprintf("%s: no entity %s in this account; create the entity first, or fix the reference", e.Field, quote(e.Value))
}

func (e *EndpointError) Unwrap() error { return ErrEndpointNotFound }

// Graph is the graph store as the APIs and sync jobs use it: objects of
// every account, written in transactions whose changes the store appends
// to the account's transaction log (changelog) in the same atomic write.
type Graph interface {
	// Update runs fn as one transaction on the account's graph: every
	// object write fn makes and the log entry holding their after-images
	// are committed atomically and durably, or, if fn returns an error,
	// nothing is. Transactions of one account run one at a time, in
	// commit order; a transaction that changes no object writes nothing
	// and returns a zero Commit.
	Update(account string, fn func(Txn) error) (Commit, error)
	// Get returns the stored object with id and its JSON state as stored
	// (metadata included); deleted objects are returned too. ErrNotFound
	// when there is none.
	Get(account, id string) (Object, []byte, error)
	// List returns up to limit live objects of a kind in an account,
	// optionally of one type, in a stable order, as stored JSON. Pass the
	// returned cursor to continue; it is empty after the last page, and
	// ErrBadCursor names one that was not returned by List.
	List(account string, kind Kind, typ, cursor string, limit int) ([][]byte, string, error)
	// ScanScope calls fn for every live object of a kind in a scope whose
	// id sorts after the given one (all when empty), in id order, with
	// its id and type, reading a consistent snapshot. An error from fn
	// stops the scan and is returned.
	ScanScope(account, scope string, kind Kind, after string, fn func(id, typ string) error) error
	// CheckSpace returns a *DiskFullError when the store cannot take
	// writes for lack of space; writers call it before work of their own.
	CheckSpace() error
}

// Txn is one atomic transaction on one account's graph. Reads see the
// transaction's own writes. It is valid only inside the function given to
// Graph.Update.
type Txn interface {
	// Account returns the account the transaction writes.
	Account() string
	// CommitTime returns the transaction's commit time.
	CommitTime() time.Time
	// Changes returns how many object changes the transaction holds so far.
	Changes() int
	// Counts returns the tally of the transaction's changes so far.
	Counts() Counts
	// Get returns an object as the transaction sees it, deleted objects
	// too; ErrNotFound when there is none.
	Get(id string) (Object, error)
	// Upsert creates the object, or updates it when its content
	// (ContentHash) differs, or does nothing when the upload matches what
	// is stored (op 0). The object's id comes from its scope and key. A
	// deleted object is created again with the next version. A
	// relationship's ends must be live entities (*EndpointError).
	Upsert(in *Input) (Op, Object, error)
	// Delete soft-deletes the object with id: it keeps its properties,
	// gains _deleted and _endOn and the next version. Deleting an entity
	// deletes its live relationships (as the transaction sees them) in
	// the same transaction, before it; an entity with more than
	// MaxCascade is refused with a *CascadeError and the transaction
	// left as it was (DeleteEntity deletes it in chunks). It reports
	// false when there is no live object with that id.
	Delete(id string) (bool, error)
	// DeleteRelationships soft-deletes up to max of the live
	// relationships attached to the entity with id, as the transaction
	// sees them, reading at most max+1 of them (plus those the
	// transaction itself detached), and reports whether live ones
	// remain. It leaves the entity as it is. from is a hint: the next
	// returned by the previous call for the same entity, "" on the
	// first; a backend that reads an entity's relationships in id order
	// resumes there, so the deletes of earlier calls are not read again,
	// and still finds those attached before it meanwhile.
	DeleteRelationships(id, from string, max int) (next string, more bool, err error)
}

// Prefetcher is implemented by transactions that read many objects faster
// in one batch than one at a time (a database across a network): a writer
// about to upsert many objects may call Prefetch with their ids, and those
// of the entities their relationships name, first. It changes nothing
// else.
type Prefetcher interface {
	Prefetch(ids []string) error
}

// ErrBadCursor is returned by List for a cursor it did not hand out.
var ErrBadCursor = errors.New("invalid cursor: pass the nextCursor of the previous page unchanged")

// ErrDiskFull is wrapped by *DiskFullError: writes are refused while the
// store's free space is below its reserve. Nothing is written; writes
// resume by themselves once space is freed.
var ErrDiskFull = errors.New("data directory is almost full")

// DiskFullError says how much space is left and how much is needed.
type DiskFullError struct {
	Dir       string
	Free, Min uint64
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("the data directory %s has %d MiB free, less than the %d MiB j1ds keeps in reserve: writes are refused until space is freed (grow the volume or shorten --log-retention); they resume by themselves",
		e.Dir, e.Free>>20, e.Min>>20)
}

func (e *DiskFullError) Unwrap() error { return ErrDiskFull }

// Counts tallies a transaction's changes.
type Counts struct {
	EntitiesCreated, EntitiesUpdated, EntitiesDeleted                int
	RelationshipsCreated, RelationshipsUpdated, RelationshipsDeleted int
}

// Add adds c to n.
func (n *Counts) Add(c Counts) {
	n.EntitiesCreated += c.EntitiesCreated
	n.EntitiesUpdated += c.EntitiesUpdated
	n.EntitiesDeleted += c.EntitiesDeleted
	n.RelationshipsCreated += c.RelationshipsCreated
	n.RelationshipsUpdated += c.RelationshipsUpdated
	n.RelationshipsDeleted += c.RelationshipsDeleted
}

// Note counts one change of kind k.
func (n *Counts) Note(k Kind, op Op) {
	switch {
	case k == KindEntity && op == OpCreate:
		n.EntitiesCreated++
	case k == KindEntity && op == OpUpdate:
		n.EntitiesUpdated++
	case k == KindEntity && op == OpDelete:
		n.EntitiesDeleted++
	case op == OpCreate:
		n.RelationshipsCreated++
	case op == OpUpdate:
		n.RelationshipsUpdated++
	case op == OpDelete:
		n.RelationshipsDeleted++
	}
}

// Commit describes a committed transaction. LSN is zero when the
// transaction changed no object.
type Commit struct {
	LSN        uint64
	CommitTime int64 // µs since the epoch
	Changes    int
	Counts     Counts
}

// ContentHash covers everything a writer controls, so an upload that
// matches it is a no-op; backends store it beside each object. The input is length-prefixed fields hashed in one
// call (buf is scratch; the grown buffer is returned).
func ContentHash(buf []byte, o *Object) ([16]byte, []byte) {
	b := buf[:0]
	w := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	w(string(o.Kind))
	w(o.Type)
	w(o.Source)
	w(o.FromID)
	w(o.ToID)
	w(o.FromKey)
	w(o.ToKey)
	b = binary.AppendUvarint(b, uint64(len(o.Class)))
	for _, c := range o.Class {
		w(c)
	}
	for _, p := range o.Props {
		w(p.Name)
		w(string(p.Value))
	}
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16]), b
}
