package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
)

// Client reads an account's streaming status and graph from j1ds's APIs
// with an API key of the account.
type Client struct {
	URL     string // base URL of j1ds, e.g. http://127.0.0.1:8080
	Account string
	Key     string
	HTTP    *http.Client // default: a client with a one-minute timeout
}

var _ Store = (*Client)(nil)

// Status is the part of GET /api/v1/accounts/{account}/data-streaming
// that verify reads (it needs an administrator key).
type Status struct {
	Enabled       bool       `json:"enabled"`
	PendingSince  *time.Time `json:"pendingSince"`
	LastExportKey string     `json:"lastExportKey"`
	Periods       []Period   `json:"periods"`
	Gaps          []Gap      `json:"gaps"`
}

// Status reads the account's data-streaming status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var v struct {
		BucketName string `json:"bucketName"`
		Status     Status `json:"status"`
	}
	if err := c.get(ctx, c.path("data-streaming"), &v); err != nil {
		return Status{}, err
	}
	return v.Status, nil
}

// List pages through the live objects of kind.
func (c *Client) List(ctx context.Context, kind graph.Kind, fn func(props []byte) error) error {
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := c.get(ctx, c.path(plural(kind))+"?"+q.Encode(), &page); err != nil {
			return err
		}
		for _, it := range page.Items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		cursor = page.NextCursor
	}
}

// Get reads one object by id, deleted ones too.
func (c *Client) Get(ctx context.Context, kind graph.Kind, id string) ([]byte, bool, error) {
	var raw json.RawMessage
	err := c.get(ctx, c.path(plural(kind))+"/"+url.PathEscape(id), &raw)
	if e, ok := err.(*apiError); ok && e.status == http.StatusNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return raw, true, nil
}

func plural(k graph.Kind) string {
	if k == graph.KindEntity {
		return "entities"
	}
	return "relationships"
}

func (c *Client) path(rest string) string {
	return "/api/v1/accounts/" + url.PathEscape(c.Account) + "/" + rest
}

// apiError is an error answer of j1ds.
type apiError struct {
	method, path  string
	status        int
	code, message string
}

func (e *apiError) Error() string {
	if e.code != "" {
		return fmt.Sprintf("%s %s: %s: %s", e.method, e.path, e.code, e.message)
	}
	return fmt.Sprintf("%s %s: HTTP %d", e.method, e.path, e.status)
}

func (c *Client) get(ctx context.Context, path string, v any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	base := strings.TrimRight(c.URL, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("call j1ds at %s: %w (is j1ds serve running there? check --url)", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("GET %s: read answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &apiError{method: "GET", path: path, status: resp.StatusCode}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &body) == nil {
			e.code, e.message = body.Error.Code, body.Error.Message
		}
		return e
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	return nil
}
