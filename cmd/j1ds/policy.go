package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/j1ds/j1ds/internal/s3dest"
	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

// runPolicy prints the bucket policy a customer applies to their bucket:
// the product's, which grants all of jupiterone/, or with --account the
// policy scoped to those j1ds accounts' folders (recommended).
func runPolicy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("policy", flag.ContinueOnError)
	bucket := fs.String("bucket", "", "the customer's bucket (default: <BUCKET_NAME>)")
	platform := fs.String("platform-aws-account-id", "", "the operator's AWS account id; empty: asked of STS")
	region := fs.String("region", s3dest.DefaultRegion, "region for the STS call")
	account := fs.String("account", "", "j1ds account ids, separated by commas: print the policy scoped to their folders (recommended) instead of the product's, which grants all of jupiterone/")
	if err := envFlags(fs, args); err != nil {
		return err
	}
	if *bucket != "" {
		if err := s3bucket.ValidateBucketName(*bucket); err != nil {
			return fmt.Errorf("%w: --bucket: %v", errUsage, err)
		}
	}
	var ids []string
	if *account != "" {
		var err error
		if ids, err = s3bucket.ParseAccounts(*account); err != nil {
			return fmt.Errorf("%w: --account: %v", errUsage, err)
		}
	}
	if *platform == "" {
		c, err := s3dest.New(ctx, s3dest.Config{Region: *region})
		if err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if *platform, err = c.AccountID(sctx); err != nil {
			return fmt.Errorf("the operator's AWS account id is unknown (%v): pass --platform-aws-account-id", err)
		}
	} else if err := s3bucket.ValidateAWSAccountID(*platform); err != nil {
		return fmt.Errorf("%w: --platform-aws-account-id: %v", errUsage, err)
	}
	if ids != nil {
		fmt.Println(s3bucket.AccountBucketPolicy(*platform, *bucket, ids).JSON())
		return nil
	}
	fmt.Println(s3bucket.BucketPolicy(*platform, *bucket).JSON())
	return nil
}
