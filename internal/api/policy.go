package api

import (
	"net/http"
	"strconv"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

// bucketPolicy answers GET .../data-streaming/bucket-policy: the bucket
// policy a customer applies. ?scope=all (the default) is the product's
// policy, which grants all of jupiterone/; ?scope=account is the policy
// scoped to this account's folder, or to the accounts of ?accounts=ID,...
// (one statement each) for a bucket several accounts stream into.
// ?bucket= fills in the bucket (a placeholder without it).
func (s *Server) bucketPolicy(w http.ResponseWriter, r *http.Request, p principal) {
	q := r.URL.Query()
	bucket := q.Get("bucket")
	if bucket != "" {
		if err := s3bucket.ValidateBucketName(bucket); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "INVALID_SETTINGS", err.Error())
			return
		}
	}
	platform := s.cfg.Streaming.PlatformAccountID
	switch scope := q.Get("scope"); scope {
	case "", "all":
		if q.Has("accounts") {
			writeError(w, http.StatusUnprocessableEntity, "INVALID_SETTINGS", "accounts: names the accounts of the policy scoped to their folders: add scope=account")
			return
		}
		writeJSON(w, http.StatusOK, s3bucket.BucketPolicy(platform, bucket))
	case "account":
		ids := []string{p.account.ID}
		if q.Has("accounts") {
			var err error
			if ids, err = s3bucket.ParseAccounts(q.Get("accounts")); err != nil {
				writeError(w, http.StatusUnprocessableEntity, "INVALID_SETTINGS", "accounts: "+err.Error())
				return
			}
		}
		writeJSON(w, http.StatusOK, s3bucket.AccountBucketPolicy(platform, bucket, ids))
	default:
		writeError(w, http.StatusUnprocessableEntity, "INVALID_SETTINGS", "scope: "+quoteQuery(scope)+" is not a policy scope: use all (the product's policy, all of jupiterone/) or account (only this account's folder, recommended)")
	}
}

// quoteQuery renders a query value for an error message, shortened.
func quoteQuery(v string) string {
	return strconv.Quote(truncate(v, 64))
}
