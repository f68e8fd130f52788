package verify

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/graph"
)

// Kind names a class of violation. The names are stable: they appear in
// the report and its JSON.
type Kind string

// The violations verify reports.
const (
	KindBadKey        Kind = "bad-key"             // the key does not follow the layout
	KindKeyTime       Kind = "key-time"            // the key's time is not its first record's commit time
	KindBadGzip       Kind = "bad-gzip"            // the body is not a valid gzip stream
	KindEmptyObject   Kind = "empty-object"        // an object with no record
	KindBadRecord     Kind = "bad-record"          // a line that is not a record of the format
	KindWrongAccount  Kind = "wrong-account"       // properties._accountId is another account
	KindWrongLabels   Kind = "wrong-labels"        // labels do not follow _class and _type
	KindDeleteFlags   Kind = "delete-flags"        // _deleted/_endOn disagree with the operation
	KindOutOfOrder    Kind = "out-of-order"        // a commit time before the previous record's
	KindVersionGap    Kind = "version-gap"         // _version skipped a value within a period
	KindVersionDup    Kind = "version-duplicate"   // _version repeated or went back within a period
	KindBadSequence   Kind = "bad-sequence"        // an operation impossible after the previous one
	KindOutsidePeriod Kind = "outside-period"      // committed while streaming was disabled
	KindMissing       Kind = "missing-from-bucket" // --compare: live in j1ds, no record in the bucket
	KindExtra         Kind = "extra-in-bucket"     // --compare: live in the bucket, unknown to j1ds
	KindDiffers       Kind = "differs-from-store"  // --compare: the last record differs from j1ds's state
)

// Violation is one broken rule. Key and Line (1-based) locate the record
// or object; Line is 0 for a whole object, Key empty for an object only
// j1ds has.
type Violation struct {
	Kind   Kind   `json:"kind"`
	Key    string `json:"key,omitempty"`
	Line   int    `json:"line,omitempty"`
	ID     string `json:"id,omitempty"`
	Detail string `json:"detail"`
}

func (v Violation) String() string {
	loc := v.Key
	if loc == "" {
		loc = "(not in the bucket)"
	} else if v.Line > 0 {
		loc = fmt.Sprintf("%s:%d", v.Key, v.Line)
	}
	return fmt.Sprintf("%s: %s: %s", loc, v.Kind, v.Detail)
}

// Source is where the objects are read from: a bucket or a local copy.
type Source interface {
	// List returns every key under prefix in byte order (S3's order).
	List(ctx context.Context, prefix string) ([]string, error)
	// Read returns the whole stored body of the object at key.
	Read(ctx context.Context, key string) ([]byte, error)
	// String names the source in the report.
	String() string
}

// Store is the j1ds graph that Compare diffs the rebuilt graph against.
type Store interface {
	// List calls fn with each live object of kind in the account, as the
	// REST API answers it (the object's full state).
	List(ctx context.Context, kind graph.Kind, fn func(props []byte) error) error
	// Get returns the object with id, deleted ones too (with _deleted
	// true); found is false when j1ds has no such object of kind.
	Get(ctx context.Context, kind graph.Kind, id string) (props []byte, found bool, err error)
}

// Config is what one verification checks.
type Config struct {
	// Account whose objects are checked (under Prefix(Account)).
	Account string
	Source  Source
	// Suffix the keys must end in; empty accepts each of Suffixes.
	Suffix string
	// Periods are the account's enabled periods and Gaps its retention
	// gaps (the data-streaming status). Without periods the whole stream
	// is checked as one period.
	Periods []Period
	Gaps    []Gap
	// Store, when set, is compared with the graph rebuilt from the records.
	Store Store
	// MaxViolations is how many violations the report lists (all are
	// counted); default 100.
	MaxViolations int
	// Parallel is how many objects are read ahead at once; default 4.
	// Memory holds up to this many object bodies.
	Parallel int
	// Progress, when set, receives progress as objects are read: redrawn
	// in place when ProgressTerminal, else a line every few seconds.
	Progress         io.Writer
	ProgressTerminal bool
	// Notes are added to the report as they are.
	Notes []string
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if err := accounts.ValidateID(c.Account); err != nil {
		errs = append(errs, fmt.Errorf("account: %w", err))
	}
	if c.Source == nil {
		errs = append(errs, errors.New("source: name a bucket or a directory"))
	}
	if c.Suffix != "" && c.Suffix != Suffixes[0] && c.Suffix != Suffixes[1] {
		errs = append(errs, fmt.Errorf("suffix %q is not .jsonl or .jsonl.gz", c.Suffix))
	}
	if c.MaxViolations < 0 || c.Parallel < 0 {
		errs = append(errs, errors.New("max violations and parallel must not be negative"))
	}
	return errors.Join(errs...)
}

