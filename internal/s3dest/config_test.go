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
