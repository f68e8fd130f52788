package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/j1ds/j1ds/internal/changelog"
)

// ClusterEvents are what a node hears from the other nodes (Listen).
type ClusterEvents struct {
	// Settings is called with an account whose settings were saved (on
	// any node, this one included).
	Settings func(account string)
	// Cluster is called when a node joined, released groups or left.
	Cluster func()
	// Resync is called after the listening connection was lost and made
	// again: what was sent meanwhile never arrived.
	Resync func()
}

// Wake-ups across nodes: each node LISTENs on one connection of its own.
// Commits are sent after they commit, not by NOTIFY inside the graph
// transaction: PostgreSQL serialises the commits of notifying
// transactions on one lock, which would cap the write rate of every
// account together. A broadcaster gathers this node's commits per account
// and sends them a few at a time, so at most one notification per account
// is in flight however fast it commits. A commit whose notification is
// lost (the node died between its commit and the send) is found by the
// sweep, which every sweepEvery reads the log heads that moved, and only
// when the log's sequence moved at all: an idle database costs one small
// query per sweep.
const (
	sweepEvery         = 10 * time.Second
	maxPayload         = 7000 // bytes; PostgreSQL takes up to 8000
	listenRetryMin     = 250 * time.Millisecond
	listenRetryMax     = 5 * time.Second
	broadcastRetryWait = time.Second
)

// broadcaster is this node's commits not yet sent to the others, one event
// per account (a later commit extends the event).
type broadcaster struct {
	node string
	mu   sync.Mutex
	// pending is bounded by the number of accounts that committed since
	// the last send.
	pending map[string]changelog.CommitEvent
	signal  chan struct{}
}

// Listen joins the store to the other nodes of a cluster as node: its
// commits are sent to them, theirs reach its subscribers (and Wait), and
// ev hears of settings and cluster changes. It runs until Close.
func (s *Store) Listen(node string, ev ClusterEvents) error {
	b := &broadcaster{node: node, pending: make(map[string]changelog.CommitEvent), signal: make(chan struct{}, 1)}
	ctx, cancel := s.opCtx()
	defer cancel()
	var seq int64
	if err := s.pool.QueryRow(ctx, "SELECT last_value FROM log_lsn").Scan(&seq); err != nil {
		return s.wrap("read the log's sequence", err)
	}
	// Listening before Listen returns: what is sent after it is heard.
	conn, err := s.connectListener()
	if err != nil {
		return s.wrap("listen to the other nodes", err)
	}
	s.bcast.Store(b)
	s.wg.Add(3)
	go s.broadcast(b)
	go s.listen(conn, node, ev)
	go s.sweep(seq)
	return nil
}

// connectListener opens a connection of its own that LISTENs on every
// channel.
func (s *Store) connectListener() (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	for _, ch := range []string{channelCommits, channelSettings, channelCluster} {
		if _, err := conn.Exec(cctx, "LISTEN "+ch); err != nil {
			conn.Close(context.Background())
			return nil, err
		}
	}
	return conn, nil
}

// publish queues a commit of this node for the other nodes.
func (s *Store) publish(ev changelog.CommitEvent) {
	b := s.bcast.Load()
	if b == nil {
		return
	}
	b.mu.Lock()
	if p, ok := b.pending[ev.Account]; ok {
		p.LSN = max(p.LSN, ev.LSN)
		p.CommitTime = min(p.CommitTime, ev.CommitTime)
		p.Changes += ev.Changes
		p.Bytes += ev.Bytes
		ev = p
	}
	b.pending[ev.Account] = ev
	b.mu.Unlock()
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

func (s *Store) broadcast(b *broadcaster) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-b.signal:
		}
		b.mu.Lock()
		events := b.pending
		b.pending = make(map[string]changelog.CommitEvent, len(events))
		b.mu.Unlock()
		if err := s.send(b.node, events); err != nil {
			// Put them back (a newer commit of the same account meanwhile
			// extends them) and try again shortly.
			b.mu.Lock()
			for a, ev := range events {
				if p, ok := b.pending[a]; ok {
					ev.LSN, ev.Changes, ev.Bytes = max(ev.LSN, p.LSN), ev.Changes+p.Changes, ev.Bytes+p.Bytes
				}
				b.pending[a] = ev
			}
			b.mu.Unlock()
			t := time.NewTimer(broadcastRetryWait)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			select {
			case b.signal <- struct{}{}:
			default:
			}
		}
	}
}

