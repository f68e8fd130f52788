package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/j1ds/j1ds/internal/cluster"
)

// The nodes of the cluster phase (cluster.go): j1ds serve processes, what
// the bench reads of each (its API's cluster view and metrics, its CPU
// time from /proc) and how it waits for them to share the work.

// clusterNode is one j1ds serve process of the cluster phase.
type clusterNode struct {
	name    string
	cmd     *exec.Cmd
	url     string // http://ADDRESS of its API
	id      string // its id in the cluster
	logPath string
	done    chan struct{} // closed once it has exited
}

// alive reports whether the process still runs.
func (n *clusterNode) alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// kill stops the process at once (SIGKILL) and waits for it.
func (n *clusterNode) kill() {
	if n.alive() {
		_ = n.cmd.Process.Kill()
	}
	<-n.done
}

// terminate stops the process as an operator does (SIGTERM: it flushes,
// then leaves the cluster, its groups free for the others at once) and
// waits for it; after a minute it is killed.
func (n *clusterNode) terminate() error {
	if !n.alive() {
		return fmt.Errorf("%s had exited:\n%s", n.name, n.logTail())
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop %s: %w", n.name, err)
	}
	select {
	case <-n.done:
		return nil
	case <-time.After(time.Minute):
		n.kill()
		return fmt.Errorf("%s did not stop within a minute of SIGTERM:\n%s", n.name, n.logTail())
	}
}

// logTail returns the end of the node's log, for errors.
func (n *clusterNode) logTail() string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// clusterRig starts the nodes of the cluster phase and stops them all.
type clusterRig struct {
	bin, dir, opKey string
	b               *benchS3
	flushInterval   time.Duration
	leaseTTL        time.Duration
	http            *http.Client

	mu      sync.Mutex
	nodes   []*clusterNode // every node started; Close kills those still running
	started int
}

func newClusterRig(c Config, dir string, b *benchS3) (*clusterRig, error) {
	bin := c.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the j1ds binary to start nodes from: %w", err)
		}
		bin = exe
	}
	dir = filepath.Join(dir, "cluster")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &clusterRig{
		bin: bin, dir: dir, opKey: randomHex(16), b: b,
		flushInterval: c.ClusterFlushInterval, leaseTTL: c.ClusterLeaseTTL,
		http: &http.Client{Timeout: 30 * time.Second},
	}, nil
}

// Close kills every node still running.
func (r *clusterRig) Close() {
	r.mu.Lock()
	nodes := slices.Clone(r.nodes)
	r.mu.Unlock()
	for _, n := range nodes {
		n.kill()
	}
}

// stop kills nodes and forgets them.
func (r *clusterRig) stop(nodes []*clusterNode) {
	for _, n := range nodes {
		n.kill()
	}
}

// start starts a j1ds serve on the database store and waits until it
// listens and has joined the cluster; its log goes to a file of the rig's
// directory. The node is killed by Close, and by the kernel should this
// process die first (Linux).
func (r *clusterRig) start(ctx context.Context, store string) (*clusterNode, error) {
	r.mu.Lock()
	r.started++
	name := fmt.Sprintf("bench-node-%d", r.started)
	r.mu.Unlock()
	n := &clusterNode{name: name, logPath: filepath.Join(r.dir, name+".log"), done: make(chan struct{})}
	logFile, err := os.Create(n.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	n.cmd = exec.Command(r.bin, "serve",
		"--store", store,
		"--listen", "127.0.0.1:0",
		"--node-name", name,
		"--operator-key", r.opKey,
		"--log-level", "info",
		"--flush-interval", r.flushInterval.String(),
		"--lease-ttl", r.leaseTTL.String(),
		"--region", r.b.srv.Region,
		"--s3-endpoint", r.b.srv.Endpoint,
		"--platform-aws-account-id", benchWriterAccount,
	)
	// The S3 credentials, the trusted CA and nothing else of AWS or j1ds
	// from this process's environment (J1DS_STORE would name another
	// database).
	none := filepath.Join(r.dir, "none")
	for _, v := range os.Environ() {
		if !strings.HasPrefix(v, "AWS_") && !strings.HasPrefix(v, "J1DS_") {
			n.cmd.Env = append(n.cmd.Env, v)
		}
	}
	n.cmd.Env = append(n.cmd.Env,
		"AWS_ACCESS_KEY_ID="+benchWriterAccount,
		"AWS_SECRET_ACCESS_KEY="+r.b.secret,
		"AWS_CA_BUNDLE="+r.b.srv.CAFile,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+none,
		"AWS_SHARED_CREDENTIALS_FILE="+none,
	)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	setNodeProcAttr(n.cmd)
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start j1ds serve (%s): %w", r.bin, err)
	}
	r.mu.Lock()
	r.nodes = append(r.nodes, n)
	r.mu.Unlock()
	go func() {
		_ = n.cmd.Wait()
		close(n.done)
	}()
	deadline := time.Now().Add(time.Minute)
	for n.url == "" {
		if addr := servingAddr(n.logPath); addr != "" {
			n.url = "http://" + addr
			break
		}
		select {
		case <-n.done:
			return nil, fmt.Errorf("%s (%s serve) exited before it listened:\n%s", name, r.bin, n.logTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not listen within a minute:\n%s", name, n.logTail())
		}
	}
	// It listens once it has joined: its view names it.
	v, err := r.view(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s's log:\n%s", err, name, n.logTail())
	}
	n.id = v.Node
	return n, nil
}

// servingAddr returns the address of the "j1ds serving" line of a node's
// JSON log, "" before it listens.
func servingAddr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range bytes.Lines(b) {
		var l struct{ Msg, Addr string }
		if json.Unmarshal(line, &l) == nil && l.Msg == "j1ds serving" {
			return l.Addr
		}
	}
	return ""
}

