package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

func encode(t *testing.T, o map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatalf("encode %v: %v", o["_key"], err)
	}
	return b
}

func TestSameSeedSameDatasets(t *testing.T) {
	t.Parallel()
	a := New(Config{Seed: 42, ChangeFraction: 0.2})
	b := New(Config{Seed: 42, ChangeFraction: 0.2})
	c := New(Config{Seed: 43, ChangeFraction: 0.2})
	for step := range 8 {
		ae, ar := a.Step()
		be, br := b.Step()
		ce, _ := c.Step()
		if !reflect.DeepEqual(ae, be) || !reflect.DeepEqual(ar, br) {
			t.Fatalf("step %d: two worlds of seed 42 differ", step)
		}
		if reflect.DeepEqual(ae, ce) {
			t.Fatalf("step %d: seeds 42 and 43 give the same entities", step)
		}
	}
}

func TestStepReturnsCallersCopy(t *testing.T) {
	t.Parallel()
	g := New(Config{Seed: 1})
	ents, _ := g.Step()
	for _, e := range ents {
		e["name"] = "changed by the caller"
		if c, ok := e["_class"].([]string); ok {
			c[0] = "Changed"
		}
	}
	again := New(Config{Seed: 1})
	again.Step()
	want, _ := again.Step()
	if got, _ := g.Step(); !reflect.DeepEqual(got, want) {
		t.Fatal("changing a returned dataset changed the world")
	}
}

var propName = regexp.MustCompile(`^(_|tag\.)?[A-Za-z0-9. -]+$`)

// checkDataset checks one dataset against j1ds's rules and the world's
// promises, and returns the entity keys.
func checkDataset(t *testing.T, what string, ents, rels []map[string]any) map[string]map[string]any {
	t.Helper()
	byKey := make(map[string]map[string]any, len(ents))
	for _, e := range ents {
		raw := encode(t, e)
		in, err := graph.ParseObject(graph.KindEntity, raw)
		if err != nil {
			t.Fatalf("%s: entity rejected: %v\n%s", what, err, raw)
		}
		if byKey[in.Key] != nil {
			t.Fatalf("%s: entity key %q twice", what, in.Key)
		}
		byKey[in.Key] = e
		if n := len(raw); n < 300 || n > 800 {
			t.Errorf("%s: entity %s encodes to %d bytes, want 300 to 800", what, in.Key, n)
		}
		if n := len(e) - 3; n < 10 || n > 40 {
			t.Errorf("%s: entity %s has %d properties, want 10 to 40", what, in.Key, n)
		}
		for _, p := range []string{"name", "displayName", "createdOn", "updatedOn"} {
			if e[p] == nil {
				t.Errorf("%s: entity %s has no %s", what, in.Key, p)
			}
		}
		for k, v := range e {
			if !propName.MatchString(k) {
				t.Errorf("%s: entity %s: property name %q", what, in.Key, k)
			}
			switch v.(type) {
			case string, int, int64, float64, bool, []string:
			default:
				t.Errorf("%s: entity %s: %s is a %T", what, in.Key, k, v)
			}
		}
	}
	relKeys := make(map[string]bool, len(rels))
	for _, r := range rels {
		raw := encode(t, r)
		in, err := graph.ParseObject(graph.KindRelationship, raw)
		if err != nil {
			t.Fatalf("%s: relationship rejected: %v\n%s", what, err, raw)
		}
		if relKeys[in.Key] {
			t.Fatalf("%s: relationship key %q twice", what, in.Key)
		}
		relKeys[in.Key] = true
		from, to := byKey[in.FromKey], byKey[in.ToKey]
		if from == nil || to == nil {
			t.Fatalf("%s: relationship %s joins an entity not in the dataset", what, in.Key)
		}
		if want := relTypeName(in.Class[0], from["_type"].(string), to["_type"].(string)); in.Type != want {
			t.Errorf("%s: relationship %s has _type %s, want %s", what, in.Key, in.Type, want)
		}
		if want := in.FromKey + "|" + strings.ToLower(in.Class[0]) + "|" + in.ToKey; in.Key != want {
			t.Errorf("%s: relationship key %s, want %s", what, in.Key, want)
		}
	}
	return byKey
}