// send notifies the commits, as few notifications as their size allows,
// in one round trip.
func (s *Store) send(node string, events map[string]changelog.CommitEvent) error {
	var batch pgx.Batch
	var p strings.Builder
	flush := func() {
		if p.Len() > len(node)+1 {
			batch.Queue("SELECT pg_notify($1, $2)", channelCommits, p.String())
		}
		p.Reset()
		p.WriteString(node)
		p.WriteByte('\n')
	}
	flush()
	for _, ev := range events {
		line := fmt.Sprintf("%s %d %d %d %d\n", ev.Account, ev.LSN, ev.CommitTime, ev.Changes, ev.Bytes)
		if p.Len()+len(line) > maxPayload {
			flush()
		}
		p.WriteString(line)
	}
	flush()
	if batch.Len() == 0 {
		return nil
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.pool.SendBatch(ctx, &batch).Close()
}

// parseCommits reads a commits notification: the sending node, then one
// event per line.
func parseCommits(payload string) (node string, events []changelog.CommitEvent) {
	node, rest, _ := strings.Cut(payload, "\n")
	for line := range strings.Lines(rest) {
		f := strings.Fields(line)
		if len(f) != 5 {
			continue
		}
		lsn, err1 := strconv.ParseUint(f[1], 10, 64)
		ct, err2 := strconv.ParseInt(f[2], 10, 64)
		changes, err3 := strconv.Atoi(f[3])
		size, err4 := strconv.Atoi(f[4])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		events = append(events, changelog.CommitEvent{Account: f[0], LSN: lsn, CommitTime: ct, Changes: changes, Bytes: size})
	}
	return node, events
}

// listen dispatches what conn hears, making the connection again when it
// fails.
func (s *Store) listen(conn *pgx.Conn, node string, ev ClusterEvents) {
	defer s.wg.Done()
	wait := listenRetryMin
	for {
		var err error
		if conn != nil {
			err = s.dispatch(conn, node, ev)
			conn.Close(context.Background())
			if s.ctx.Err() != nil {
				return
			}
			wait = listenRetryMin
			s.log.Warn("lost the connection that hears the other nodes; making it again", slog.Any("err", err))
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if conn, err = s.connectListener(); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			wait = min(2*wait, listenRetryMax)
			continue
		}
		s.log.Info("hearing the other nodes again; reloading what may have been missed")
		if ev.Resync != nil {
			ev.Resync()
		}
	}
}

// dispatch hands what conn hears to ev and the subscribers until the
// connection fails.
func (s *Store) dispatch(conn *pgx.Conn, node string, ev ClusterEvents) error {
	for {
		n, err := conn.WaitForNotification(s.ctx)
		if err != nil {
			return err
		}
		switch n.Channel {
		case channelCommits:
			from, events := parseCommits(n.Payload)
			if from == node {
				continue // this node's own, told to its subscribers at commit
			}
			for _, e := range events {
				s.notify(e)
			}
		case channelSettings:
			if ev.Settings != nil {
				ev.Settings(n.Payload)
			}
		case channelCluster:
			if ev.Cluster != nil && n.Payload != node {
				ev.Cluster()
			}
		}
	}
}

// sweep tells the subscribers of commits whose notification was lost:
// every sweepEvery, the log heads past the log sequence's value of two
// sweeps before (a transaction takes its LSN before it commits, so one
// sweep may miss it, the next does not). The heads are read only when the
// sequence moved.
func (s *Store) sweep(seq int64) {
	defer s.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	since, last := seq, seq
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := s.opCtx()
		var cur int64
		err := s.pool.QueryRow(ctx, "SELECT last_value FROM log_lsn").Scan(&cur)
		if err == nil && cur > since {
			var events []changelog.CommitEvent
			var rows pgx.Rows
			rows, err = s.pool.Query(ctx, "SELECT account, lsn, last_commit FROM log_heads WHERE lsn > $1", since)
			if err == nil {
				events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (changelog.CommitEvent, error) {
					var ev changelog.CommitEvent
					var lsn int64
					err := r.Scan(&ev.Account, &lsn, &ev.CommitTime)
					ev.LSN = uint64(lsn)
					return ev, err
				})
			}
			for _, ev := range events {
				s.notify(ev)
			}
		}
		cancel()
		if err == nil {
			since, last = last, cur
		}
	}
}
