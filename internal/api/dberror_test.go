package api_test

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/graph"
)

// errDown stands for the database's error when its connection drops in
// the middle of a transaction.
var errDown = errors.New("read object: unexpected EOF")

// unreadable is a graph whose transactions cannot read objects while down
// is set: Get fails with errDown, as a store's does when the database goes
// away mid-transaction.
type unreadable struct {
	graph.Graph
	down atomic.Bool
}

func (g *unreadable) Update(account string, fn func(graph.Txn) error) (graph.Commit, error) {
	return g.Graph.Update(account, func(tx graph.Txn) error {
		if g.down.Load() {
			tx = downTxn{tx}
		}
		return fn(tx)
	})
}

type downTxn struct{ graph.Txn }

func (downTxn) Get(string) (graph.Object, error) { return graph.Object{}, errDown }

// TestObjectWritesWhenTheDatabaseFails: a PATCH or a DELETE whose read of
// the object fails answers 503 DATABASE_UNAVAILABLE, not 404 NOT_FOUND: the
// object is there, and the client should send the request again, not
// forget the object. Once the database answers, the same requests succeed.
func TestObjectWritesWhenTheDatabaseFails(t *testing.T) {
	g := &unreadable{}
	e := newEnvOn(t, "pebble", func(c *api.Config) {
		g.Graph = c.Graph
		c.Graph = g
		c.Unavailable = func(err error) bool { return errors.Is(err, errDown) }
	})
	key := e.newAccount(t, acct)
	created := func(path string, body map[string]any) string {
		t.Helper()
		r := e.rest(t, key, "POST", restBase+path, body)
		wantStatus(t, r, http.StatusCreated)
		id, _ := decode(t, r)["_id"].(string)
		return id
	}
	from := created("/entities", map[string]any{"_key": "dberr-user-0001", "_type": "test_user", "_class": "User"})
	to := created("/entities", map[string]any{"_key": "dberr-user-0002", "_type": "test_user", "_class": "User"})
	rel := created("/relationships", map[string]any{"_key": "dberr-knows-0001", "_type": "test_user_knows_user", "_class": "KNOWS", "_fromEntityId": from, "_toEntityId": to})

	requests := []struct {
		name, method, path string
		body               any
	}{
		{"PATCH entity", "PATCH", "/entities/" + from, map[string]any{"title": "x"}},
		{"PATCH relationship", "PATCH", "/relationships/" + rel, map[string]any{"since": 2020}},
		{"DELETE relationship", "DELETE", "/relationships/" + rel, nil},
		{"DELETE entity", "DELETE", "/entities/" + to, nil},
	}
	g.down.Store(true)
	for _, rq := range requests {
		r := e.rest(t, key, rq.method, restBase+rq.path, rq.body)
		wantError(t, r, http.StatusServiceUnavailable, "DATABASE_UNAVAILABLE")
	}
	g.down.Store(false)
	for _, rq := range requests {
		r := e.rest(t, key, rq.method, restBase+rq.path, rq.body)
		wantStatus(t, r, http.StatusOK)
	}
}
