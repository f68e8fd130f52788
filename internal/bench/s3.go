package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/s3dest"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

// The bench's S3 cast, as in the demo: the customer's AWS account owns the
// buckets, j1ds writes as the operator's account under the seed's policy.
const (
	benchOwnerAccount  = "111122223333"
	benchWriterAccount = "123456789012"
)

// benchS3 is a versitygw over TLS, in its own process, with the clients the
// bench writes through.
type benchS3 struct {
	srv    *locals3.Server
	dest   *s3dest.Client // the exporter's client
	plain  *s3.Client     // the baseline's: the SDK as a naive program uses it
	secret string
}

func startBenchS3(ctx context.Context, dir string, progress io.Writer) (*benchS3, error) {
	srv, err := locals3.Start(ctx, locals3.Options{Dir: filepath.Join(dir, "s3"), Progress: progress})
	if err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	b := &benchS3{srv: srv, secret: randomHex(20)}
	for _, a := range []struct{ id, secret string }{{benchOwnerAccount, randomHex(20)}, {benchWriterAccount, b.secret}} {
		if err := srv.CreateAccount(ctx, a.id, a.secret); err != nil {
			srv.Close()
			return nil, err
		}
	}
	b.dest, err = s3dest.New(ctx, s3dest.Config{
		Endpoint: srv.Endpoint, Region: srv.Region, RootCAs: srv.CAPool,
		Credentials: credentials.NewStaticCredentialsProvider(benchWriterAccount, b.secret, ""),
	})
	if err != nil {
		srv.Close()
		return nil, err
	}
	b.plain = srv.Client(benchWriterAccount, b.secret)
	return b, nil
}

func (b *benchS3) Close() error { return b.srv.Close() }

// bucket creates a bucket owned by the customer with the writer policy.
func (b *benchS3) bucket(ctx context.Context, name string) error {
	if err := b.srv.CreateBucket(ctx, name, benchOwnerAccount); err != nil {
		return err
	}
	return b.srv.PutBucketPolicy(ctx, name, locals3.WriterPolicy(name, benchWriterAccount))
}

// count lists the objects of a bucket under the export prefix, as the
// root user (the policy lets the writer only put).
func (b *benchS3) count(ctx context.Context, bucket string) (int, error) {
	n := 0
	p := s3.NewListObjectsV2Paginator(b.srv.RootClient(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(exporter.KeyPrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("list %s: %w", bucket, err)
		}
		n += len(page.Contents)
	}
	return n, nil
}

// recordingDest is the exporter's S3 destination (the real s3dest client)
// that records every stored object: when its upload was acknowledged, how
// many S3 requests it took and its size.
type recordingDest struct {
	c  *s3dest.Client
	mu struct {
		sync.Mutex
		objects  []storedObject
		requests int // of every object, failed ones included
		failed   int
	}
}

var _ exporter.Destination = (*recordingDest)(nil)

type storedObject struct {
	Key      string
	At       time.Time
	Requests int
	Bytes    int64
}

func (d *recordingDest) Object(ctx context.Context, target, key string) exporter.Object {
	return &recordingObject{ObjectWriter: d.c.ObjectAt(ctx, target, key), d: d, key: key}
}

// objects returns the stored objects so far, and the requests and failures.
func (d *recordingDest) objects() ([]storedObject, int, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]storedObject(nil), d.mu.objects...), d.mu.requests, d.mu.failed
}

type recordingObject struct {
	*s3dest.ObjectWriter
	d    *recordingDest
	key  string
	n    int64
	done bool
}

func (o *recordingObject) Write(p []byte) (int, error) {
	n, err := o.ObjectWriter.Write(p)
	o.n += int64(n)
	return n, err
}

func (o *recordingObject) Close() error {
	err := o.ObjectWriter.Close()
	at := time.Now()
	o.record(err == nil, at)
	return err
}

func (o *recordingObject) Abort() {
	o.ObjectWriter.Abort()
	o.record(false, time.Time{})
}

func (o *recordingObject) record(stored bool, at time.Time) {
	if o.done {
		return
	}
	o.done = true
	o.d.mu.Lock()
	defer o.d.mu.Unlock()
	o.d.mu.requests += o.Requests()
	if !stored {
		o.d.mu.failed++
		return
	}
	o.d.mu.objects = append(o.d.mu.objects, storedObject{Key: o.key, At: at, Requests: o.Requests(), Bytes: o.n})
}

// enableWorkers is how many accounts enableStreams sets up at once.
const enableWorkers = 64

// enableStreams turns streaming on for accounts into bucket as the
// settings API does after a passing connection test, from the log's end
// (only what comes next is exported) or, with fromStart, from its first
// entry. Accounts are set up by enableWorkers concurrent workers, so that
// their synced writes share fsyncs.
func enableStreams(store settings.Store, log changelog.Source, accounts []string, bucket string, fromStart bool) error {
	const workers = enableWorkers
	st := settings.New(store, nil)
	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(accounts); i = int(next.Add(1) - 1) {
				if err := enableStream(st, log, accounts[i], bucket, fromStart); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func enableStream(st *settings.Service, log changelog.Source, account, bucket string, fromStart bool) error {
	r, err := st.Get(account)
	if err != nil {
		return err
	}
	end := func() (uint64, error) { return log.End(account) }
	want := settings.Settings{Enabled: true, BucketName: bucket, AWSAccountID: benchOwnerAccount, RegionConfirmed: true}
	if r.Settings.Enabled { // disable first: enabling again restarts the stream
		off := want
		off.Enabled = false
		if _, err := st.Apply(account, off, end); err != nil {
			return err
		}
	}
	if _, err := st.SaveTest(account, settings.ConnectionTest{OK: true, At: time.Now(), BucketName: bucket, AWSAccountID: benchOwnerAccount}); err != nil {
		return err
	}
	from := end
	if fromStart {
		from = func() (uint64, error) { return 0, nil }
	}
	if _, err := st.Apply(account, want, from); err != nil {
		return fmt.Errorf("enable streaming of %s: %w", account, err)
	}
	return nil
}

// percentile returns the q-quantile (0..1) of sorted values.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func sortedCopy(v []float64) []float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s
}

// randomHex returns n random bytes in hex: the S3 accounts' secrets.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}