func TestEveryObjectIsValid(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{{Seed: 1}, {Seed: 2, Entities: 600, ChangeFraction: 0.2}, {Seed: 3, Entities: 50, ChangeFraction: 0.5}} {
		g := New(c)
		for step := range 10 {
			ents, rels := g.Step()
			checkDataset(t, fmt.Sprintf("seed %d step %d", c.Seed, step), ents, rels)
		}
	}
}

func TestWorldVariety(t *testing.T) {
	t.Parallel()
	ents, rels := New(Config{Seed: 7}).Step()
	types, classes, relTypes, relClasses := map[string]int{}, map[string]bool{}, map[string]int{}, map[string]bool{}
	for _, e := range ents {
		types[e["_type"].(string)]++
		for _, c := range e["_class"].([]string) {
			classes[c] = true
		}
	}
	for _, r := range rels {
		relTypes[r["_type"].(string)]++
		relClasses[r["_class"].(string)] = true
	}
	if len(types) < 25 {
		t.Errorf("%d entity types, want at least 25: %v", len(types), types)
	}
	if len(relTypes) < 15 {
		t.Errorf("%d relationship types, want at least 15: %v", len(relTypes), relTypes)
	}
	for _, c := range []string{"User", "Role", "AccessPolicy", "DataStore", "Host", "Firewall", "Network", "Function",
		"CodeRepo", "Team", "UserGroup", "Application", "Account", "Project", "Issue", "HostAgent", "Device",
		"Channel", "Finding", "Vulnerability"} {
		if !classes[c] {
			t.Errorf("no entity of class %s", c)
		}
	}
	for _, c := range []string{"HAS", "CONTAINS", "ASSIGNED", "USES", "PROTECTS", "OWNS", "IDENTIFIED", "EXPLOITS", "OPENED"} {
		if !relClasses[c] {
			t.Errorf("no relationship of class %s", c)
		}
	}
	if n := len(ents); n < 280 || n > 340 {
		t.Errorf("%d entities, want about 300", n)
	}
	for _, want := range []string{"aws_security_group_protects_instance", "github_team_has_user", "okta_user_assigned_application", "aws_iam_user_assigned_policy"} {
		if relTypes[want] == 0 {
			t.Errorf("no relationship of type %s", want)
		}
	}
	tagged := 0
	for _, e := range ents {
		for k := range e {
			if strings.HasPrefix(k, "tag.") {
				tagged++
				break
			}
		}
	}
	if tagged == 0 || tagged == len(ents) {
		t.Errorf("%d of %d entities have tags, want some", tagged, len(ents))
	}
}

// diff counts what changed between two datasets, by _key, comparing
// objects as JSON.
type diff struct{ created, updated, deleted int }

func diffOf(t *testing.T, before, after []map[string]any) diff {
	t.Helper()
	old := make(map[string][]byte, len(before))
	for _, o := range before {
		old[o["_key"].(string)] = encode(t, o)
	}
	var d diff
	for _, o := range after {
		k := o["_key"].(string)
		prev, ok := old[k]
		switch {
		case !ok:
			d.created++
		case !bytes.Equal(prev, encode(t, o)):
			d.updated++
		}
		delete(old, k)
	}
	d.deleted = len(old)
	return d
}

