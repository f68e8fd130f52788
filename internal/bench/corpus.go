package bench

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/testbed/synth"
)

// The bench corpus is a real transaction log: each account runs its own
// synthetic integration (internal/testbed/synth: a few dozen entity and
// relationship types, 10 to 40 properties), whose datasets are diffed step
// after step and committed into a graph.Store as creates, updates and
// deletes of entities and relationships. The records are read back from
// the log, so they are byte for byte what the exporter ships.

// corpusSpec sizes a corpus: about Changes changes over Accounts accounts.
type corpusSpec struct {
	Accounts int
	Changes  int
	Seed     int64
}

// corpusStats describes a corpus as the table prints it.
type corpusStats struct {
	Records, Bytes, Entries         int
	P5Bytes, MedianBytes, P95Bytes  int
	EntityTypes, RelTypes           int
	MinProps, MedianProps, MaxProps int
	// Ops counts records by event type and operation: "entity create", ...
	Ops map[string]int
}

// describe computes the statistics of a corpus' records.
func describe(logs [][]changelog.Entry) (corpusStats, error) {
	st := corpusStats{Ops: map[string]int{}}
	types := map[string]map[string]bool{"entity": {}, "relationship": {}}
	var sizes, props []int
	for _, es := range logs {
		st.Entries += len(es)
		for _, e := range es {
			for _, c := range e.Changes {
				var r struct {
					Operation, EventType string
					Properties           map[string]json.RawMessage
				}
				if err := json.Unmarshal(c.Record, &r); err != nil {
					return st, fmt.Errorf("corpus record: %w", err)
				}
				st.Ops[r.EventType+" "+map[string]string{"c": "create", "u": "update", "d": "delete"}[r.Operation]]++
				var typ string
				_ = json.Unmarshal(r.Properties["_type"], &typ)
				types[r.EventType][typ] = true
				sizes = append(sizes, len(c.Record))
				props = append(props, len(r.Properties))
				st.Bytes += len(c.Record)
			}
		}
	}
	st.Records = len(sizes)
	if st.Records == 0 {
		return st, fmt.Errorf("the corpus is empty")
	}
	slices.Sort(sizes)
	slices.Sort(props)
	q := func(s []int, f float64) int { return s[min(len(s)-1, int(f*float64(len(s))))] }
	st.P5Bytes, st.MedianBytes, st.P95Bytes = q(sizes, 0.05), q(sizes, 0.5), q(sizes, 0.95)
	st.MinProps, st.MedianProps, st.MaxProps = props[0], q(props, 0.5), props[len(props)-1]
	st.EntityTypes, st.RelTypes = len(types["entity"]), len(types["relationship"])
	return st, nil
}

// corpusScope is the integration instance every account's world syncs as.
const corpusScope = "synth-bench"

// corpusAccount names the i-th account of a corpus.
func corpusAccount(i int) string { return fmt.Sprintf("bench-%04d", i) }

