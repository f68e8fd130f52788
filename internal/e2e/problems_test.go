package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

// whoActs is a problem as the APIs show it, with who must act.
type whoActs struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	ActionBy string `json:"actionBy"`
}

// TestStreamProblemsSayWhoActs: through j1ds and versitygw (answers
// shaped by the recording proxy where versitygw cannot produce them), each
// problem names who must act. The customer reads what to fix in their
// bucket, or that the service is retrying; what the operator must check
// (the endpoint flag, the network, the credentials) is in the operator's
// log only.
func TestStreamProblemsSayWhoActs(t *testing.T) {
	e := startS3(t, "")
	j, logs := startServeLogged(t, streamConfig(t, e))
	key := j.account(t, "acme", true)
	toBucket := func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/"+streamBucket+"/") }
	test := func() whoActs {
		t.Helper()
		var r struct {
			OK    bool     `json:"ok"`
			Error *whoActs `json:"error"`
		}
		decode(t, j.must(t, http.StatusOK, "POST", streamingPath("acme")+"/test-connection", key,
			map[string]any{"bucketName": streamBucket, "awsAccountId": s3Owner}), &r)
		if r.OK || r.Error == nil {
			t.Fatalf("the connection test passed under a fault")
		}
		return *r.Error
	}
	for _, c := range []struct {
		name         string
		fault        locals3.Fault
		code, by     string
		says, logged []string
	}{
		{"the bucket's default KMS key does not exist", locals3.Fault{Status: http.StatusBadRequest, Code: "KMS.NotFoundException", Message: "Invalid keyId alias/gone"},
			"KMS_KEY_NOT_FOUND", "customer", []string{"default encryption", "does not exist"}, nil},
		{"a 404 that is not NoSuchBucket", locals3.Fault{Status: http.StatusNotFound, Code: "NoSuchKey", Message: "The specified key does not exist."},
			"NOT_FOUND", "operator", []string{"without saying what is missing", streamBucket, "retrying"}, []string{"--s3-endpoint", "NoSuchKey"}},
		{"connection reset", locals3.Fault{Reset: true},
			"NETWORK", "operator", []string{"retrying"}, []string{"connection"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.fault.Count, c.fault.Match = -1, toBucket
			e.proxy.SetFault(c.fault)
			defer e.proxy.SetFault(locals3.Fault{})
			p := test()
			checkProblem(t, p, c.code, c.by, c.says)
			checkLogged(t, logs, "connection test failed", c.code, c.by, c.logged)
		})
	}

	// An export failure shows who acts in the status as well.
	j.enable(t, key, "acme", streamBucket, s3Owner)
	e.proxy.SetFault(locals3.Fault{Status: http.StatusServiceUnavailable, Count: -1, Match: toBucket})
	j.create(t, key, "acme", "entities", entity("acme-user-1", "test_user", []string{"User"}, "name", "One"))
	var st struct {
		Status struct {
			LastError *whoActs `json:"lastError"`
		} `json:"status"`
	}
	waitFor(t, time.Minute, "the export failure in the status", func() bool {
		decode(t, j.must(t, http.StatusOK, "GET", streamingPath("acme"), key, nil), &st)
		return st.Status.LastError != nil
	})
	e.proxy.SetFault(locals3.Fault{})
	checkProblem(t, *st.Status.LastError, "THROTTLED", "operator", []string{"retrying"})
	checkLogged(t, logs, "export failed", "THROTTLED", "operator", []string{"503"})
	waitExported(t, j, key, "acme", 1)
}

// TestStreamMissingCredentials: j1ds started with no AWS credentials
// anywhere: Test Connection tells the customer that the service's side
// must be fixed (SERVICE_CREDENTIALS, by the operator), and the operator's
// log says which credentials to set.
func TestStreamMissingCredentials(t *testing.T) {
	e := startS3(t, "")
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg := streamConfig(t, e)
	cfg.S3.Credentials = nil
	j, logs := startServeLogged(t, cfg)
	key := j.account(t, "acme", true)
	n := len(e.proxy.Requests())
	r := j.testConnection(t, key, "acme", streamBucket, s3Owner)
	if r.OK || r.Error == nil {
		t.Fatalf("the connection test passed without credentials")
	}
	var p whoActs
	decode(t, j.must(t, http.StatusOK, "GET", streamingPath("acme"), key, nil), &struct {
		LastConnectionTest *struct {
			Error *whoActs `json:"error"`
		} `json:"lastConnectionTest"`
	}{LastConnectionTest: &struct {
		Error *whoActs `json:"error"`
	}{Error: &p}})
	checkProblem(t, p, "SERVICE_CREDENTIALS", "operator", []string{"nothing to change in your settings", "retrying"})
	checkLogged(t, logs, "connection test failed", "SERVICE_CREDENTIALS", "operator", []string{"AWS_ACCESS_KEY_ID", "--assume-role-arn"})
	if m := len(e.proxy.Requests()) - n; m != 0 {
		t.Errorf("%d requests reached S3 without credentials", m)
	}
}

// checkProblem checks a problem's code, who acts and its words, and that
// the customer's words hold none of the operator's detail.
func checkProblem(t *testing.T, p whoActs, code, by string, says []string) {
	t.Helper()
	if p.Code != code || p.ActionBy != by {
		t.Fatalf("problem %+v, want %s by the %s", p, code, by)
	}
	for _, s := range says {
		if !strings.Contains(p.Message, s) {
			t.Errorf("%s: the message %q does not say %q", code, p.Message, s)
		}
	}
	for _, s := range []string{"--", "AWS_", "127.0.0.1", "dial", "j1ds"} {
		if strings.Contains(p.Message, s) {
			t.Errorf("%s: the customer's message %q holds the operator's detail %q", code, p.Message, s)
		}
	}
}

// checkLogged checks that the log has a line msg for code, naming who acts
// and holding each of detail.
func checkLogged(t *testing.T, logs *testLog, msg, code, by string, detail []string) {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, `"msg":"`+msg+`"`) || !strings.Contains(line, `"code":"`+code+`"`) {
			continue
		}
		if !strings.Contains(line, `"action_by":"`+by+`"`) {
			t.Errorf("log line %s does not name the %s", line, by)
		}
		for _, d := range detail {
			if !strings.Contains(line, d) {
				t.Errorf("log line %s does not say %q", line, d)
			}
		}
		return
	}
	t.Errorf("no %q line for %s in the log", msg, code)
}
