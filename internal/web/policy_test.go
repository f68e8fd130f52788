package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/web"
)

// TestPolicyPanelOffersBothScopes: the S3 Bucket Policy panel offers the
// product's policy, checked by default, and the one scoped to the account,
// which the script asks of the API (the browser test,
// TestSettingsPagePolicyChoice in internal/e2e, drives it).
func TestPolicyPanelOffersBothScopes(t *testing.T) {
	mux := http.NewServeMux()
	web.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	page := get(web.Path)
	for _, want := range []string{
		`<input type="radio" id="policy-all" name="policy-scope" value="all" checked>`,
		`<label for="policy-all">All of <code>jupiterone/</code> (product default)</label>`,
		`<input type="radio" id="policy-account" name="policy-scope" value="account">`,
		`<label for="policy-account">Only this account's folder (recommended)</label>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if js := get("/settings/assets/app.js"); !strings.Contains(js, `'/bucket-policy?scope=account'`) {
		t.Error("app.js does not ask the API for the scoped policy")
	}
}
