package s3bucket

import (
	"fmt"
	"strings"
)

// FieldError names an invalid field of a destination or its settings, with a message
// that says what to enter instead.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// ValidateAWSAccountID checks for exactly 12 digits.
func ValidateAWSAccountID(id string) error {
	if len(id) != 12 || strings.Trim(id, "0123456789") != "" {
		return &FieldError{"awsAccountId", fmt.Sprintf("%s is not an AWS account id: enter the 12 digits of the account that owns the bucket", quote(id))}
	}
	return nil
}

// ValidateBucketName checks S3's naming rules for general purpose buckets.
func ValidateBucketName(b string) error {
	bad := func(why string) error {
		return &FieldError{"bucketName", fmt.Sprintf("%s is not a valid S3 bucket name: %s", quote(b), why)}
	}
	switch {
	case len(b) < 3 || len(b) > 63:
		return bad("it must be 3 to 63 characters long")
	case strings.Trim(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "":
		return bad("use only lowercase letters, digits, dots and hyphens")
	case !isAlnum(b[0]) || !isAlnum(b[len(b)-1]):
		return bad("it must begin and end with a letter or digit")
	case strings.Contains(b, ".."):
		return bad("it must not contain two dots in a row")
	case looksLikeIPv4(b):
		return bad("it must not look like an IP address")
	case strings.HasPrefix(b, "xn--") || strings.HasPrefix(b, "sthree-") || strings.HasPrefix(b, "amzn-s3-demo-"):
		return bad("it must not start with xn--, sthree- or amzn-s3-demo-")
	case strings.HasSuffix(b, "-s3alias") || strings.HasSuffix(b, "--ol-s3") || strings.HasSuffix(b, ".mrap") || strings.HasSuffix(b, "--x-s3"):
		return bad("it must not end with -s3alias, --ol-s3, .mrap or --x-s3")
	}
	return nil
}

// looksLikeIPv4 reports whether b is four dot-separated runs of digits:
// S3 refuses such names as formatted like an IP address even when a part
// is not a valid octet ("192.168.05.4", "999.1.1.1"), which net.ParseIP
// does not parse.
func looksLikeIPv4(b string) bool {
	parts := strings.Split(b, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func quote(s string) string {
	if len(s) > 70 {
		s = s[:70] + "..."
	}
	return fmt.Sprintf("%q", s)
}
