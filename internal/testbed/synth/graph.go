package synth

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultEntities       = 300
	DefaultChangeFraction = 0.05
	DefaultTick           = time.Minute
)

// DefaultStart is the simulated time of the first Step when Config.Start
// is zero.
var DefaultStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Config describes a synthetic world. The zero value of every field but
// Seed means its default.
type Config struct {
	// Seed determines the world: the same Config gives the same datasets.
	Seed int64
	// Scope is the integration instance id the world is synced as (the
	// job's scope), e.g. "synth-aws-1"; default "synth-<seed>". It does not
	// change the world's content.
	Scope string
	// Entities is the approximate number of live entities (default 300).
	// The world always holds at least one entity of every type.
	Entities int
	// ChangeFraction is the fraction of the entities each Step after the
	// first touches (default 0.05): mostly property updates, a few creates
	// and deletes. Relationships churn in proportion. Negative means no
	// change at all; values above 1 count as 1.
	ChangeFraction float64
	// Start is the simulated time of the first Step (default DefaultStart)
	// and Tick the simulated time between two Steps (default one minute).
	// Timestamps in the data (createdOn, updatedOn, lastSeenOn...) follow
	// this clock, never the wall clock.
	Start time.Time
	Tick  time.Duration
}

func (c Config) withDefaults() Config {
	if c.Scope == "" {
		c.Scope = "synth-" + strconv.FormatInt(c.Seed, 10)
	}
	if c.Entities <= 0 {
		c.Entities = DefaultEntities
	}
	switch {
	case c.ChangeFraction == 0:
		c.ChangeFraction = DefaultChangeFraction
	case c.ChangeFraction < 0:
		c.ChangeFraction = 0
	case c.ChangeFraction > 1:
		c.ChangeFraction = 1
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Tick <= 0 {
		c.Tick = DefaultTick
	}
	return c
}

// Graph is a simulated integration's view of the world. It is not safe for
// concurrent use.
type Graph struct {
	cfg   Config
	rng   *rand.Rand
	now   int64 // simulated epoch ms
	steps int

	// The world's tenants at each provider.
	company, domain, acct, sub, project, org, okta, jira, slack string

	ents   list[*entity]
	byType []list[*entity] // by entityType.idx
	rels   list[*relationship]
	// relsPerEntity is the initial world's relationship density.
	relsPerEntity float64
}

type entity struct {
	t     *entityType
	key   string
	id    ident
	props map[string]any  // the uploaded object, metadata included
	rels  []*relationship // relationships from or to it, oldest first
}

func (e *entity) objKey() string { return e.key }

type relationship struct {
	rt       *relType
	key      string
	from, to *entity
	props    map[string]any
}

func (r *relationship) objKey() string { return r.key }

// owner returns the end of r that owns it (see relType).
func (r *relationship) owner() *entity {
	if r.rt.ownedByTo {
		return r.to
	}
	return r.from
}

// New returns the world of c. It builds nothing until the first Step.
func New(c Config) *Graph {
	c = c.withDefaults()
	g := &Graph{
		cfg:    c,
		rng:    rand.New(rand.NewPCG(uint64(c.Seed), 0x9e3779b97f4a7c15)),
		now:    c.Start.UnixMilli(),
		byType: make([]list[*entity], len(entityTypes)),
	}
	g.company = pick(g, companies)
	g.domain = g.company + ".com"
	g.acct = strconv.Itoa(1+g.rng.IntN(9)) + g.digits(11)
	g.sub = g.uuid()
	g.project = g.company + "-prod-" + g.digits(6)
	g.org = g.company + "-eng"
	g.okta = g.company + ".okta.com"
	g.jira = g.company + ".atlassian.net"
	g.slack = "T" + strings.ToUpper(g.alnum(10))
	return g
}

// Scope returns the scope the world is synced as.
func (g *Graph) Scope() string { return g.cfg.Scope }

// Now returns the simulated time of the last Step.
func (g *Graph) Now() time.Time { return time.UnixMilli(g.now).UTC() }

// Step advances the simulated world one tick and returns the full current
// dataset, as an integration would upload it to a DIFF job: entities as
// flat objects {"_key","_type","_class",...properties} and relationships
// that add "_fromEntityKey" and "_toEntityKey". The first Step returns the
// initial world. The returned maps and slices belong to the caller.
func (g *Graph) Step() (entities, relationships []map[string]any) {
	if g.steps == 0 {
		g.build()
	} else {
		g.now += g.cfg.Tick.Milliseconds()
		g.change()
	}
	g.steps++
	entities = make([]map[string]any, len(g.ents.items))
	for i, e := range g.ents.items {
		entities[i] = cloneObject(e.props)
	}
	relationships = make([]map[string]any, len(g.rels.items))
	for i, r := range g.rels.items {
		relationships[i] = cloneObject(r.props)
	}
	return entities, relationships
}

func cloneObject(m map[string]any) map[string]any {
	out := maps.Clone(m)
	for k, v := range out {
		if s, ok := v.([]string); ok {
			out[k] = slices.Clone(s)
		}
	}
	return out
}

// build creates the initial world: every type's share of the entities,
// then every relationship type's links.
func (g *Graph) build() {
	total := 0
	for _, t := range entityTypes {
		total += t.weight
	}
	for _, t := range entityTypes {
		n := t.fixed
		if n == 0 {
			n = max(1, int(math.Round(float64(g.cfg.Entities*t.weight)/float64(total))))
		}
		for range n {
			g.insert(g.newEntity(t, true))
		}
	}
	for _, rt := range relTypes {
		for _, owner := range g.byType[rt.ownerT.idx].items {
			g.linkOwner(rt, owner, rt.min+g.rng.IntN(rt.max-rt.min+1))
		}
	}
	g.relsPerEntity = float64(g.rels.len()) / float64(g.ents.len())
}

// change applies one tick of churn: entity deletes, creates and updates,
// then relationship deletes, creates and updates.
func (g *Graph) change() {
	frac := g.cfg.ChangeFraction
	if frac == 0 {
		return
	}
	live := g.ents.len()
	n := max(1, int(math.Round(frac*float64(live))))
	creates, deletes := 0, 0
	if n >= 3 {
		creates = max(1, n/12)
		deletes = creates
		// Steer the population back towards the configured size.
		switch {
		case live > g.cfg.Entities:
			creates--
		case live < g.cfg.Entities:
			deletes--
		}
	}
	updates := n - creates - deletes
	touched := make(map[string]bool, n)
	for range deletes {
		for range 20 {
			e := g.ents.pick(g.rng)
			if e.t.fixed > 0 || g.byType[e.t.idx].len() <= 1 || touched[e.key] {
				continue
			}
			touched[e.key] = true
			g.deleteEntity(e)
			break
		}
	}
	for range creates {
		e := g.newEntity(g.pickType(), false)
		touched[e.key] = true
		g.insert(e)
		g.linkNew(e)
	}
	for range updates {
		for range 20 {
			e := g.ents.pick(g.rng)
			if touched[e.key] {
				continue
			}
			touched[e.key] = true
			g.updateEntity(e)
			break
		}
	}
	g.churnRelationships(frac)
}

func (g *Graph) churnRelationships(frac float64) {
	m := int(math.Round(frac * float64(g.rels.len())))
	if m == 0 && g.rels.len() > 0 {
		m = 1
	}
	ups := m / 2
	adds := (m - ups) / 2
	dels := m - ups - adds
	// Steer the density back towards the initial world's: entity deletes
	// remove relationships that creates do not all give back.
	if want := int(g.relsPerEntity * float64(g.ents.len())); want > g.rels.len() {
		adds += min(want-g.rels.len(), m/2+1)
	} else {
		dels += min(g.rels.len()-want, m/2+1)
	}
	touched := make(map[string]bool, m)
	for range dels {
		for range 20 {
			r := g.rels.pick(g.rng)
			if g.owned(r.rt, r.owner()) <= r.rt.min {
				continue
			}
			touched[r.key] = true
			g.unlink(r)
			break
		}
	}
	for range adds {
		for range 20 {
			rt := relTypes[g.rng.IntN(len(relTypes))]
			owner := g.byType[rt.ownerT.idx].pick(g.rng)
			if g.owned(rt, owner) >= rt.max {
				continue
			}
			if r := g.link(rt, owner, g.byType[rt.otherT.idx].pick(g.rng)); r != nil {
				touched[r.key] = true
				break
			}
		}
	}
	for range ups {
		for range 20 {
			r := g.rels.pick(g.rng)
			if touched[r.key] || len(r.rt.mutable) == 0 {
				continue
			}
			touched[r.key] = true
			f := r.rt.mutable[g.rng.IntN(len(r.rt.mutable))]
			r.props[f.name] = generators[f.kind](g, &r.from.id, f.args, r.props[f.name])
			break
		}
	}
}

// pickType picks the type of a new entity by weight.
func (g *Graph) pickType() *entityType {
	n := g.rng.IntN(totalWeight)
	for _, t := range entityTypes {
		if t.fixed > 0 {
			continue
		}
		if n < t.weight {
			return t
		}
		n -= t.weight
	}
	panic("unreachable")
}

// newEntity makes an entity of type t with a key no live entity has.
// initial entities have a history; later ones were just created.
func (g *Graph) newEntity(t *entityType, initial bool) *entity {
	var id ident
	var key string
	for attempt := 0; ; attempt++ {
		id = g.ident(t)
		key = g.expand(t.key, &id)
		if attempt >= 20 {
			key += "-" + g.alnum(6)
		}
		if !g.ents.has(key) {
			break
		}
	}
	created := g.now - g.rng.Int64N(g.cfg.Tick.Milliseconds()+1)
	updated := created
	if initial {
		created = g.now - dayMs - g.rng.Int64N(3*365*dayMs)
		updated = created + g.rng.Int64N(g.now-created)
	}
	p := make(map[string]any, 8+len(t.fields))
	p["_key"], p["_type"], p["_class"] = key, t.typ, t.class
	p["name"], p["displayName"] = id.name, id.display
	p["createdOn"], p["updatedOn"] = created, updated
	if t.link != "" {
		p["webLink"] = g.expand(t.link, &id)
	}
	if strings.Contains(t.key, "{region}") {
		p["region"] = id.region
	}
	for _, f := range t.fields {
		p[f.name] = generators[f.kind](g, &id, f.args, nil)
	}
	if t.tagged {
		if g.rng.IntN(10) < 6 {
			p["tag.Environment"] = id.env
		}
		if g.rng.IntN(2) == 0 {
			p["tag.Owner"] = g.randomEmail()
		}
		if g.rng.IntN(10) < 4 {
			p["tag.CostCenter"] = fmt.Sprintf("cc-%04d", g.rng.IntN(10000))
		}
	}
	return &entity{t: t, key: key, id: id, props: p}
}

func (g *Graph) insert(e *entity) {
	g.ents.add(e)
	g.byType[e.t.idx].add(e)
}

// linkNew gives a new entity its relationships: the ones it owns, and now
// and then one from an owner of the other side.
func (g *Graph) linkNew(e *entity) {
	for _, rt := range relTypes {
		if rt.ownerT == e.t {
			g.linkOwner(rt, e, rt.min+g.rng.IntN(rt.max-rt.min+1))
		}
		if rt.otherT == e.t && g.rng.IntN(2) == 0 {
			if owner := g.byType[rt.ownerT.idx].pick(g.rng); g.owned(rt, owner) < rt.max {
				g.link(rt, owner, e)
			}
		}
	}
}

func (g *Graph) updateEntity(e *entity) {
	if m := e.t.mutable; len(m) > 0 {
		k := 1 + g.rng.IntN(min(3, len(m)))
		for _, i := range g.rng.Perm(len(m))[:k] {
			f := m[i]
			e.props[f.name] = generators[f.kind](g, &e.id, f.args, e.props[f.name])
		}
	}
	e.props["updatedOn"] = g.now
}

func (g *Graph) deleteEntity(e *entity) {
	for _, r := range slices.Clone(e.rels) {
		g.unlink(r)
	}
	g.ents.remove(e.key)
	g.byType[e.t.idx].remove(e.key)
}

// linkOwner links owner to up to k entities of the other side.
func (g *Graph) linkOwner(rt *relType, owner *entity, k int) {
	others := &g.byType[rt.otherT.idx]
	for try := 0; k > 0 && try < 3*k+3 && others.len() > 0; try++ {
		if g.link(rt, owner, others.pick(g.rng)) != nil {
			k--
		}
	}
}

// owned counts the relationships of type rt that owner owns.
func (g *Graph) owned(rt *relType, owner *entity) int {
	n := 0
	for _, r := range owner.rels {
		if r.rt == rt && r.owner() == owner {
			n++
		}
	}
	return n
}

// link adds a relationship of type rt between owner and other, unless it
// exists already; it returns nil then.
func (g *Graph) link(rt *relType, owner, other *entity) *relationship {
	from, to := owner, other
	if rt.ownedByTo {
		from, to = other, owner
	}
	key := from.key + "|" + strings.ToLower(rt.class) + "|" + to.key
	if from == to || g.rels.has(key) {
		return nil
	}
	p := make(map[string]any, 6+len(rt.fields))
	p["_key"], p["_type"], p["_class"] = key, rt.typ, rt.class
	p["_fromEntityKey"], p["_toEntityKey"] = from.key, to.key
	p["displayName"] = rt.class
	for _, f := range rt.fields {
		p[f.name] = generators[f.kind](g, &from.id, f.args, nil)
	}
	r := &relationship{rt: rt, key: key, from: from, to: to, props: p}
	g.rels.add(r)
	from.rels = append(from.rels, r)
	to.rels = append(to.rels, r)
	return r
}

func (g *Graph) unlink(r *relationship) {
	g.rels.remove(r.key)
	drop := func(rs []*relationship) []*relationship {
		return slices.DeleteFunc(rs, func(x *relationship) bool { return x == r })
	}
	r.from.rels = drop(r.from.rels)
	r.to.rels = drop(r.to.rels)
}

// list is a set of objects by key that can pick a random member in O(1).
// Removal moves the last member into the gap, so the order is arbitrary
// but deterministic.
type list[T interface{ objKey() string }] struct {
	items []T
	at    map[string]int
}

func (l *list[T]) len() int { return len(l.items) }

func (l *list[T]) has(key string) bool {
	_, ok := l.at[key]
	return ok
}

func (l *list[T]) add(x T) {
	if l.at == nil {
		l.at = make(map[string]int)
	}
	l.at[x.objKey()] = len(l.items)
	l.items = append(l.items, x)
}

func (l *list[T]) remove(key string) {
	i, ok := l.at[key]
	if !ok {
		return
	}
	last := len(l.items) - 1
	if i != last {
		l.items[i] = l.items[last]
		l.at[l.items[i].objKey()] = i
	}
	var zero T
	l.items[last] = zero
	l.items = l.items[:last]
	delete(l.at, key)
}

// pick returns a random member; the list must not be empty.
func (l *list[T]) pick(r *rand.Rand) T { return l.items[r.IntN(len(l.items))] }
