package s3dest

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults and limits of Config.
const (
	DefaultRegion   = "us-east-1"
	DefaultPartSize = 16 << 20
	// MinPartSize is S3's smallest part (except the last one).
	MinPartSize = 5 << 20
	// MaxPartSize is S3's largest part.
	MaxPartSize = 5 << 30
	// DefaultSuffix is the object key suffix of the product doc.
	DefaultSuffix = ".jsonl"
	// GzipSuffix is the optional suffix that lets Athena and Hadoop pick
	// the codec from the key.
	GzipSuffix = ".jsonl.gz"
	// MaxKMSKeyIDLen is the longest KMSKeyID, the limit of AWS KMS's KeyId.
	MaxKMSKeyIDLen = 2048
)

// Config configures a Client. The zero value (plus credentials from the
// standard AWS chain) writes to AWS S3 in us-east-1.
type Config struct {
	// Region is the required region of customers' buckets (--region).
	// Default "us-east-1". Requests are signed for this region, so a bucket
	// elsewhere fails with WRONG_REGION.
	Region string
	// Endpoint is an optional S3-compatible endpoint (--s3-endpoint), for
	// example https://localhost:7070. When set, requests use path-style
	// addressing. It must be https:// unless AllowInsecureEndpoint.
	Endpoint string
	// AllowInsecureEndpoint permits a plain http:// Endpoint
	// (--allow-insecure-endpoint; development only).
	AllowInsecureEndpoint bool
	// AssumeRoleARN, when set (--assume-role-arn), makes the client take
	// credentials from the standard chain and then sts:AssumeRole this role.
	AssumeRoleARN string
	// KMSKeyID, when set (--kms-key-id), requests SSE-KMS with this key on
	// PutObject and CreateMultipartUpload only (S3 rejects the headers on
	// UploadPart and CompleteMultipartUpload). When empty no SSE header is
	// sent at all and the bucket's default encryption applies. Any key id
	// the server knows is accepted: AWS's key id, ARN or alias, or a name
	// of an S3-compatible server's key store such as "my-key"; it must be
	// 1 to MaxKMSKeyIDLen printable ASCII characters without spaces, as it
	// travels in a request header.
	KMSKeyID string
	// PartSize is both the multipart threshold and the part size
	// (--part-size). Default 16 MiB; at least 5 MiB unless AllowSmallParts;
	// at most 5 GiB. An object writer holds at most one part in memory.
	PartSize int64
	// AllowSmallParts lifts the 5 MiB minimum (tests against servers that
	// accept small parts).
	AllowSmallParts bool
	// Suffix is the object key suffix (--object-suffix): ".jsonl"
	// (default) or ".jsonl.gz". The client does not append it; it is
	// validated here and reported by Client.Suffix for the key builder.
	Suffix string
	// Registerer receives the package's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient is the HTTP client of S3 and STS requests. Default: the
	// SDK's buildable client with this package's timeouts. It must be a
	// buildable client: with AWS_CA_BUNDLE set, config loading adds the CA
	// bundle to its transport (a plain *http.Client makes it fail).
	HTTPClient *awshttp.BuildableClient
	// RootCAs, when set, are the certificate authorities trusted for S3
	// (tests). AWS_CA_BUNDLE, when set, is added to them.
	RootCAs *x509.CertPool
	// Credentials overrides the standard credential chain (tests).
	// AssumeRoleARN, when set, uses them as its source credentials.
	Credentials aws.CredentialsProvider

	// maxBackoff, when set, caps the SDK's retry backoff (tests).
	maxBackoff time.Duration
}

func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.Suffix == "" {
		c.Suffix = DefaultSuffix
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	roleARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
)

// kmsKeyIDRule is the rule of --kms-key-id that its errors name.
var kmsKeyIDRule = fmt.Sprintf("a KMS key id is 1 to %d printable ASCII characters without spaces, "+
	"such as an AWS key id, key ARN or alias/NAME, or the name of an S3-compatible server's key such as my-key", MaxKMSKeyIDLen)

// validateKMSKeyID checks a non-empty KMSKeyID: it goes verbatim into the
// x-amz-server-side-encryption-aws-kms-key-id header, so it must be a
// header value that every server reads the same way.
func validateKMSKeyID(id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("--kms-key-id is blank: give a key id, or leave it unset for the bucket's default encryption (%s)", kmsKeyIDRule)
	}
	if len(id) > MaxKMSKeyIDLen {
		return fmt.Errorf("--kms-key-id is %d bytes long, over the limit of %d: %s", len(id), MaxKMSKeyIDLen, kmsKeyIDRule)
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case b == ' ':
			return fmt.Errorf("--kms-key-id %q contains a space at byte %d: remove it (%s)", id, i, kmsKeyIDRule)
		case b < 0x20 || b == 0x7f:
			return fmt.Errorf("--kms-key-id %q contains a control character at byte %d: remove it (%s)", id, i, kmsKeyIDRule)
		case b > 0x7f:
			return fmt.Errorf("--kms-key-id %q contains a non-ASCII character at byte %d: use the key's ASCII id or ARN (%s)", id, i, kmsKeyIDRule)
		}
	}
	return nil
}

// Validate checks the configuration after defaults. Its errors name the
// flag and the bad value.
func (c Config) Validate() error {
	c = c.withDefaults()
	if !regionRE.MatchString(c.Region) {
		return fmt.Errorf("--region %q is not an AWS region name such as us-east-1", c.Region)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return fmt.Errorf("--s3-endpoint %q must be a URL such as https://s3.example.com:9000", c.Endpoint)
		}
		if u.User != nil {
			return fmt.Errorf("--s3-endpoint must not contain credentials")
		}
		if u.Scheme == "http" && !c.AllowInsecureEndpoint {
			return fmt.Errorf("--s3-endpoint %q is plain HTTP: use https:// (or --allow-insecure-endpoint for development only)", c.Endpoint)
		}
	}
	if c.AssumeRoleARN != "" && !roleARNRE.MatchString(c.AssumeRoleARN) {
		return fmt.Errorf("--assume-role-arn %q is not an IAM role ARN such as arn:aws:iam::123456789012:role/jupiterone-data-streaming", c.AssumeRoleARN)
	}
	if c.KMSKeyID != "" {
		if err := validateKMSKeyID(c.KMSKeyID); err != nil {
			return err
		}
	}
	switch {
	case c.PartSize < 1:
		return fmt.Errorf("--part-size %d must be positive", c.PartSize)
	case c.PartSize < MinPartSize && !c.AllowSmallParts:
		return fmt.Errorf("--part-size %d is below S3's minimum part of %d bytes (5 MiB)", c.PartSize, MinPartSize)
	case c.PartSize > MaxPartSize:
		return fmt.Errorf("--part-size %d is above S3's maximum part of %d bytes (5 GiB)", c.PartSize, int64(MaxPartSize))
	}
	if c.Suffix != DefaultSuffix && c.Suffix != GzipSuffix {
		return fmt.Errorf("--object-suffix %q must be %s or %s", c.Suffix, DefaultSuffix, GzipSuffix)
	}
	return nil
}
