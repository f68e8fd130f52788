package locals3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// DefaultRegion is the region a Server signs for when Options.Region is empty.
const DefaultRegion = "us-east-1"

// Options configure Start.
type Options struct {
	// Dir holds the server's data (Dir/data), IAM (Dir/iam), certificates
	// (Dir/certs) and log (Dir/versitygw.log). Required; t.TempDir() in tests.
	Dir string
	// Region is the only region the server accepts in request signatures.
	// Default "us-east-1".
	Region string
	// Progress receives a line about building versitygw the first time
	// (see Build). May be nil.
	Progress io.Writer
	// PlainHTTP also starts a second gateway on the same data and IAM that
	// listens without TLS, at Server.PlainEndpoint, so that tests can show
	// what a policy conditioned on aws:SecureTransport does to plain HTTP.
	PlainHTTP bool
}

// Server is a running versitygw: S3 over TLS on 127.0.0.1 with the posix
// backend and internal IAM. Create it with Start and always Close it.
type Server struct {
	// Endpoint is the S3 (and admin API) URL, https://127.0.0.1:PORT.
	Endpoint string
	// PlainEndpoint is http://127.0.0.1:PORT of the plain-HTTP gateway when
	// Options.PlainHTTP was set, else empty.
	PlainEndpoint string
	// Region is the region the server requires in signatures.
	Region string
	// CAFile is the absolute path of the PEM CA certificate that signed the
	// server's certificate; a client trusts it through AWS_CA_BUNDLE or
	// CAPool.
	CAFile string
	// CAPool holds that CA alone.
	CAPool *x509.CertPool
	// RootAccess and RootSecret are the gateway's root (admin) credentials.
	RootAccess, RootSecret string
	// Dir is Options.Dir, made absolute.
	Dir string
	// Binary is the path of the versitygw binary the server runs (Build),
	// for a user who starts it again on Dir by hand.
	Binary string

	certs     certFiles
	http      *http.Client
	procs     []*process
	closeOnce sync.Once
	closeErr  error
}

// Start generates a CA and a server certificate for 127.0.0.1 and localhost,
// builds versitygw if needed (Build), starts it on a free loopback port with
// TLS, the posix backend in Dir/data, internal IAM in Dir/iam and the region,
// and returns once the server answers its health check. The process is
// stopped when ctx ends before Start returns; after that only Close stops it,
// and Close must be called. On error nothing is left running.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("locals3: Options.Dir is required")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("locals3: %w", err)
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	bin, err := Build(ctx, o.Progress)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"data", "iam"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("locals3: %w", err)
		}
	}
	cf, err := makeCerts(filepath.Join(dir, "certs"))
	if err != nil {
		return nil, fmt.Errorf("locals3: certificates: %w", err)
	}
	s := &Server{
		Region:     o.Region,
		CAFile:     cf.ca,
		CAPool:     cf.pool,
		RootAccess: "j1dsroot" + randHex(6),
		RootSecret: randHex(20),
		Dir:        dir,
		Binary:     bin,
		certs:      cf,
	}
	s.http = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: cf.pool, MinVersion: tls.VersionTLS12},
			Proxy:           nil, // loopback only, whatever HTTPS_PROXY says
		},
	}

	common := []string{
		"--region", o.Region,
		"--iam-dir", filepath.Join(dir, "iam"),
		// Two gateways may share the IAM dir (PlainHTTP); read it each time.
		"--iam-cache-disable",
		"--health", "/health",
		// Keep connections open, as S3 does: without it every request
		// pays a new TLS handshake.
		"--keep-alive",
	}
	posix := []string{"posix", filepath.Join(dir, "data")}
	tlsArgs := append(append([]string{"--cert", cf.cert, "--key", cf.key}, common...), posix...)
	p, addr, err := s.startProcess(ctx, bin, tlsArgs, true)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	s.Endpoint = "https://" + addr
	if o.PlainHTTP {
		p, addr, err := s.startProcess(ctx, bin, append(common, posix...), false)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.procs = append(s.procs, p)
		s.PlainEndpoint = "http://" + addr
	}
	return s, nil
}

// Close stops every gateway process (SIGTERM, then SIGKILL after 5 s) and
// waits for it to exit. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, p := range s.procs {
			errs = append(errs, p.stop())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// ShellCommand returns a shell command line that starts versitygw again on
