package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/j1ds/j1ds/internal/s3dest"
	"github.com/j1ds/j1ds/internal/verify"
)

const verifyUsage = `Usage: j1ds verify --account ID (--bucket NAME | --dir PATH) [flags]

Checks the objects j1ds streamed for an account (everything under
jupiterone/graph/cdc/accountId=ID/) and prints a report: each key follows the
layout, each body is gzip, each line is a record of the documented format with
the right account and labels, keys sorted are commit order, and per object id
_version rises by exactly one within each enabled period (no gap, no
duplicate). Every violation is listed with its object key and line.

  --bucket NAME   read the bucket with your own AWS credentials (the standard
                  chain: AWS_* environment, shared config, instance metadata;
                  CAs from AWS_CA_BUNDLE). They need s3:ListBucket and
                  s3:GetObject; j1ds's write-only role cannot read.
  --dir PATH      read a local copy laid out like the bucket
                  (aws s3 sync s3://NAME PATH).
  --url, --key    j1ds's URL and an administrator API key of the account
                  (better in J1DS_KEY than on the command line): verify reads
                  the enabled periods and retention gaps from the status, so a
                  version jump across a disable and re-enable is allowed.
                  Without them the whole stream counts as one period.
  --compare       also rebuild the graph from the records (last record per
                  _id wins) and diff it with j1ds's current graph: objects
                  missing from the bucket, extra in it, properties that
                  differ. Meaningful only when streaming covered the whole
                  history of the objects and the export has caught up.

Exit code: 0 no violation, 1 violations (or the check could not finish),
2 usage error. Flags (each also J1DS_<FLAG>):
`

// verifyFlags are the flags of j1ds verify.
type verifyFlags struct {
	account, bucket, dir    string
	region, endpoint, owner string
	insecure                bool
	suffix                  string
	url, key                string
	compare, json, progress bool
	maxViolations, parallel int
}

func newVerifyFlags(f *verifyFlags, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, verifyUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.account, "account", "", "the account whose objects are checked (required)")
	fs.StringVar(&f.bucket, "bucket", "", "the S3 bucket to read")
	fs.StringVar(&f.dir, "dir", "", "a local copy of the bucket to read instead")
	fs.StringVar(&f.region, "region", s3dest.DefaultRegion, "the bucket's AWS region")
	fs.StringVar(&f.endpoint, "s3-endpoint", "", "S3-compatible endpoint (path-style); empty for AWS")
	fs.BoolVar(&f.insecure, "allow-insecure-endpoint", false, "allow a plain http:// --s3-endpoint (development only)")
	fs.StringVar(&f.owner, "expected-bucket-owner", "", "the AWS account id that must own the bucket (S3 refuses otherwise)")
	fs.StringVar(&f.suffix, "object-suffix", "", "require this key suffix (.jsonl or .jsonl.gz); empty accepts both")
	fs.StringVar(&f.url, "url", "", "base URL of j1ds, e.g. http://127.0.0.1:8080, to read the enabled periods")
	fs.StringVar(&f.key, "key", "", "an administrator API key of the account (prefer J1DS_KEY)")
	fs.BoolVar(&f.compare, "compare", false, "diff the graph rebuilt from the objects with j1ds's (needs --url and --key)")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
	fs.BoolVar(&f.progress, "progress", false, "show progress on stderr even when it is not a terminal")
	fs.IntVar(&f.maxViolations, "max-violations", 100, "how many violations the report lists (all are counted)")
	fs.IntVar(&f.parallel, "parallel", 4, "objects read at once (memory holds this many object bodies)")
	return fs
}

// errViolations is the error of a verification that found violations:
// exit code 1, the report says what.
var errViolations = errors.New("violations found")

func runVerify(ctx context.Context, args []string) error {
	return verifyCmd(ctx, args, os.Stdout, os.Stderr)
}

// verifyCmd runs j1ds verify, printing the report to stdout and progress
// to stderr.
func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f verifyFlags
	if err := envFlags(newVerifyFlags(&f, stderr), args); err != nil {
		return err
	}
	cfg, err := f.config(ctx, stderr)
	if err != nil {
		return err
	}
	rep, err := verify.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("verify %s: %w", cfg.Account, err)
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if !rep.Clean() {
		return fmt.Errorf("%w: %d in account %s", errViolations, rep.Violations, rep.Account)
	}
	return nil
}

// config checks the flags and builds the verification: the source, and
// the periods (and store, with --compare) from j1ds.
func (f *verifyFlags) config(ctx context.Context, stderr io.Writer) (verify.Config, error) {
	usage := func(format string, args ...any) (verify.Config, error) {
		return verify.Config{}, fmt.Errorf("%w: verify: %s", errUsage, fmt.Sprintf(format, args...))
	}
	switch {
	case f.account == "":
		return usage("--account is required: the account whose objects to check")
	case (f.bucket == "") == (f.dir == ""):
		return usage("give exactly one of --bucket NAME and --dir PATH")
	case f.compare && (f.url == "" || f.key == ""):
		return usage("--compare needs --url and --key (or J1DS_KEY): the j1ds to compare with and a key of the account")
	case f.url != "" && f.key == "":
		return usage("--url needs --key (or J1DS_KEY): an administrator key of the account")
	case f.maxViolations < 1 || f.parallel < 1:
		return usage("--max-violations and --parallel must be at least 1")
	}
	cfg := verify.Config{Account: f.account, Suffix: f.suffix, MaxViolations: f.maxViolations, Parallel: f.parallel}
	if tty := isTerminal(stderr); f.progress || tty {
		cfg.Progress, cfg.ProgressTerminal = stderr, tty
	}
	if f.dir != "" {
		cfg.Source = verify.Dir{Root: f.dir}
	} else {
		if err := (s3dest.Config{Region: f.region, Endpoint: f.endpoint, AllowInsecureEndpoint: f.insecure}).Validate(); err != nil {
			return usage("%v", err)
		}
		src, err := verify.NewS3(ctx, verify.S3Options{Bucket: f.bucket, Region: f.region, Endpoint: f.endpoint,
			AllowInsecureEndpoint: f.insecure, ExpectedBucketOwner: f.owner})
		if err != nil {
			return verify.Config{}, err
		}
		cfg.Source = src
	}
	if err := cfg.Validate(); err != nil {
		return usage("%v", err)
	}
	if f.url != "" {
		c := &verify.Client{URL: f.url, Account: f.account, Key: f.key}
		st, err := c.Status(ctx)
		if err != nil {
			return verify.Config{}, fmt.Errorf("read the data-streaming status of %s: %w (verify reads the enabled periods with an administrator key of the account)", f.account, err)
		}
		cfg.Periods, cfg.Gaps = st.Periods, st.Gaps
		if st.Enabled && st.PendingSince != nil {
			cfg.Notes = append(cfg.Notes, fmt.Sprintf("j1ds has changes not yet exported (pending since %s): they are not in the bucket yet, and --compare shows them as differences until they are", st.PendingSince.UTC().Format(time.RFC3339)))
		}
		if f.compare {
			cfg.Store = c
		}
	}
	return cfg, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
