package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/j1ds/j1ds/internal/s3dest"
)

// Dir reads objects from a local copy of a bucket: Root holds the
// bucket's keys as paths (what `aws s3 sync s3://BUCKET ROOT` makes).
type Dir struct{ Root string }

var _ Source = Dir{}

// List walks Root/prefix; a missing prefix directory lists nothing.
func (d Dir) List(ctx context.Context, prefix string) ([]string, error) {
	if _, err := os.Stat(d.Root); err != nil {
		return nil, fmt.Errorf("directory %s: %w", d.Root, err)
	}
	base := filepath.Join(d.Root, filepath.FromSlash(prefix))
	var keys []string
	err := filepath.WalkDir(base, func(path string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == base {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(d.Root, path)
		if err != nil {
			return err
		}
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(keys)
	return keys, nil
}

// Read reads the file of key.
func (d Dir) Read(_ context.Context, key string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.Root, filepath.FromSlash(key)))
}

func (d Dir) String() string { return "directory " + d.Root }

// S3Options say how to read a bucket. Credentials come from the standard
// AWS chain (environment, shared config, instance metadata) and trusted
// CAs from the system plus AWS_CA_BUNDLE, unless set here (tests).
type S3Options struct {
	Bucket                string
	Region                string // default us-east-1
	Endpoint              string // an S3-compatible endpoint, path-style
	AllowInsecureEndpoint bool
	// ExpectedBucketOwner, when set, makes S3 refuse a bucket owned by
	// another AWS account.
	ExpectedBucketOwner string
	Credentials         aws.CredentialsProvider
	RootCAs             *x509.CertPool
}

// S3 reads objects from a bucket. The credentials need s3:ListBucket and
// s3:GetObject on the account's prefix: j1ds's own write-only role cannot
// read.
type S3 struct {
	o  S3Options
	s3 *s3.Client
}

var _ Source = (*S3)(nil)

// NewS3 validates o and builds the client; it makes no request.
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	if o.Region == "" {
		o.Region = s3dest.DefaultRegion
	}
	if o.Bucket == "" {
		return nil, errors.New("--bucket: name the bucket to read")
	}
	// The region and endpoint rules are serve's.
	if err := (s3dest.Config{Region: o.Region, Endpoint: o.Endpoint, AllowInsecureEndpoint: o.AllowInsecureEndpoint}).Validate(); err != nil {
		return nil, err
	}
	hc := awshttp.NewBuildableClient()
	if o.RootCAs != nil {
		roots := o.RootCAs.Clone() // config loading appends AWS_CA_BUNDLE to it
		hc = hc.WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
		})
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(o.Region), config.WithHTTPClient(hc)}
	if o.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(o.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
			so.UsePathStyle = true
		}
	})
	return &S3{o: o, s3: client}, nil
}

func (s *S3) owner() *string {
	if s.o.ExpectedBucketOwner == "" {
		return nil
	}
	return aws.String(s.o.ExpectedBucketOwner)
}

// List lists the keys under prefix (S3 returns them in byte order).
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.s3, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.o.Bucket), Prefix: aws.String(prefix), ExpectedBucketOwner: s.owner(),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w (verify needs s3:ListBucket and s3:GetObject; j1ds's write-only role has neither: use your own credentials)", s.o.Bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	slices.Sort(keys) // S3 lists in byte order already; a local S3 may not
	return keys, nil
}

// Read gets the object's stored bytes (gzip data, not decoded).
func (s *S3) Read(ctx context.Context, key string) ([]byte, error) {
	out, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.o.Bucket), Key: aws.String(key), ExpectedBucketOwner: s.owner()})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func (s *S3) String() string {
	if s.o.Endpoint != "" {
		return fmt.Sprintf("s3://%s at %s", s.o.Bucket, strings.TrimRight(s.o.Endpoint, "/"))
	}
	return "s3://" + s.o.Bucket
}