// idState is what is kept per object id: the last version seen, in which
// period, and (for Compare) the last record's properties and place.
type idState struct {
	version int64
	period  int32
	kind    graph.Kind
	deleted bool
	listed  bool // Compare: j1ds listed it
	obj     int32
	line    int32
	props   []byte // Compare only
}

// checker runs one verification.
type checker struct {
	cfg     Config
	rep     *Report
	periods *periods
	keys    []string
	ids     map[[16]byte]*idState
	lastMs  int64 // the latest commit time seen so far
	lastObj int   // and where: object and line
	lastN   int
	lineBuf []byte
}

// maxLine bounds one line: a record holds one object of at most
// graph.MaxObjectBytes, plus its labels and envelope.
const maxLine = 4 * graph.MaxObjectBytes

// Run reads and checks every object of the account and returns the
// report. An error means the check could not be completed (the source or
// j1ds failed); violations are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxViolations == 0 {
		cfg.MaxViolations = 100
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 4
	}
	c := &checker{
		cfg:     cfg,
		periods: newPeriods(cfg.Periods, cfg.Gaps),
		ids:     make(map[[16]byte]*idState),
	}
	c.rep = newReport(cfg, c.periods)
	keys, err := cfg.Source.List(ctx, Prefix(cfg.Account))
	if err != nil {
		return nil, fmt.Errorf("list objects under %s: %w", Prefix(cfg.Account), err)
	}
	c.keys = keys
	prog := newProgress(cfg.Progress, cfg.ProgressTerminal, len(keys))
	err = readAhead(ctx, cfg.Source, keys, cfg.Parallel, func(i int, body []byte) error {
		c.object(i, body)
		prog.update(i + 1)
		return nil
	})
	prog.done()
	if err != nil {
		return nil, err
	}
	c.rep.IDs = len(c.ids)
	if cfg.Store != nil {
		if err := c.compare(ctx); err != nil {
			return nil, err
		}
	}
	c.rep.finish()
	return c.rep, nil
}

func (c *checker) violate(kind Kind, obj, line int, id, format string, args ...any) {
	v := Violation{Kind: kind, Line: line, ID: id, Detail: fmt.Sprintf(format, args...)}
	if obj >= 0 {
		v.Key = c.keys[obj]
	}
	c.rep.add(v, c.cfg.MaxViolations)
}

// object checks one object: its key, its gzip stream and each record.
func (c *checker) object(obj int, body []byte) {
	key := c.keys[obj]
	c.rep.Objects++
	keyMicros, err := parseKey(key, c.cfg.Account, c.cfg.Suffix)
	if err != nil {
		c.violate(KindBadKey, obj, 0, "", "key %v", err)
		keyMicros = -1
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		c.violate(KindBadGzip, obj, 0, "", "the body (%d bytes) is not gzip data: %v", len(body), err)
		return
	}
	br := bufio.NewReaderSize(zr, 64<<10)
	n := 0
loop:
	for {
		line, err := c.readLine(br)
		switch {
		case err == nil:
			n++
			c.line(obj, n, line, keyMicros)
		case errors.Is(err, errLongLine):
			n++
			c.violate(KindBadRecord, obj, n, "", "line longer than %d bytes", maxLine)
		case err == io.EOF:
			if len(line) > 0 {
				n++
				c.violate(KindBadRecord, obj, n, "", "the last line does not end in a newline")
				c.line(obj, n, line, keyMicros)
			}
			break loop
		default:
			// A partial line cut by the error is not checked.
			c.violate(KindBadGzip, obj, n+1, "", "the gzip stream is broken after %d complete lines: %v", n, err)
			return
		}
	}
	if n == 0 {
		c.violate(KindEmptyObject, obj, 0, "", "the object holds no record; j1ds writes no object when nothing changed")
	}
}

var errLongLine = errors.New("line too long")

