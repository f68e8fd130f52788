package cluster

import (
	"context"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Groups is the number of groups accounts are hashed into. It is part of
// the database's schema (pgstore's export_groups has a row per group).
const Groups = 256

// GroupOf returns the group of an account: FNV-1a of its id modulo Groups.
func GroupOf(account string) int {
	h := fnv.New32a()
	h.Write([]byte(account))
	return int(h.Sum32() % Groups)
}

// Lease is a group's claim: its owner and the fencing token of the claim.
type Lease struct {
	Group int
	Node  string // "" when the group is free
	Token int64
}

// Node is one node of the cluster as the database sees it.
type Node struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Addr      string    `json:"address"`
	StartedAt time.Time `json:"startedAt"`
	RenewedAt time.Time `json:"renewedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Live is whether its lease has not ended, in the database's clock.
	Live bool `json:"live"`
	// Leaving is set by a node that shuts down.
	Leaving bool `json:"leaving"`
	// Accounts is the number of enabled accounts it exported at its last
	// renewal.
	Accounts int `json:"accounts"`
}

// Snapshot is the cluster as one heartbeat read it.
type Snapshot struct {
	Nodes  []Node
	Leases []Lease // one per group, in group order
}

// Store keeps the cluster's nodes and leases; every time is the store's
// own clock, so the nodes' clocks need not agree.
type Store interface {
	// Heartbeat renews self's lease for ttl (registering self when it has
	// no row, as at its first heartbeat or after its row was pruned),
	// records self.Accounts, and returns the cluster as it stands after.
	// With prune, rows of nodes whose lease ended more than PruneAfter ago
	// and that own nothing are deleted first.
	Heartbeat(ctx context.Context, self Node, ttl time.Duration, prune bool) (Snapshot, error)
	// Claim gives node the groups of want that are free or whose owner's
	// lease has ended, each with a new token, and returns those it got.
	Claim(ctx context.Context, node string, want []int) ([]Lease, error)
	// Release frees the groups of leases that node still holds with the
	// same token, and tells the other nodes.
	Release(ctx context.Context, node string, leases []Lease) error
	// Leave frees every group of node, marks it leaving and ends its
	// lease, and tells the other nodes.
	Leave(ctx context.Context, node string) error
	// Snapshot reads the cluster without renewing anything.
	Snapshot(ctx context.Context) (Snapshot, error)
}

// PruneAfter is how long a dead node stays listed before it is deleted.
const PruneAfter = 10 * time.Minute

// Exporter is what the manager drives: the exporter of this node.
type Exporter interface {
	// Forget stops exporting every account for which keep is false, at
	// once (uploads in flight are cancelled).
	Forget(keep func(account string) bool)
	// Rescan starts exporting every enabled account the node owns that it
	// does not export yet, from its saved state.
	Rescan() error
	// Accounts is the number of accounts it exports.
	Accounts() int
}

// Config configures a Manager.
type Config struct {
	// Node names this node; its ID must be unique in the cluster (New
	// picks a random one when empty).
	Node Node
	// LeaseTTL is how long a node's lease lasts unrenewed; it is renewed
	// every quarter of it. DefaultLeaseTTL when zero.
	LeaseTTL   time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultLeaseTTL is the lease of a node when Config.LeaseTTL is zero:
// renewed every 1.5 s, a dead node's groups are claimed within 7.5 s of
// its death.
const DefaultLeaseTTL = 6 * time.Second

// MinLeaseTTL is the shortest lease accepted.
const MinLeaseTTL = time.Second

// Manager keeps this node's share of the groups: it renews the node's
// lease, claims and releases groups, and tells the exporter which accounts
// it exports. Owns and Fence are safe for concurrent use.
type Manager struct {
	cfg     Config
	store   Store
	exp     Exporter
	log     *slog.Logger
	metrics *metrics
	wake    chan struct{}

	mu struct {
		sync.Mutex
		held    map[int]int64 // group → token of the claim this node holds
		owners  [Groups]string
		nodes   map[string]Node
		renewed time.Time // when the last heartbeat that renewed was sent (local monotonic clock)
		ticks   int
	}
}

// New returns the manager of a node; Start joins the cluster.
func New(store Store, cfg Config) *Manager {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Node.ID == "" {
		cfg.Node.ID = randomID()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := &Manager{cfg: cfg, store: store, log: cfg.Logger, wake: make(chan struct{}, 1)}
	m.mu.held = make(map[int]int64)
	m.mu.nodes = make(map[string]Node)
	m.metrics = newMetrics(cfg.Registerer, m)
	return m
}

func randomID() string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 12)
	for i := range b {
		b[i] = digits[rand.IntN(len(digits))]
	}
	return string(b)
}

// ID returns this node's id.
func (m *Manager) ID() string { return m.cfg.Node.ID }

// LeaseTTL returns the lease in force.
func (m *Manager) LeaseTTL() time.Duration { return m.cfg.LeaseTTL }

// Owns reports whether this node exports the account now.
func (m *Manager) Owns(account string) bool {
	_, _, ok := m.Fence(account)
	return ok
}

// Fence returns the group of an account and the token this node holds for
// it; ok is false when the node does not own the group.
func (m *Manager) Fence(account string) (group int, token int64, ok bool) {
	g := GroupOf(account)
	m.mu.Lock()
	defer m.mu.Unlock()
	token, ok = m.mu.held[g]
	return g, token, ok
}

// Owner returns the node that exported the account at the last heartbeat;
// ok is false when its group had no live owner.
func (m *Manager) Owner(account string) (Node, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.mu.owners[GroupOf(account)]
	n, ok := m.mu.nodes[id]
	return n, ok && id != ""
}

// FencedWrite counts a checkpoint write refused for a lost group.
func (m *Manager) FencedWrite() { m.metrics.fenced.Inc() }

// Start joins the cluster and takes this node's share of the free groups,
// then tells ex which accounts it exports from now on. Run keeps it.
func (m *Manager) Start(ctx context.Context, ex Exporter) error {
	m.exp = ex
	if err := m.tick(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	n, held := len(m.mu.nodes), len(m.mu.held)
	m.mu.Unlock()
	m.log.Info("joined the cluster", slog.String("node", m.cfg.Node.ID), slog.String("name", m.cfg.Node.Name),
		slog.Int("nodes", n), slog.Int("groups", held), slog.Duration("lease_ttl", m.cfg.LeaseTTL))
	return nil
}

// Wake makes Run look at the cluster now (another node joined or left).
func (m *Manager) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run renews the lease every quarter of LeaseTTL, and rebalances, until
// ctx ends.
func (m *Manager) Run(ctx context.Context) {
	every := m.cfg.LeaseTTL / 4
	t := time.NewTimer(every)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		if err := m.tick(ctx); err != nil && ctx.Err() == nil {
			failures++
			m.metrics.renewFailures.Inc()
			if failures&(failures-1) == 0 { // 1, 2, 4, 8...: bounded log volume
				m.log.Warn("could not renew this node's lease; it retries", slog.Any("err", err), slog.Int("failures", failures))
			}
		} else {
			failures = 0
		}
		t.Reset(every)
	}
}

// tick renews the lease, reconciles the groups held with the database's,
// and claims or releases groups toward this node's share.
func (m *Manager) tick(ctx context.Context) error {
	sent := time.Now()
	m.mu.Lock()
	m.mu.ticks++
	prune := m.mu.ticks%40 == 1
	m.mu.Unlock()
	self := m.cfg.Node
	if m.exp != nil {
		self.Accounts = m.exp.Accounts()
	}
	hctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL)
	snap, err := m.store.Heartbeat(hctx, self, m.cfg.LeaseTTL, prune)
	cancel()
	if err != nil {
		m.expire(sent)
		return err
	}
	m.metrics.renewals.Inc()
	// The groups the database says are this node's, with their tokens.
	held := make(map[int]int64)
	for _, l := range snap.Leases {
		if l.Node == m.cfg.Node.ID {
			held[l.Group] = l.Token
		}
	}
	var live []string
	nodes := make(map[string]Node, len(snap.Nodes))
	for _, n := range snap.Nodes {
		nodes[n.ID] = n
		if n.Live && !n.Leaving {
			live = append(live, n.ID)
		}
	}
	if !slices.Contains(live, m.cfg.Node.ID) {
		live = append(live, m.cfg.Node.ID) // just renewed
	}
	lost := m.adopt(held, snap, nodes, sent)
	if len(lost) > 0 && m.exp != nil {
		m.log.Warn("groups lost to other nodes: their accounts are exported there now", slog.Int("groups", len(lost)))
		m.exp.Forget(m.Owns)
	}
	// This node's share: Groups/n, one more for the first Groups%n by id.
	sort.Strings(live)
	share := Groups / len(live)
	if i := slices.Index(live, m.cfg.Node.ID); i < Groups%len(live) {
		share++
	}
	switch have := len(held); {
	case have < share:
		return m.claim(ctx, snap, nodes, share-have)
	case have > share:
		return m.release(ctx, held, have-share)
	}
	return nil
}

// adopt makes the database's view of this node's groups the one in force
// and returns the groups it held before and lost (claimed by another node,
// or a token that changed).
func (m *Manager) adopt(held map[int]int64, snap Snapshot, nodes map[string]Node, sent time.Time) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var lost []int
	for g, tok := range m.mu.held {
		if held[g] != tok {
			lost = append(lost, g)
		}
	}
	gained := false
	for g := range held {
		if _, ok := m.mu.held[g]; !ok {
			gained = true
		}
	}
	m.mu.held, m.mu.nodes, m.mu.renewed = held, nodes, sent
	for _, l := range snap.Leases {
		owner := l.Node
		if n, ok := nodes[owner]; !ok || !n.Live {
			owner = ""
		}
		m.mu.owners[l.Group] = owner
	}
	m.metrics.lost.Add(float64(len(lost)))
	if gained && m.exp != nil {
		// Groups the database still gives this node after its own lease
		// had lapsed locally (expire): take their accounts up again.
		go m.rescan()
	}
	return lost
}

// expire drops every group once this node cannot have renewed its lease
// within LeaseTTL (the database may give its groups to others by now): the
// exporter stops at once rather than at its next refused write.
func (m *Manager) expire(sent time.Time) {
	m.mu.Lock()
	stale := len(m.mu.held) > 0 && !m.mu.renewed.IsZero() && sent.Sub(m.mu.renewed) >= m.cfg.LeaseTTL
	if stale {
		m.log.Warn("this node's lease has lapsed: it stops exporting until it renews", slog.Int("groups", len(m.mu.held)))
		m.mu.held = make(map[int]int64)
	}
	m.mu.Unlock()
	if stale && m.exp != nil {
		m.exp.Forget(m.Owns)
	}
}

func (m *Manager) rescan() {
	if err := m.exp.Rescan(); err != nil {
		m.log.Error("could not load the accounts of claimed groups; retried at the next renewal", slog.Any("err", err))
		m.mu.Lock()
		m.mu.held = make(map[int]int64) // claimed again (adopted) at the next tick
		m.mu.Unlock()
	}
}

// claim takes up to n groups, free ones first, then those of dead nodes.
func (m *Manager) claim(ctx context.Context, snap Snapshot, nodes map[string]Node, n int) error {
	var free, orphaned []int
	for _, l := range snap.Leases {
		switch owner, ok := nodes[l.Node]; {
		case l.Node == "":
			free = append(free, l.Group)
		case !ok || !owner.Live || owner.Leaving:
			orphaned = append(orphaned, l.Group)
		}
	}
	// Nodes claiming at once pick different groups, mostly.
	rand.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	rand.Shuffle(len(orphaned), func(i, j int) { orphaned[i], orphaned[j] = orphaned[j], orphaned[i] })
	want := append(free, orphaned...)
	if len(want) == 0 {
		return nil
	}
	want = want[:min(n, len(want))]
	cctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/2)
	got, err := m.store.Claim(cctx, m.cfg.Node.ID, want)
	cancel()
	if err != nil {
		return err
	}
	if len(got) == 0 {
		return nil
	}
	takeovers := 0
	m.mu.Lock()
	for _, l := range got {
		m.mu.held[l.Group] = l.Token
		if prev := snap.Leases[l.Group].Node; prev != "" && prev != m.cfg.Node.ID {
			takeovers++
		}
		m.mu.owners[l.Group] = m.cfg.Node.ID
	}
	m.mu.Unlock()
	m.metrics.takeovers.Add(float64(takeovers))
	m.log.Info("claimed export groups", slog.Int("groups", len(got)), slog.Int("from_dead_nodes", takeovers))
	if m.exp != nil {
		if err := m.exp.Rescan(); err != nil {
			m.mu.Lock()
			for _, l := range got {
				delete(m.mu.held, l.Group) // adopted again at the next tick
			}
			m.mu.Unlock()
			return err
		}
	}
	return nil
}

// release gives up n groups: the exporter stops them first, then the
// database frees them for the node that needs them.
func (m *Manager) release(ctx context.Context, held map[int]int64, n int) error {
	groups := make([]int, 0, len(held))
	for g := range held {
		groups = append(groups, g)
	}
	rand.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
	leases := make([]Lease, 0, n)
	m.mu.Lock()
	for _, g := range groups[:n] {
		leases = append(leases, Lease{Group: g, Node: m.cfg.Node.ID, Token: held[g]})
		delete(m.mu.held, g)
	}
	m.mu.Unlock()
	if m.exp != nil {
		m.exp.Forget(m.Owns)
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/2)
	defer cancel()
	if err := m.store.Release(rctx, m.cfg.Node.ID, leases); err != nil {
		return err
	}
	m.log.Info("released export groups to other nodes", slog.Int("groups", len(leases)))
	return nil
}

// Leave gives up every group and ends this node's lease, so the others
// take its accounts at once; call it after the exporter's final flush.
func (m *Manager) Leave(ctx context.Context) error {
	m.mu.Lock()
	m.mu.held = make(map[int]int64)
	m.mu.Unlock()
	if err := m.store.Leave(ctx, m.cfg.Node.ID); err != nil {
		return err
	}
	m.log.Info("left the cluster: its groups are free for the other nodes", slog.String("node", m.cfg.Node.ID))
	return nil
}

// View is the cluster as GET /operator/v1/cluster shows it.
type View struct {
	// Node is the id of the node that answers.
	Node            string     `json:"node"`
	Groups          int        `json:"groups"`
	LeaseTTLSeconds float64    `json:"leaseTtlSeconds"`
	Nodes           []NodeView `json:"nodes"`
	// FreeGroups are groups no live node owns: their accounts wait for a
	// claim (for at most a lease after their owner died).
	FreeGroups int `json:"freeGroups"`
}

// NodeView is a node and what it owns.
type NodeView struct {
	Node
	Groups int `json:"groups"`
}

// View reads the cluster from the store.
func (m *Manager) View(ctx context.Context) (View, error) {
	snap, err := m.store.Snapshot(ctx)
	if err != nil {
		return View{}, err
	}
	v := View{Node: m.cfg.Node.ID, Groups: Groups, LeaseTTLSeconds: m.cfg.LeaseTTL.Seconds(), Nodes: []NodeView{}}
	owned := make(map[string]int)
	live := make(map[string]bool)
	for _, n := range snap.Nodes {
		live[n.ID] = n.Live
	}
	for _, l := range snap.Leases {
		if l.Node != "" && live[l.Node] {
			owned[l.Node]++
		} else {
			v.FreeGroups++
		}
	}
	for _, n := range snap.Nodes {
		v.Nodes = append(v.Nodes, NodeView{Node: n, Groups: owned[n.ID]})
	}
	return v, nil
}
