package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/serve"
)

const adminUsage = `Usage: j1ds admin <command> [flags]

Commands (each calls the operator API of a running j1ds):
  create-account    --id ID [--entitlements data-streaming]
  list-accounts
  set-entitlements  --account ID --entitlements LIST   (comma separated; "" for none)
  create-key        --account ID --role admin|member    (prints the key once)
  list-keys         --account ID
  revoke-key        --account ID --key KEY_ID

Answers print as lines and tables; --json prints the API's JSON answer
instead (one document per command, ending with a newline; nothing for
revoke-key).

Common flags: --url (J1DS_URL, default http://127.0.0.1:8080),
--operator-key (J1DS_OPERATOR_KEY; default: the key j1ds generated in
--data DIR/operator-key, --data defaulting to ./j1ds-data; a j1ds on
PostgreSQL keeps only the hash of the key it generated: pass the key it
logged at its first start).
`

type adminClient struct {
	url, key string
	http     *http.Client
	out      io.Writer
	json     bool // print the API's JSON answer rather than lines and tables
}

func runAdmin(ctx context.Context, args []string) error {
	return admin(ctx, args, os.Stdout)
}

// admin runs an admin command, printing the answer to out.
func admin(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, adminUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: name an admin command", errUsage)
		}
		return nil
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("admin "+cmd, flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "base URL of j1ds")
	opKey := fs.String("operator-key", "", "operator key")
	data := fs.String("data", "./j1ds-data", "data directory holding the generated operator key")
	id := fs.String("id", "", "account id")
	account := fs.String("account", "", "account id")
	ents := fs.String("entitlements", "", "entitlements, comma separated")
	role := fs.String("role", "", "admin or member")
	keyID := fs.String("key", "", "key id (not the secret)")
	asJSON := fs.Bool("json", false, "print the API's JSON answer, for scripts")
	if err := envFlags(fs, args); err != nil {
		return err
	}
	c := &adminClient{url: strings.TrimRight(*url, "/"), key: *opKey, http: &http.Client{Timeout: 30 * time.Second}, out: out, json: *asJSON}
	if c.key == "" {
		b, err := os.ReadFile(filepath.Join(*data, serve.OperatorKeyFile))
		if err != nil {
			return fmt.Errorf("no operator key: pass --operator-key or J1DS_OPERATOR_KEY (for a j1ds on PostgreSQL, the key it logged at its first start), or point --data at the data directory of the j1ds you started (%v)", err)
		}
		c.key = strings.TrimSpace(string(b))
	}
	need := func(name, v string) error {
		if v == "" {
			return fmt.Errorf("%w: admin %s needs --%s", errUsage, cmd, name)
		}
		return nil
	}
	list := func(s string) []string {
		out := []string{}
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
		return out
	}
	switch cmd {
	case "create-account":
		if err := need("id", *id); err != nil {
			return err
		}
		var a accounts.Account
		return c.do(ctx, "POST", "/operator/v1/accounts", map[string]any{"id": *id, "entitlements": list(*ents)}, &a, func(w io.Writer) { printAccount(w, a) })
	case "list-accounts":
		var l struct{ Accounts []accounts.Account }
		return c.do(ctx, "GET", "/operator/v1/accounts", nil, &l, func(w io.Writer) { printAccounts(w, l.Accounts) })
	case "set-entitlements":
		if err := need("account", *account); err != nil {
			return err
		}
		var a accounts.Account
		return c.do(ctx, "PUT", "/operator/v1/accounts/"+*account+"/entitlements", map[string]any{"entitlements": list(*ents)}, &a, func(w io.Writer) { printAccount(w, a) })
	case "create-key":
		if err := need("account", *account); err != nil {
			return err
		}
		if err := need("role", *role); err != nil {
			return err
		}
		var k createdKey
		return c.do(ctx, "POST", "/operator/v1/accounts/"+*account+"/api-keys", map[string]any{"role": *role}, &k, func(w io.Writer) { printCreatedKey(w, k) })
	case "list-keys":
		if err := need("account", *account); err != nil {
			return err
		}
		var l struct{ Keys []accounts.Key }
		return c.do(ctx, "GET", "/operator/v1/accounts/"+*account+"/api-keys", nil, &l, func(w io.Writer) { printKeys(w, *account, l.Keys) })
	case "revoke-key":
		if err := need("account", *account); err != nil {
			return err
		}
		if err := need("key", *keyID); err != nil {
			return err
		}
		return c.do(ctx, "DELETE", "/operator/v1/accounts/"+*account+"/api-keys/"+*keyID, nil, nil, func(w io.Writer) {
			fmt.Fprintf(w, "revoked key %s of account %s\n", *keyID, *account)
		})
	}
	fmt.Fprint(os.Stderr, adminUsage)
	return fmt.Errorf("%w: unknown admin command %q", errUsage, cmd)
}