// readLine returns the next line without its newline. At the end of the
// stream it returns the unterminated rest (maybe empty) and io.EOF. A line
// over maxLine is skipped with errLongLine.
func (c *checker) readLine(br *bufio.Reader) ([]byte, error) {
	c.lineBuf = c.lineBuf[:0]
	for {
		frag, err := br.ReadSlice('\n')
		if len(c.lineBuf)+len(frag) > maxLine {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			return []byte{'x'}, errLongLine
		}
		c.lineBuf = append(c.lineBuf, frag...)
		switch {
		case err == nil:
			return c.lineBuf[:len(c.lineBuf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return c.lineBuf, err
		}
	}
}

// line checks one record.
func (c *checker) line(obj, n int, line []byte, keyMicros int64) {
	if len(line) == 0 {
		c.violate(KindBadRecord, obj, n, "", "empty line")
		return
	}
	r, probs, ok := parseRecord(line, c.cfg.Account)
	for _, p := range probs {
		c.violate(p.kind, obj, n, r.id, "%s", p.detail)
	}
	if !ok {
		return
	}
	c.rep.count(r)

	// Order: keys sorted are commit order, and the key names the commit
	// time of its object's first record.
	if n == 1 && keyMicros >= 0 && keyMicros/1000 != r.commitMs {
		c.violate(KindKeyTime, obj, n, r.id, "the key names commit time %s, its first record was committed at %s",
			fmtMicros(keyMicros), fmtMs(r.commitMs))
	}
	if r.commitMs < c.lastMs {
		c.violate(KindOutOfOrder, obj, n, r.id, "committed at %s, before the record at %s:%d (%s): keys in order are not commit order",
			fmtMs(r.commitMs), c.keys[c.lastObj], c.lastN, fmtMs(c.lastMs))
	} else {
		c.lastMs, c.lastObj, c.lastN = r.commitMs, obj, n
	}

	pi, inside := c.periods.find(r.commitMs)
	c.rep.Periods[pi].Records++
	if !inside {
		c.violate(KindOutsidePeriod, obj, n, r.id, "committed at %s, outside every enabled period: changes made while streaming is disabled are not exported",
			fmtMs(r.commitMs))
	}

	s, seen := c.ids[r.uid]
	advance := true
	switch {
	case !seen:
		s = &idState{}
		c.ids[r.uid] = s
		if r.version > 1 {
			c.rep.PredateStreaming++
		}
		c.startSequence(obj, n, r)
	case int(s.period) != pi:
		// A new period: the version may jump, as changes made while
		// disabled were not exported.
		c.startSequence(obj, n, r)
	default:
		advance = c.continueSequence(obj, n, r, s, pi)
	}
	if advance {
		s.version, s.period = r.version, int32(pi)
	}
	// The rebuilt graph takes the last record of each id, as a consumer
	// replaying the stream would.
	s.kind, s.deleted, s.obj, s.line = r.kind, r.deleted, int32(obj), int32(n)
	if c.cfg.Store != nil {
		s.props = append(s.props[:0], r.props...)
	}
}

// startSequence checks the first record of an object id in a period.
func (c *checker) startSequence(obj, n int, r record) {
	if r.op != graph.OpCreate && r.version == 1 {
		c.violate(KindBadSequence, obj, n, r.id, "%s: a %s at version 1; version 1 is always a create", r.what(), opName(r.op))
	}
}

// continueSequence checks a record against the previous one of the same
// object id in the same period. It reports false for a version that does
// not move the sequence on (a repeat).
func (c *checker) continueSequence(obj, n int, r record, s *idState, pi int) bool {
	want := s.version + 1
	switch {
	case r.version < want:
		c.violate(KindVersionDup, obj, n, r.id, "%s: version %d after version %d (want %d): a change repeated or out of order",
			r.what(), r.version, s.version, want)
		return false
	case r.version > want:
		missing := fmt.Sprintf("version %d is missing", want)
		if r.version > want+1 {
			missing = fmt.Sprintf("versions %d to %d are missing", want, r.version-1)
		}
		c.violate(KindVersionGap, obj, n, r.id, "%s: version %d after version %d: %s%s",
			r.what(), r.version, s.version, missing, c.periods.gapNote(pi))
		return true
	}
	switch {
	case r.kind != s.kind:
		c.violate(KindBadSequence, obj, n, r.id, "%s: was a %s", r.what(), s.kind)
	case s.deleted && r.op != graph.OpCreate:
		c.violate(KindBadSequence, obj, n, r.id, "%s: a %s after its delete; only a create can follow a delete", r.what(), opName(r.op))
	case !s.deleted && r.op == graph.OpCreate:
		c.violate(KindBadSequence, obj, n, r.id, "%s: a create of a live object (version %d)", r.what(), s.version)
	}
	return true
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }

func fmtMicros(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.000000Z")
}

// readAhead reads the objects at keys with up to parallel reads in flight
// and calls fn with each body in key order. It stops at the first read
// error, or fn's, and returns it after every read has ended.
func readAhead(ctx context.Context, src Source, keys []string, parallel int, fn func(i int, body []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		body []byte
		err  error
	}
	results := make([]chan result, len(keys))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for i, key := range keys {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				b, err := src.Read(ctx, key)
				if err != nil {
					err = fmt.Errorf("read %s: %w", key, err)
				}
				results[i] <- result{b, err}
			})
		}
	})
	for i := range keys {
		var r result
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-slots
		if r.err != nil {
			return r.err
		}
		if err := fn(i, r.body); err != nil {
			return err
		}
	}
	return nil
}
