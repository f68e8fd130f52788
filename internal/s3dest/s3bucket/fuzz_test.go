package s3bucket_test

// ValidateBucketName against an independent statement of S3's naming rules
// for general purpose buckets, written as regular expressions:
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
// Run with go test -fuzz FuzzBucketName; go test runs the seeds.

import (
	"regexp"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

var (
	// 3-63 lowercase letters, digits, dots and hyphens, beginning and
	// ending with a letter or digit.
	bucketShape = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	// "Formatted as an IP address": four dot-separated runs of digits,
	// whether or not each is a valid octet.
	bucketIPLike = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$`)
	// Reserved prefixes and suffixes.
	bucketReserved = regexp.MustCompile(`^(xn--|sthree-|amzn-s3-demo-)|(-s3alias|--ol-s3|\.mrap|--x-s3)$`)
)

func s3AllowsBucket(b string) bool {
	return bucketShape.MatchString(b) && !strings.Contains(b, "..") && !bucketIPLike.MatchString(b) && !bucketReserved.MatchString(b)
}

func checkBucket(t *testing.T, b string) {
	t.Helper()
	err := s3bucket.ValidateBucketName(b)
	if want := s3AllowsBucket(b); (err == nil) != want {
		t.Fatalf("ValidateBucketName(%q) = %v; S3's rules say allowed=%v", b, err, want)
	}
	if err != nil {
		if msg := err.Error(); !strings.Contains(msg, "bucketName") || len(msg) > 500 {
			t.Fatalf("ValidateBucketName(%q): error %q does not name the field or is too long", b, msg)
		}
		return
	}
	// An accepted name is safe in a path-style URL and a host name.
	if strings.ContainsAny(b, "/\\:%?#@ \x00") {
		t.Fatalf("accepted %q", b)
	}
}

func TestBucketNameRules(t *testing.T) {
	for _, b := range []string{
		"my-bucket", "a.b.c", "abc", "ab", strings.Repeat("a", 63), strings.Repeat("a", 64),
		"192.168.5.4", "192.168.05.4", "999.999.999.999", "1.2.3.4.5", "1.2.3", "1.2.3.a",
		"xn--bucket", "sthree-x", "sthree-configurator", "amzn-s3-demo-bucket", "b-s3alias", "b--ol-s3", "b.mrap", "b--x-s3",
		"a..b", "-ab", "ab-", ".ab", "ab.", "Ab", "a_b", "a/b", "../x", "bücket",
	} {
		checkBucket(t, b)
	}
}

func FuzzBucketName(f *testing.F) {
	for _, b := range []string{"my-bucket", "192.168.5.4", "10.0.0.01", "a..b", "xn--a", "b.mrap", "a/b", strings.Repeat("a", 63)} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b string) { checkBucket(t, b) })
}
