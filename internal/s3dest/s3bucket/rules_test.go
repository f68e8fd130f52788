package s3bucket_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

func TestValidateBucketName(t *testing.T) {
	good := []string{"abc", "my-bucket.logs", "a1b2c3", strings.Repeat("a", 63)}
	bad := map[string]string{
		"ab": "3 to 63", strings.Repeat("a", 64): "3 to 63", "My-Bucket": "lowercase", "my_bucket": "lowercase",
		"-abc": "begin and end", "abc-": "begin and end", "a..b": "two dots", "192.168.1.1": "IP address",
		"xn--abc": "xn--", "abc-s3alias": "-s3alias", "a/b/c": "lowercase", "abc:def": "lowercase",
	}
	for _, b := range good {
		if err := s3bucket.ValidateBucketName(b); err != nil {
			t.Errorf("%q: %v", b, err)
		}
	}
	for b, want := range bad {
		err := s3bucket.ValidateBucketName(b)
		var fe *s3bucket.FieldError
		if !errors.As(err, &fe) || fe.Field != "bucketName" || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want a bucketName error mentioning %q", b, err, want)
		}
	}
}

func TestValidateAWSAccountID(t *testing.T) {
	for _, id := range []string{"", "12345678901", "1234567890123", "12345678901a", " 123456789012"} {
		if err := s3bucket.ValidateAWSAccountID(id); err == nil {
			t.Errorf("%q accepted", id)
		}
	}
	if err := s3bucket.ValidateAWSAccountID("111122223333"); err != nil {
		t.Error(err)
	}
}