// get sends an authenticated GET to a node and returns the body of a 200.
func (r *clusterRig) get(ctx context.Context, n *clusterNode, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.opKey)
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: GET %s: %w", n.name, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: GET %s: %w", n.name, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: GET %s: %s: %.300s", n.name, path, resp.Status, body)
	}
	return body, nil
}

// view returns the cluster as a node shows it (GET /operator/v1/cluster).
func (r *clusterRig) view(ctx context.Context, n *clusterNode) (cluster.View, error) {
	var v cluster.View
	body, err := r.get(ctx, n, "/operator/v1/cluster")
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return v, fmt.Errorf("%s: the cluster view: %w", n.name, err)
	}
	return v, nil
}

// metric returns the sum of the series of each of names in a node's
// /metrics (0 for a name it does not show).
func (r *clusterRig) metric(ctx context.Context, n *clusterNode, names ...string) ([]float64, error) {
	body, err := r.get(ctx, n, "/metrics")
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(names))
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		k := slices.Index(names, name)
		if k < 0 {
			continue
		}
		if strings.HasPrefix(rest, "{") {
			rest = rest[strings.LastIndexByte(rest, '}')+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: metric %s: %w", n.name, name, err)
		}
		out[k] += v
	}
	return out, nil
}

// clockTick is the unit of the CPU times of /proc/PID/stat: USER_HZ, 100
// on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpu returns the CPU time (user and system) the node's process has used.
func (n *clusterNode) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("%s: the CPU time of its process (the cluster phase reads Linux's /proc): %w", n.name, err)
	}
	// Fields after the command name (in parentheses, which may hold
	// spaces): state is field 3, utime 14 and stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: /proc/%d/stat has %d fields", n.name, n.cmd.Process.Pid, len(f)+2)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%s: /proc/%d/stat: %w", n.name, n.cmd.Process.Pid, err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// waitBalanced waits until the live nodes share every group evenly (each
// its share, none free) and have loaded the enabled accounts: their
// j1ds_cluster_owned_accounts sum to accounts.
func (r *clusterRig) waitBalanced(ctx context.Context, nodes []*clusterNode, accounts int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	share := cluster.Groups / len(nodes)
	last := ""
	for {
		v, err := r.view(ctx, nodes[0])
		if err != nil {
			return err
		}
		groups := map[string]int{}
		for _, nv := range v.Nodes {
			groups[nv.ID] = nv.Groups
		}
		ok := v.FreeGroups == 0
		owned := 0
		var counts []string
		for _, n := range nodes {
			m, err := r.metric(ctx, n, "j1ds_cluster_owned_accounts")
			if err != nil {
				return err
			}
			owned += int(m[0])
			g := groups[n.id]
			ok = ok && (g == share || g == share+1)
			counts = append(counts, fmt.Sprintf("%s: %d groups, %d accounts", n.name, g, int(m[0])))
		}
		if ok && owned == accounts {
			return nil
		}
		last = fmt.Sprintf("%d free groups; %s; want %d accounts in all", v.FreeGroups, strings.Join(counts, "; "), accounts)
		if time.Now().After(deadline) {
			return fmt.Errorf("the nodes did not share the groups and load the accounts within %s: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// balanceTimeout bounds the wait for nodes to share the groups and load
// their accounts.
const balanceTimeout = 3 * time.Minute