func TestStepsChangeAboutChangeFraction(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		entities int
		frac     float64
	}{{300, 0.05}, {800, 0.02}, {400, 0.2}} {
		g := New(Config{Seed: 9, Entities: tc.entities, ChangeFraction: tc.frac})
		ents, rels := g.Step()
		var sum, relSum diff
		var touched, relTouched float64
		const steps = 20
		for range steps {
			ne, nr := g.Step()
			d := diffOf(t, ents, ne)
			frac := float64(d.created+d.updated+d.deleted) / float64(len(ents))
			if math.Abs(frac-tc.frac) > tc.frac/2+0.01 {
				t.Errorf("%d entities, fraction %v: a step changed %.3f of them (%+v)", tc.entities, tc.frac, frac, d)
			}
			rd := diffOf(t, rels, nr)
			touched += frac
			relTouched += float64(rd.created+rd.updated+rd.deleted) / float64(len(rels))
			sum.created, sum.updated, sum.deleted = sum.created+d.created, sum.updated+d.updated, sum.deleted+d.deleted
			relSum.created, relSum.updated, relSum.deleted = relSum.created+rd.created, relSum.updated+rd.updated, relSum.deleted+rd.deleted
			// Survivors keep their type and class.
			old := map[string]map[string]any{}
			for _, e := range ents {
				old[e["_key"].(string)] = e
			}
			for _, e := range ne {
				if o := old[e["_key"].(string)]; o != nil && (o["_type"] != e["_type"] || !reflect.DeepEqual(o["_class"], e["_class"]) || o["createdOn"] != e["createdOn"]) {
					t.Fatalf("entity %s changed type, class or createdOn", e["_key"])
				}
			}
			ents, rels = ne, nr
		}
		t.Logf("%d entities, fraction %v: mean entity change %.3f %+v, relationship change %.3f %+v, now %d entities %d relationships",
			tc.entities, tc.frac, touched/steps, sum, relTouched/steps, relSum, len(ents), len(rels))
		if sum.created == 0 || sum.deleted == 0 || sum.updated < 3*(sum.created+sum.deleted) {
			t.Errorf("entity changes %+v: want mostly updates and some creates and deletes", sum)
		}
		if relSum.created == 0 || relSum.deleted == 0 || relSum.updated == 0 {
			t.Errorf("relationship changes %+v: want creates, updates and deletes", relSum)
		}
		if m := relTouched / steps; m < tc.frac/2 || m > 3*tc.frac {
			t.Errorf("relationships change %.3f a step, want in proportion to %v", m, tc.frac)
		}
		if n := len(ents); math.Abs(float64(n-tc.entities)) > 0.15*float64(tc.entities)+40 {
			t.Errorf("%d entities after %d steps, want about %d", n, steps, tc.entities)
		}
	}
}

func TestNoChangeWhenFractionNegative(t *testing.T) {
	t.Parallel()
	g := New(Config{Seed: 5, ChangeFraction: -1})
	e1, r1 := g.Step()
	e2, r2 := g.Step()
	if d, rd := diffOf(t, e1, e2), diffOf(t, r1, r2); d != (diff{}) || rd != (diff{}) {
		t.Errorf("ChangeFraction -1 changed entities %+v, relationships %+v", d, rd)
	}
}

func TestRelTypeName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ class, from, to, want string }{
		{"HAS", "github_team", "github_user", "github_team_has_user"},
		{"PROTECTS", "aws_security_group", "aws_instance", "aws_security_group_protects_instance"},
		{"ASSIGNED", "aws_iam_user", "aws_iam_policy", "aws_iam_user_assigned_policy"},
		{"HAS", "okta_user_group", "okta_user", "okta_user_group_has_user"},
		{"PROTECTS", "crowdstrike_sensor", "aws_instance", "crowdstrike_sensor_protects_aws_instance"},
		{"IS", "snyk_finding", "nvd_cve", "snyk_finding_is_nvd_cve"},
	} {
		if got := relTypeName(tc.class, tc.from, tc.to); got != tc.want {
			t.Errorf("relTypeName(%s, %s, %s) = %s, want %s", tc.class, tc.from, tc.to, got, tc.want)
		}
	}
}

// server is a real j1ds API over a store in a temporary directory, with
// one account and key, that records the size of every upload.
type server struct {
	url, account, key string
	store             *pebblestore.Store

	mu      sync.Mutex
	uploads []int // objects per upload request
}

func newServer(t *testing.T) *server {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: quiet})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	jobs, err := syncjobs.Open(store, store.Jobs(), syncjobs.Options{Logger: quiet})
	if err != nil {
		t.Fatalf("open sync jobs: %v", err)
	}
	t.Cleanup(jobs.Close)
	accts := store.Accounts()
	if _, err := accts.CreateAccount("synth-test", []string{accounts.EntitlementDataStreaming}); err != nil {
		t.Fatalf("create account: %v", err)
	}
	key, _, err := accts.CreateKey("synth-test", accounts.RoleAdmin)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	s := &server{account: "synth-test", key: key, store: store}
	h := api.New(api.Config{Graph: store, Log: store, Accounts: accts, Jobs: jobs, Logger: quiet})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/entities") || strings.HasSuffix(r.URL.Path, "/relationships") {
			body, _ := io.ReadAll(r.Body)
			var m map[string][]json.RawMessage
			_ = json.Unmarshal(body, &m)
			s.mu.Lock()
			s.uploads = append(s.uploads, len(m["entities"])+len(m["relationships"]))
			s.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *server) client() *Client {
	return &Client{BaseURL: s.url, Account: s.account, APIKey: s.key}
}

