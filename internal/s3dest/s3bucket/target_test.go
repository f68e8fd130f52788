package s3bucket_test

import (
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

func TestTargetValidate(t *testing.T) {
	for _, tc := range []struct {
		t    s3bucket.Target
		want string
	}{
		{s3bucket.Target{Bucket: "my-bucket", Owner: "111122223333"}, ""},
		{s3bucket.Target{Bucket: "my.bucket.1", Owner: "111122223333"}, ""},
		{s3bucket.Target{Bucket: "ab", Owner: "111122223333"}, "bucketName"},
		{s3bucket.Target{Bucket: "My-Bucket", Owner: "111122223333"}, "bucketName"},
		{s3bucket.Target{Bucket: "my..bucket", Owner: "111122223333"}, "bucketName"},
		{s3bucket.Target{Bucket: "-bucket", Owner: "111122223333"}, "bucketName"},
		{s3bucket.Target{Bucket: "192.168.1.1", Owner: "111122223333"}, "bucketName"},
		{s3bucket.Target{Bucket: "xn--bucket", Owner: "111122223333"}, "bucketName"},
		{s3bucket.Target{Bucket: "bucket-s3alias", Owner: "111122223333"}, "bucketName"},
		{s3bucket.Target{Bucket: "my-bucket/../x", Owner: "111122223333"}, "bucketName"},
		{s3bucket.Target{Bucket: strings.Repeat("a", 64), Owner: "111122223333"}, "bucketName"},
		{s3bucket.Target{Bucket: "my-bucket", Owner: "11112222333"}, "awsAccountId"},
		{s3bucket.Target{Bucket: "my-bucket", Owner: "11112222333a"}, "awsAccountId"},
		{s3bucket.Target{Bucket: "my-bucket", Owner: ""}, "awsAccountId"},
	} {
		err := tc.t.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.t, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: Validate = %v, want an error naming %s", tc.t, err, tc.want)
		}
	}
}

// TestTargetRoundTrip: the exporter's opaque form of a target reads back
// as the same target, and a malformed one is refused.
func TestTargetRoundTrip(t *testing.T) {
	want := s3bucket.Target{Bucket: "my-bucket", Owner: "111122223333"}
	if got, err := s3bucket.ParseTarget(want.String()); err != nil || got != want {
		t.Fatalf("ParseTarget(%q) = %+v, %v; want %+v", want.String(), got, err, want)
	}
	for _, s := range []string{"", "my-bucket", "my-bucket/", "/111122223333", "My-Bucket/111122223333", "my-bucket/111122223333/x"} {
		if _, err := s3bucket.ParseTarget(s); err == nil {
			t.Errorf("ParseTarget(%q) accepted", s)
		}
	}
}