// the server's directory, as Start ran it (TLS with the same certificate,
// the same IAM, buckets and objects, the same root credentials), listening
// on addr (host:port): the way to read a kept directory once this Server is
// closed. The certificate is valid for 127.0.0.1, ::1 and localhost.
func (s *Server) ShellCommand(addr string) string {
	args := []string{
		"ROOT_ACCESS_KEY_ID=" + shellQuote(s.RootAccess),
		"ROOT_SECRET_ACCESS_KEY=" + shellQuote(s.RootSecret),
		shellQuote(s.Binary), "--port", shellQuote(addr),
		"--cert", shellQuote(s.certs.cert), "--key", shellQuote(s.certs.key),
		"--region", shellQuote(s.Region), "--iam-dir", shellQuote(filepath.Join(s.Dir, "iam")),
		"--health", "/health",
		"posix", shellQuote(filepath.Join(s.Dir, "data")),
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and -_./:=@,+.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// accountIDPattern matches a 12-digit AWS account id.
var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// CreateAccount creates a versitygw user with role "user" whose access key
// is accountID, a 12-digit AWS account id, so that an
// x-amz-expected-bucket-owner header naming that id matches the buckets the
// user owns. The user can sign requests with accountID and secret.
func (s *Server) CreateAccount(ctx context.Context, accountID, secret string) error {
	if !accountIDPattern.MatchString(accountID) {
		return fmt.Errorf("locals3: create account %q: the access key must be a 12-digit AWS account id", accountID)
	}
	body, err := xml.Marshal(struct {
		XMLName xml.Name `xml:"Account"`
		Access  string
		Secret  string
		Role    string
	}{Access: accountID, Secret: secret, Role: "user"})
	if err != nil {
		return err
	}
	if err := s.admin(ctx, "/create-user", nil, body); err != nil {
		return fmt.Errorf("locals3: create account %s: %w", accountID, err)
	}
	return nil
}

// CreateBucket creates bucket owned by the account ownerAccountID (made with
// CreateAccount), through the admin API as `versitygw admin create-bucket
// --owner` does. Requests to the bucket that carry
// x-amz-expected-bucket-owner: ownerAccountID pass the owner check; any
// other id gets 403 AccessDenied.
func (s *Server) CreateBucket(ctx context.Context, bucket, ownerAccountID string) error {
	if err := s.admin(ctx, "/"+bucket+"/create", map[string]string{"x-vgw-owner": ownerAccountID}, nil); err != nil {
		return fmt.Errorf("locals3: create bucket %s owned by %s: %w", bucket, ownerAccountID, err)
	}
	return nil
}

// PutBucketPolicy sets the bucket's policy through the S3 API as the root
// user, replacing any policy it had.
func (s *Server) PutBucketPolicy(ctx context.Context, bucket, policyJSON string) error {
	_, err := s.RootClient().PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{
		Bucket: aws.String(bucket),
		Policy: aws.String(policyJSON),
	})
	if err != nil {
		return fmt.Errorf("locals3: put bucket policy on %s: %w", bucket, err)
	}
	return nil
}

// Client returns an aws-sdk-go-v2 S3 client that signs as accessKey for the
// server's region, addresses buckets path-style at Endpoint and trusts only
// the server's CA. It reads nothing from the environment (no AWS_* variables,
// no shared config), so tests see the same client everywhere.
func (s *Server) Client(accessKey, secret string) *s3.Client {
	return newClient(s.Endpoint, s.Region, s.CAPool, accessKey, secret)
}

// RootClient is Client for the root user, which bypasses bucket policies:
// use it to read back what a write-only principal wrote. (Once a bucket has
// a policy, versitygw grants its owner only what the policy grants, unlike
// AWS, so the owner's own client cannot read a writer's objects.)
func (s *Server) RootClient() *s3.Client {
	return s.Client(s.RootAccess, s.RootSecret)
}

func newClient(endpoint, region string, pool *x509.CertPool, accessKey, secret string) *s3.Client {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		tr.Proxy = nil
	})
	return s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secret, ""),
		HTTPClient:   hc,
	})
}

