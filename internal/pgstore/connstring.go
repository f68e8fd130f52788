package pgstore

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CheckURL reports what is wrong with a connection URL, as Open would
// find it, without connecting. It accepts postgres:// and postgresql://
// URLs only. Its errors never hold a password.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the whole URL: keep only what went wrong.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("the scheme is %q: want a postgres://USER@HOST:PORT/DATABASE URL (sslmode and other settings as query parameters)", u.Scheme)
	}
	if _, err := pgxpool.ParseConfig(s); err != nil {
		return fmt.Errorf("%s", strings.TrimSpace(Redact(err.Error(), s)))
	}
	return nil
}

// RedactURL returns the connection URL s with its passwords (in the user
// information, and the password and sslpassword parameters) replaced by
// "xxxxx", for logs and errors. A string that is not a postgres:// or
// postgresql:// URL is not shown at all.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "(a connection string that is not a postgres:// URL, not shown)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if q := u.Query(); q.Has("password") || q.Has("sslpassword") {
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Redact returns text with every password of the connection URL s that
// it holds replaced by "xxxxx", decoded or in any of the encodings a URL
// gives it.
func Redact(text, s string) string {
	for _, pw := range passwords(s) {
		text = strings.ReplaceAll(text, pw, "xxxxx")
	}
	return text
}

// passwords returns the passwords a connection URL holds, each as it is
// written in s and decoded, longest first.
func passwords(s string) []string {
	u, err := url.Parse(s)
	if err != nil {
		return nil
	}
	var out []string
	add := func(pw string) {
		if pw != "" {
			out = append(out, pw, url.QueryEscape(pw), url.PathEscape(pw),
				strings.TrimPrefix(url.UserPassword("", pw).String(), ":"))
		}
	}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			add(pw)
		}
		// As written: between the first ':' and the '@' of the user
		// information.
		rest := strings.TrimPrefix(strings.TrimPrefix(s, u.Scheme), "://")
		if at := strings.IndexAny(rest, "@/"); at >= 0 && rest[at] == '@' {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok && pw != "" {
				out = append(out, pw)
			}
		}
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		for _, pw := range q[k] {
			add(pw)
		}
		// As written in the query.
		for _, kv := range strings.Split(u.RawQuery, "&") {
			if v, ok := strings.CutPrefix(kv, k+"="); ok && v != "" {
				out = append(out, v)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}