func TestSyncAppliesEachStep(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	g := New(Config{Seed: 11, Scope: "synth-aws-1", ChangeFraction: 0.1})
	c := s.client()
	var prevE, prevR []map[string]any
	for step := range 3 {
		ents, rels := g.Step()
		job, err := c.Sync(ctx, g.Scope(), ents, rels)
		if err != nil {
			t.Fatalf("step %d: sync: %v", step, err)
		}
		d, rd := diffOf(t, prevE, ents), diffOf(t, prevR, rels)
		got := [...]int{job.NumEntitiesCreated, job.NumEntitiesUpdated, job.NumEntitiesDeleted,
			job.NumRelationshipsCreated, job.NumRelationshipsUpdated, job.NumRelationshipsDeleted}
		want := [...]int{d.created, d.updated, d.deleted, rd.created, rd.updated, rd.deleted}
		if got != want {
			t.Errorf("step %d: job %s counts (entities c/u/d, relationships c/u/d) %v, want %v", step, job.ID, got, want)
		}
		if job.Status != StatusFinished || job.Scope != "synth-aws-1" || job.NumEntitiesUploaded != len(ents) || job.NumRelationshipsUploaded != len(rels) {
			t.Errorf("step %d: job %+v", step, job)
		}
		t.Logf("step %d: %d entities %+v, %d relationships %+v", step, len(ents), d, len(rels), rd)
		prevE, prevR = ents, rels
	}
	// The store holds the last dataset.
	for _, e := range prevE[:5] {
		_, raw, err := s.store.Get(s.account, graph.ObjectID(s.account, "synth-aws-1", e["_key"].(string)))
		if err != nil {
			t.Fatalf("get %s: %v", e["_key"], err)
		}
		var o map[string]any
		if err := json.Unmarshal(raw, &o); err != nil || o["name"] != e["name"] || o["_deleted"] != false {
			t.Errorf("stored %s is %s", e["_key"], raw)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.uploads {
		if n < 1 || n > BatchSize {
			t.Errorf("an upload carried %d objects, want 1 to %d", n, BatchSize)
		}
	}
	if len(s.uploads) < 6 {
		t.Errorf("%d uploads for three syncs of about 300 entities and 400 relationships", len(s.uploads))
	}
}

func TestSyncSurfacesErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ent := func(key string) map[string]any {
		return map[string]any{"_key": key, "_type": "synth_thing", "_class": []string{"Resource"}, "name": key}
	}

	bad := s.client()
	bad.APIKey = "j1ds_not-a-key"
	_, err := bad.Sync(ctx, "synth-err", []map[string]any{ent("thing-0000001")}, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Code == "" || ae.Message == "" {
		t.Errorf("sync with a bad key: %v, want an HTTP 401 *APIError with a code and message", err)
	}

	job, err := s.client().Sync(ctx, "synth-err", []map[string]any{ent("short")}, nil)
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(err.Error(), ae.Code) || !strings.Contains(err.Error(), "_key") {
		t.Errorf("sync with a bad key: %v, want an HTTP 400 error naming _key", err)
	}
	if job.Status != StatusAborted {
		t.Errorf("job after a rejected upload is %s, want %s", job.Status, StatusAborted)
	}

	dangling := []map[string]any{{"_key": "thing-0000001|has|thing-missing", "_type": "synth_thing_has_thing", "_class": "HAS",
		"_fromEntityKey": "thing-0000001", "_toEntityKey": "thing-missing"}}
	job, err = s.client().Sync(ctx, "synth-err", []map[string]any{ent("thing-0000001")}, dangling)
	if !errors.Is(err, ErrJobFailed) || job.Status != StatusErrorBadData || job.Error == nil || !strings.Contains(err.Error(), job.Error.Code) {
		t.Errorf("sync with a dangling relationship: job %+v, err %v; want ERROR_BAD_DATA and ErrJobFailed", job, err)
	}
}
