package s3dest

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"zero value", Config{}, ""},
		{"full", Config{Region: "eu-west-1", Endpoint: "https://s3.example.com:9000", AssumeRoleARN: "arn:aws:iam::123456789012:role/jupiterone-data-streaming",
			KMSKeyID: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", PartSize: 8 << 20, Suffix: ".jsonl.gz"}, ""},
		{"gov region", Config{Region: "us-gov-west-1"}, ""},
		{"bad region", Config{Region: "Narnia"}, "--region"},
		{"http endpoint", Config{Endpoint: "http://localhost:7070"}, "--allow-insecure-endpoint"},
		{"http endpoint allowed", Config{Endpoint: "http://localhost:7070", AllowInsecureEndpoint: true}, ""},
		{"endpoint without scheme", Config{Endpoint: "localhost:7070"}, "--s3-endpoint"},
		{"endpoint ftp", Config{Endpoint: "ftp://x"}, "--s3-endpoint"},
		{"endpoint with credentials", Config{Endpoint: "https://AKID:SECRET@x"}, "--s3-endpoint"},
		{"bad role", Config{AssumeRoleARN: "jupiterone-data-streaming"}, "--assume-role-arn"},
		{"kms key id", Config{KMSKeyID: "1234abcd-12ab-34cd-56ef-1234567890ab"}, ""},
		{"kms alias", Config{KMSKeyID: "alias/j1ds"}, ""},
		{"kms mrk", Config{KMSKeyID: "mrk-1234abcd12ab34cd56ef1234567890ab"}, ""},
		{"kms bad", Config{KMSKeyID: "my key"}, "--kms-key-id"},
		{"small part", Config{PartSize: 1 << 20}, "--part-size"},
		{"small part allowed", Config{PartSize: 1 << 10, AllowSmallParts: true}, ""},
		{"negative part", Config{PartSize: -1, AllowSmallParts: true}, "--part-size"},
		{"huge part", Config{PartSize: 6 << 30}, "--part-size"},
		{"bad suffix", Config{Suffix: ".json"}, "--object-suffix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error leaks the endpoint's credentials: %v", err)
			}
		})
	}
}

// TestConfigValidateKMSKeyID pins which key ids --kms-key-id takes: any
// name an S3-compatible server's key store may use, as long as it is a
// header value every server reads the same way; refusals name the rule.
func TestConfigValidateKMSKeyID(t *testing.T) {
	for _, id := range []string{
		"1234abcd-12ab-34cd-56ef-1234567890ab",
		"mrk-1234abcd12ab34cd56ef1234567890ab",
		"alias/j1ds",
		"arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws:kms:eu-west-1:123456789012:alias/j1ds",
		"my-key",     // MinIO KES
		"j1ds-key-1", // versitygw, Ceph
		"Key_2024.v3",
		"tenant:42/key~1",
		"k",
		strings.Repeat("k", MaxKMSKeyIDLen),
	} {
		if err := (Config{KMSKeyID: id}).Validate(); err != nil {
			t.Errorf("KMSKeyID %.40q: Validate = %v, want accepted", id, err)
		}
	}
	for _, tc := range []struct {
		name, id, want string
	}{
		{"blank", "   ", "is blank"},
		{"blank tab", "\t", "is blank"},
		{"inner space", "my key", "contains a space at byte 2"},
		{"trailing space", "my-key ", "contains a space at byte 6"},
		{"newline", "my-key\n", "contains a control character at byte 6"},
		{"tab", "my\tkey", "contains a control character at byte 2"},
		{"nul", "my\x00key", "contains a control character at byte 2"},
		{"delete", "my-key\x7f", "contains a control character at byte 6"},
		{"non-ASCII", "clé", "contains a non-ASCII character at byte 2"},
		{"too long", strings.Repeat("k", MaxKMSKeyIDLen+1), "is 2049 bytes long, over the limit of 2048"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := (Config{KMSKeyID: tc.id}).Validate()
			if err == nil {
				t.Fatalf("KMSKeyID %q: Validate accepted it", tc.id)
			}
			for _, want := range []string{"--kms-key-id", tc.want, "printable ASCII characters without spaces"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate = %v, want it to say %q", err, want)
				}
			}
		})
	}
}
