package pebblestore_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
)

// The child half of TestKillDuringWritesLosesNothing: when J1DS_DURABILITY_DIR
// is set, the test binary becomes a writer that prints one line per
// acknowledged transaction and runs until it is killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("J1DS_DURABILITY_DIR"); dir != "" {
		durabilityWriter(dir, os.Getenv("J1DS_DURABILITY_ROUND"))
		return
	}
	os.Exit(m.Run())
}

// durabilityWriter writes from 4 goroutines over 2 accounts: creates,
// updates of a shared hot set, and deletes (with relationships, so deletes
// cascade). After each Update returns it prints
// "ack <account> <lsn> <id>:<version> ...".
func durabilityWriter(dir, round string) {
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			account := fmt.Sprintf("acct%d", w%2)
			for i := 0; ; i++ {
				var acked []string
				c, err := s.Update(account, func(tx graph.Txn) error {
					acked = acked[:0]
					hub := fmt.Sprintf(`{"_key":"hub-entity-%d","_type":"test_hub","_class":"Group","round":%q,"i":%d}`, w, round, i)
					leaf := fmt.Sprintf(`{"_key":"leaf-entity-%d-%d","_type":"test_leaf","_class":"User","round":%q}`, w, i%20, round)
					rel := fmt.Sprintf(`{"_key":"hub-%d-has-leaf-%d","_type":"test_hub_has_leaf","_class":"HAS","_fromEntityKey":"hub-entity-%d","_toEntityKey":"leaf-entity-%d-%d"}`, w, i%20, w, w, i%20)
					for _, spec := range []struct {
						kind graph.Kind
						js   string
					}{{graph.KindEntity, hub}, {graph.KindEntity, leaf}, {graph.KindRelationship, rel}} {
						in, err := graph.ParseObject(spec.kind, []byte(spec.js))
						if err != nil {
							return err
						}
						in.Scope, in.Source = "durability", "api"
						op, o, err := tx.Upsert(&in)
						if err != nil {
							return err
						}
						if op != 0 {
							acked = append(acked, fmt.Sprintf("%s:%d", o.ID, o.Version))
						}
					}
					if i%7 == 6 { // delete a leaf: cascades to its relationship
						id := graph.ObjectID(account, "durability", fmt.Sprintf("leaf-entity-%d-%d", w, (i+3)%20))
						if _, err := tx.Delete(id); err != nil {
							return err
						}
						if o, err := tx.Get(id); err == nil && o.Deleted {
							acked = append(acked, fmt.Sprintf("%s:%d", o.ID, o.Version))
						}
					}
					return nil
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, "write:", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %s %d %s\n", account, c.LSN, strings.Join(acked, " "))
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

type ack struct {
	account string
	lsn     uint64
	objs    map[string]int64 // id → version
}

func TestKillDuringWritesLosesNothing(t *testing.T) {
	dir := t.TempDir()
	var acks []ack
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "J1DS_DURABILITY_DIR="+dir, "J1DS_DURABILITY_ROUND="+strconv.Itoa(round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		n := 0
		// Kill after a number of acknowledgements that varies by round, so
		// the kill lands at different points of the write stream.
		killAt := 150 + 97*round
		for sc.Scan() {
			a, err := parseAck(sc.Text())
			if err != nil {
				t.Fatal(err)
			}
			acks = append(acks, a)
			if n++; n == killAt {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		_ = cmd.Wait()
		if n < killAt {
			t.Fatalf("round %d: writer stopped after %d acks: %s", round, n, stderr.String())
		}
	}

	s := openStore(t, dir, pebblestore.Options{})
	// 1. Every acknowledged write is there: the log holds its LSN and the
	// object has at least the acknowledged version.
	for _, a := range acks {
		if a.lsn == 0 {
			continue
		}
		es, err := s.ReadLog(a.account, a.lsn-1, 1, 1<<30)
		if err != nil || len(es) == 0 || es[0].LSN != a.lsn {
			t.Fatalf("acknowledged LSN %d of %s is not in the log (%v)", a.lsn, a.account, err)
		}
		for id, v := range a.objs {
			o, _, err := s.Get(a.account, id)
			if err != nil || o.Version < v {
				t.Fatalf("acknowledged %s version %d: stored %d (%v)", id, v, o.Version, err)
			}
		}
	}
	// 2. Graph and log agree exactly: replaying each account's log gives
	// every stored object's state byte for byte, versions rising by one.
	for _, account := range []string{"acct0", "acct1"} {
		es, err := s.ReadLog(account, 0, 1<<30, 1<<40)
		if err != nil {
			t.Fatal(err)
		}
		last := map[string][]byte{}
		version := map[string]int64{}
		for _, e := range es {
			for _, c := range e.Changes {
				var rec struct {
					Properties json.RawMessage `json:"properties"`
				}
				if err := json.Unmarshal(c.Record, &rec); err != nil {
					t.Fatal(err)
				}
				o, err := graph.DecodeObject(rec.Properties)
				if err != nil {
					t.Fatal(err)
				}
				if o.Version != version[c.ID]+1 {
					t.Fatalf("%s %s: version %d follows %d in the log", account, c.ID, o.Version, version[c.ID])
				}
				version[c.ID] = o.Version
				last[c.ID] = rec.Properties
			}
		}
		if len(last) == 0 {
			t.Fatalf("%s: empty log", account)
		}
		for id, props := range last {
			_, raw, err := s.Get(account, id)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, props) {
				t.Fatalf("%s %s: stored state differs from the log's last record:\nstored %s\nlog    %s", account, id, raw, props)
			}
		}
		for _, kind := range []graph.Kind{graph.KindEntity, graph.KindRelationship} {
			items, _, err := s.List(account, kind, "", "", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range items {
				o, _ := graph.DecodeObject(raw)
				if _, ok := last[o.ID]; !ok {
					t.Fatalf("%s: stored %s has no log record", account, o.ID)
				}
			}
		}
	}
	t.Logf("%d acknowledged transactions over 3 kills verified", len(acks))
}

func parseAck(line string) (ack, error) {
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "ack" {
		return ack{}, fmt.Errorf("bad writer line %q", line)
	}
	lsn, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return ack{}, err
	}
	a := ack{account: f[1], lsn: lsn, objs: map[string]int64{}}
	for _, kv := range f[3:] {
		id, v, _ := strings.Cut(kv, ":")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return ack{}, err
		}
		a.objs[id] = n
	}
	return a, nil
}
