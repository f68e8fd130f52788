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
	"time"

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
	if err := envFlags(fs, args); err != nil {
		return err
	}
	c := &adminClient{url: strings.TrimRight(*url, "/"), key: *opKey, http: &http.Client{Timeout: 30 * time.Second}, out: out}
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
		return c.do(ctx, "POST", "/operator/v1/accounts", map[string]any{"id": *id, "entitlements": list(*ents)})
	case "list-accounts":
		return c.do(ctx, "GET", "/operator/v1/accounts", nil)
	case "set-entitlements":
		if err := need("account", *account); err != nil {
			return err
		}
		return c.do(ctx, "PUT", "/operator/v1/accounts/"+*account+"/entitlements", map[string]any{"entitlements": list(*ents)})
	case "create-key":
		if err := need("account", *account); err != nil {
			return err
		}
		if err := need("role", *role); err != nil {
			return err
		}
		return c.do(ctx, "POST", "/operator/v1/accounts/"+*account+"/api-keys", map[string]any{"role": *role})
	case "list-keys":
		if err := need("account", *account); err != nil {
			return err
		}
		return c.do(ctx, "GET", "/operator/v1/accounts/"+*account+"/api-keys", nil)
	case "revoke-key":
		if err := need("account", *account); err != nil {
			return err
		}
		if err := need("key", *keyID); err != nil {
			return err
		}
		return c.do(ctx, "DELETE", "/operator/v1/accounts/"+*account+"/api-keys/"+*keyID, nil)
	}
	fmt.Fprint(os.Stderr, adminUsage)
	return fmt.Errorf("%w: unknown admin command %q", errUsage, cmd)
}

// do calls the operator API and prints the answer; an error answer becomes
// the command's error, with the server's message.
func (c *adminClient) do(ctx context.Context, method, path string, body any) error {
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
	if len(bytes.TrimSpace(b)) == 0 {
		fmt.Fprintln(c.out, "ok")
		return nil
	}
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		out.Reset()
		out.Write(b)
	}
	fmt.Fprintln(c.out, strings.TrimSpace(out.String()))
	return nil
}