// WriterPolicy returns the seed's bucket policy for bucket with the writer's
// access key as its principal (versitygw accepts only access keys as
// principals where AWS would name the role
// arn:aws:iam::<operator>:role/jupiterone-data-streaming): write-only,
// s3:PutObject on arn:aws:s3:::BUCKET/jupiterone/*, and only over TLS
// (aws:SecureTransport). On versitygw, as on AWS, s3:PutObject also
// authorises the multipart upload steps.
func WriterPolicy(bucket, writerAccessKey string) string {
	type principal struct {
		AWS string
	}
	type statement struct {
		Sid       string
		Effect    string
		Principal principal
		Action    string
		Resource  string
		Condition map[string]map[string]string
	}
	doc := struct {
		Version   string
		Statement []statement
	}{
		Version: "2012-10-17",
		Statement: []statement{{
			Sid:       "JupiterOneDataStreamingWrite",
			Effect:    "Allow",
			Principal: principal{AWS: writerAccessKey},
			Action:    "s3:PutObject",
			Resource:  "arn:aws:s3:::" + bucket + "/jupiterone/*",
			Condition: map[string]map[string]string{"Bool": {"aws:SecureTransport": "true"}},
		}},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // plain strings always marshal
	}
	return string(b)
}

// APIError is an error answer of the admin API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// admin sends a SigV4-signed PATCH to the admin API as root.
func (s *Server) admin(ctx context.Context, path string, headers map[string]string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, s.Endpoint+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	creds := aws.Credentials{AccessKeyID: s.RootAccess, SecretAccessKey: s.RootSecret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", s.Region, time.Now()); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 300 {
		return nil
	}
	e := &APIError{Status: resp.StatusCode}
	var x struct{ Code, Message string }
	if xml.Unmarshal(data, &x) == nil {
		e.Code, e.Message = x.Code, x.Message
	} else {
		e.Message = strings.TrimSpace(string(data))
	}
	return e
}

// process is one versitygw child process.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returned
	err  error         // cmd.Wait's error, set before done is closed
	log  string
}

// startProcess runs versitygw on a free loopback port and waits for its
// health check, retrying on another port if the first was taken meanwhile.
func (s *Server) startProcess(ctx context.Context, bin string, args []string, useTLS bool) (*process, string, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := freePort()
		if err != nil {
			return nil, "", fmt.Errorf("locals3: %w", err)
		}
		p, err := s.spawn(bin, append([]string{"--port", addr}, args...))
		if err != nil {
			return nil, "", err
		}
		scheme := "http"
		if useTLS {
			scheme = "https"
		}
		err = s.waitHealthy(ctx, p, scheme+"://"+addr+"/health")
		if err == nil {
			return p, addr, nil
		}
		stopErr := p.stop()
		lastErr = errors.Join(err, stopErr)
		if ctx.Err() != nil || !strings.Contains(p.tail(), "address already in use") {
			break
		}
	}
	return nil, "", lastErr
}

func (s *Server) spawn(bin string, args []string) (*process, error) {
	logPath := filepath.Join(s.Dir, "versitygw.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locals3: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "--- %s versitygw %s\n", time.Now().Format(time.RFC3339), strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	env := []string{
		"ROOT_ACCESS_KEY_ID=" + s.RootAccess,
		"ROOT_SECRET_ACCESS_KEY=" + s.RootSecret,
	}
	for _, kv := range os.Environ() {
		// Every flag has a VGW_ variable; keep the caller's out.
		if !strings.HasPrefix(kv, "VGW_") && !strings.HasPrefix(kv, "ROOT_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.Stdout = logf
	cmd.Stderr = logf
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("locals3: start versitygw: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (s *Server) waitHealthy(ctx context.Context, p *process, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := s.http.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health check: %s", resp.Status)
		}
		last = err
		select {
		case <-p.done:
			return fmt.Errorf("locals3: versitygw exited before it was ready (%v); log %s:\n%s", p.err, p.log, p.tail())
		case <-ctx.Done():
			return fmt.Errorf("locals3: versitygw not ready at %s: %w (last: %v); log %s:\n%s", url, ctx.Err(), last, p.log, p.tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the process and waits for it.
func (p *process) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return nil
}

// tail returns the end of the log file, for error messages.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
