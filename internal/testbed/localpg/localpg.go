// Package localpg starts a real PostgreSQL server for tests and the bench:
// Debian's postgresql package, a cluster made by initdb in a temporary
// directory, listening on a loopback port only, stopped by Stop. Running as
// root (CI does), PostgreSQL refuses to start, so the server then runs as
// the unprivileged user "postgres" through runuser, in a directory that
// user owns.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvBinDir names a directory holding initdb and pg_ctl, used instead of
// the newest /usr/lib/postgresql/*/bin.
const EnvBinDir = "J1DS_PG_BINDIR"

// Superuser is the name of the cluster's superuser; it connects without a
// password from loopback (trust), which is why the server listens on
// loopback only.
const Superuser = "j1ds"

// Server is one running PostgreSQL cluster.
type Server struct {
	// Port is the loopback port the server listens on.
	Port int
	// Dir is the cluster's data directory.
	Dir string

	bin   string
	runAs string // "" when this process is not root
	root  string // temporary directory holding Dir and the log
	dbs   atomic.Int64
	mu    sync.Mutex
	ended bool
}

// BinDir returns the directory holding initdb and pg_ctl, or an error that
// says how to install them.
func BinDir() (string, error) {
	if d := os.Getenv(EnvBinDir); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		return "", errors.New("PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/pg_ctl; install Debian's package (apt-get install postgresql) or set " + EnvBinDir)
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) < version(found[j]) })
	return found[len(found)-1], nil
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start makes a new cluster in a temporary directory and starts it on a
// free loopback port. The caller stops it with Stop.
func Start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	s.root, err = os.MkdirTemp("", "j1ds-pg-")
	if err != nil {
		return nil, err
	}
	s.Dir = filepath.Join(s.root, "data")
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: the cluster belongs to the
		// postgres user of Debian's package.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(s.root)
			return nil, fmt.Errorf("running as root, PostgreSQL needs an unprivileged user: %w (install Debian's postgresql package, which creates it)", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.root, uid, gid); err != nil {
			os.RemoveAll(s.root)
			return nil, err
		}
		s.runAs = "postgres"
	}
	if out, err := s.run("initdb", "-D", s.Dir, "-U", Superuser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(s.root)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := s.start(0); err != nil {
		os.RemoveAll(s.root)
		return nil, err
	}
	return s, nil
}

// start starts the server on port (a free one when 0).
func (s *Server) start(port int) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		p := port
		if p == 0 {
			if p, err = freePort(); err != nil {
				return err
			}
		}
		opts := strings.Join([]string{
			"-c listen_addresses=127.0.0.1",
			"-c port=" + strconv.Itoa(p),
			"-c unix_socket_directories=''",
			"-c fsync=on",
			"-c max_connections=200",
			"-c shared_buffers=128MB",
			"-c log_min_messages=warning",
		}, " ")
		var out []byte
		out, err = s.run("pg_ctl", "-D", s.Dir, "-l", filepath.Join(s.root, "server.log"), "-o", opts, "-w", "-t", "60", "start")
		if err == nil {
			s.Port = p
			return nil
		}
		err = fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, s.logTail())
		if port != 0 {
			break
		}
	}
	return err
}

// Stop stops the server (fast shutdown) and removes its directory.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	s.ended = true
	out, err := s.run("pg_ctl", "-D", s.Dir, "-m", "fast", "-w", "-t", "60", "stop")
	if err != nil {
		err = fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return errors.Join(err, os.RemoveAll(s.root))
}

// Restart stops the server (immediate: as a crash would) and starts it
// again on the same port, keeping its data.
func (s *Server) Restart(mode string) error {
	if mode == "" {
		mode = "immediate"
	}
	if out, err := s.run("pg_ctl", "-D", s.Dir, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return s.start(s.Port)
}

// Halt stops the server, keeping its data, until Resume starts it again.
func (s *Server) Halt() error {
	out, err := s.run("pg_ctl", "-D", s.Dir, "-m", "immediate", "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Resume starts a halted server on its port.
func (s *Server) Resume() error { return s.start(s.Port) }

// URL returns the connection URL of database db.
func (s *Server) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(Superuser), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), Path: "/" + db}
	u.RawQuery = "sslmode=disable"
	return u.String()
}

// CreateDatabase creates a new empty database and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("j1ds_%d_%d", os.Getpid(), s.dbs.Add(1))
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to the test server: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// logTail returns the end of the server's log, for errors of pg_ctl.
func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.root, "server.log"))
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (s *Server) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, tool)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if s.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = s.root
	// pg_ctl start leaves the server running with our stdout open unless
	// its output goes to the log file (-l) and ours is not inherited.
	return cmd.CombinedOutput()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// shared is the server of a test binary (Shared).
var shared struct {
	sync.Mutex
	s   *Server
	err error
}

// TB is the part of testing.TB Shared uses (the package does not import
// testing, so that the bench, which starts servers too, does not link it
// into the binary).
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Error(args ...any)
	Cleanup(func())
}

// Own starts a server of the test's own (one it may stop, restart or
// halt; the shared one stays up for the others), stopped when the test
// ends, and returns it with the URL of a new database on it.
func Own(t TB) (*Server, string) {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, u
}

// Shared returns the test binary's server, starting it on first use, and
// a new empty database on it for this test. A package using it stops the
// server from TestMain with Main.
func Shared(t TB) (*Server, string) {
	t.Helper()
	shared.Lock()
	if shared.s == nil && shared.err == nil {
		shared.s, shared.err = Start()
	}
	s, err := shared.s, shared.err
	shared.Unlock()
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, u
}

// StopShared stops the server Shared started, if any.
func StopShared() error {
	shared.Lock()
	defer shared.Unlock()
	if shared.s == nil {
		return nil
	}
	err := shared.s.Stop()
	shared.s = nil
	return err
}

// Main runs a test binary's tests (m is its *testing.M) and stops the
// shared server after them: call it from TestMain as
// os.Exit(localpg.Main(m)).
func Main(m interface{ Run() int }) int {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stop PostgreSQL:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