// do calls the operator API. With --json it prints the answer as the API
// sent it, ending with a newline; otherwise it decodes the answer into
// into (when not nil) and calls show to print it for a reader. An error
// answer becomes the command's error, with the server's message.
func (c *adminClient) do(ctx context.Context, method, path string, body, into any, show func(io.Writer)) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("call j1ds at %s: %w (is j1ds serve running there? set --url)", c.url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if c.json {
		if b = bytes.TrimSpace(b); len(b) > 0 {
			_, err = fmt.Fprintf(c.out, "%s\n", b)
		}
		return err
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			return fmt.Errorf("%s %s: unreadable answer (%v): is --url a j1ds of the same version?", method, path, err)
		}
	}
	show(c.out)
	return nil
}

// createdKey is the answer to create-key: the secret, shown once, beside
// the key's public record.
type createdKey struct {
	Secret string `json:"key"`
	accounts.Key
}

const timeLayout = "2006-01-02 15:04:05Z07:00"

// entitlementList prints an account's entitlements, or "none".
func entitlementList(es []string) string {
	if len(es) == 0 {
		return "none"
	}
	return strings.Join(es, ",")
}

func printAccount(w io.Writer, a accounts.Account) {
	fmt.Fprintf(w, "account:       %s\n", a.ID)
	fmt.Fprintf(w, "entitlements:  %s\n", entitlementList(a.Entitlements))
	fmt.Fprintf(w, "created:       %s\n", a.CreatedAt.UTC().Format(timeLayout))
}

func printAccounts(w io.Writer, as []accounts.Account) {
	if len(as) == 0 {
		fmt.Fprintln(w, "no accounts: create one with j1ds admin create-account --id ID")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tENTITLEMENTS\tCREATED")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.ID, entitlementList(a.Entitlements), a.CreatedAt.UTC().Format(timeLayout))
	}
	tw.Flush()
}

func printCreatedKey(w io.Writer, k createdKey) {
	fmt.Fprintf(w, "account:  %s\n", k.Account)
	fmt.Fprintf(w, "key id:   %s\n", k.ID)
	fmt.Fprintf(w, "role:     %s\n", k.Role)
	fmt.Fprintf(w, "created:  %s\n", k.CreatedAt.UTC().Format(timeLayout))
	fmt.Fprintf(w, "\n%s\n\n", k.Secret)
	fmt.Fprintln(w, "The key above is shown only once: j1ds keeps only its hash. Store it now;")
	fmt.Fprintf(w, "if it is lost, create another and revoke this one (--key %s).\n", k.ID)
}

func printKeys(w io.Writer, account string, ks []accounts.Key) {
	if len(ks) == 0 {
		fmt.Fprintf(w, "no keys for account %s: create one with j1ds admin create-key --account %s --role admin\n", account, account)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tROLE\tCREATED")
	for _, k := range ks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.Role, k.CreatedAt.UTC().Format(timeLayout))
	}
	tw.Flush()
}