// fillCorpus commits spec's changes into s, accounts in parallel, and
// returns how many it committed. Each account's world starts at about half
// its share as creates and then changes 15% of itself per step until the
// share is reached, in transactions of at most txMax changes.
// progress, when set, is called after every tenth of the accounts.
func fillCorpus(s graph.Graph, spec corpusSpec, txMax int, progress func(accounts, changes int)) (int, error) {
	share := max(1, spec.Changes/spec.Accounts)
	var (
		total atomic.Int64
		wg    sync.WaitGroup
		next  atomic.Int64
		done  atomic.Int64
	)
	errs := make(chan error, runtime.GOMAXPROCS(0))
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := int(next.Add(1) - 1); a < spec.Accounts; a = int(next.Add(1) - 1) {
				n, err := fillAccount(s, corpusAccount(a), spec.Seed+int64(a), share, txMax)
				t := total.Add(int64(n))
				if err != nil {
					errs <- err
					return
				}
				if d := done.Add(1); progress != nil && d%int64(max(1, spec.Accounts/10)) == 0 {
					progress(int(d), int(t))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return int(total.Load()), <-errs
}

// fillAccount commits share changes of one account's synthetic world.
func fillAccount(s graph.Graph, account string, seed int64, share, txMax int) (int, error) {
	// Entities ≈ share/6: with about two relationships per entity the
	// initial world is about half the share.
	g := synth.New(synth.Config{Seed: seed, Scope: corpusScope, Entities: max(10, share/6), ChangeFraction: 0.15})
	prevE, prevR := map[string][]byte{}, map[string][]byte{}
	n := 0
	for n < share {
		ents, rels := g.Step()
		d, err := diffStep(prevE, prevR, ents, rels)
		if err != nil {
			return n, err
		}
		if len(d) > share-n {
			d = d[:share-n] // creates come first: ends stay valid
		}
		k, err := commitDiff(s, account, d, txMax)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// op is one change of a step's diff.
type op struct {
	kind   graph.Kind
	delete bool
	key    string
	raw    []byte
}

// diffStep compares a step's datasets with the previous ones (updating
// them) and returns the changes in an order the store accepts: entity
// upserts, relationship upserts, relationship deletes, entity deletes.
func diffStep(prevE, prevR map[string][]byte, ents, rels []map[string]any) ([]op, error) {
	var ups, relUps, relDels, entDels []op
	diff := func(kind graph.Kind, prev map[string][]byte, objs []map[string]any, ups, dels *[]op) error {
		seen := make(map[string]bool, len(objs))
		for _, o := range objs {
			key, _ := o["_key"].(string)
			raw, err := json.Marshal(o)
			if err != nil {
				return err
			}
			seen[key] = true
			if old, ok := prev[key]; !ok || string(old) != string(raw) {
				*ups = append(*ups, op{kind: kind, key: key, raw: raw})
				prev[key] = raw
			}
		}
		for key := range prev {
			if !seen[key] {
				*dels = append(*dels, op{kind: kind, delete: true, key: key})
				delete(prev, key)
			}
		}
		return nil
	}
	if err := diff(graph.KindEntity, prevE, ents, &ups, &entDels); err != nil {
		return nil, err
	}
	if err := diff(graph.KindRelationship, prevR, rels, &relUps, &relDels); err != nil {
		return nil, err
	}
	// Map order is random: sort the deletes so the corpus is deterministic.
	for _, d := range [][]op{relDels, entDels} {
		slices.SortFunc(d, func(a, b op) int {
			if a.key < b.key {
				return -1
			}
			return 1
		})
	}
	out := append(ups, relUps...)
	out = append(out, relDels...)
	return append(out, entDels...), nil
}

// commitDiff commits ops in transactions of at most txMax and returns the
// number of changes logged (an entity delete also deletes its live
// relationships).
func commitDiff(s graph.Graph, account string, ops []op, txMax int) (int, error) {
	n := 0
	for i := 0; i < len(ops); i += txMax {
		c, err := s.Update(account, func(tx graph.Txn) error {
			for _, o := range ops[i:min(i+txMax, len(ops))] {
				if o.delete {
					if _, err := tx.Delete(graph.ObjectID(account, corpusScope, o.key)); err != nil {
						return err
					}
					continue
				}
				in, err := graph.ParseObject(o.kind, o.raw)
				if err != nil {
					return fmt.Errorf("corpus object %s: %w", o.key, err)
				}
				in.Scope, in.Source = corpusScope, "integration-managed"
				if _, _, err := tx.Upsert(&in); err != nil {
					return fmt.Errorf("corpus object %s: %w", o.key, err)
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += c.Changes
	}
	return n, nil
}

// readCorpus returns every log entry of the corpus accounts, account by
// account in commit order.
func readCorpus(s changelog.Reader, accounts int) ([][]changelog.Entry, error) {
	out := make([][]changelog.Entry, accounts)
	for a := range accounts {
		es, err := readAccount(s, corpusAccount(a))
		if err != nil {
			return nil, err
		}
		out[a] = es
	}
	return out, nil
}

// readAccount returns every log entry of an account in commit order.
func readAccount(s changelog.Reader, account string) ([]changelog.Entry, error) {
	var out []changelog.Entry
	var after uint64
	for {
		es, err := s.ReadLog(account, after, 4096, 64<<20)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return out, nil
		}
		out = append(out, es...)
		after = es[len(es)-1].LSN
	}
}
