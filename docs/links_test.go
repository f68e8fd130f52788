// Package docs_test checks that README.md and docs/*.md refer only to
// files that a fresh clone of the repository holds.
package docs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReferencesExist: every relative link and every repository path that
// README.md and docs/*.md name exists in the repository, and none leads out
// of it (a reader of a fresh clone has nothing beside it).
func TestReferencesExist(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := append([]string{filepath.Join(root, "README.md")}, docs...)
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		refs, problems := brokenReferences(root, f, string(b))
		checked += refs
		for _, p := range problems {
			t.Errorf("%s: %s", rel(root, f), p)
		}
	}
	if checked < 20 {
		t.Fatalf("only %d references checked in %d files: is the test reading the documents?", checked, len(files))
	}
}

// TestReferencesExistCatchesBrokenOnes: the check finds a broken link, a
// path out of the repository and a missing repository path.
func TestReferencesExistCatchesBrokenOnes(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	doc := "See [the limits](limits.md#bodies), [gone](nope.md), the product doc\n" +
		"(`../shared/seed/j1ds-product-doc.txt`), `internal/nosuchpackage/doc.go` and\n" +
		"`internal/exporter/layout.go`; `go run ./cmd/j1ds demo`, `./j1ds-data` and https://example.com/x.md.\n" +
		"```sh\ncat ../../outside.txt\n```\n"
	_, problems := brokenReferences(root, filepath.Join(root, "docs", "example.md"), doc)
	got := strings.Join(problems, "\n")
	for _, want := range []string{"nope.md", "../shared/seed/j1ds-product-doc.txt", "internal/nosuchpackage/doc.go", "../../outside.txt"} {
		if !strings.Contains(got, want) {
			t.Errorf("a broken reference to %s is not reported; reported:\n%s", want, got)
		}
	}
	if len(problems) != 4 {
		t.Errorf("want 4 problems, got %d:\n%s", len(problems), got)
	}
}

var (
	// mdLink is an inline Markdown link or image: [text](target).
	mdLink = regexp.MustCompile(`\]\(([^()\s]+)(?:\s+"[^"]*")?\)`)
	// codeSpan is a backtick span without spaces (a path, not a command).
	codeSpan = regexp.MustCompile("`([^`\\s]+)`")
	// parentPath is a path that climbs out of the document's directory,
	// anywhere in the text (commands in code blocks too).
	parentPath = regexp.MustCompile(`(?:^|[\s("'=` + "`" + `])((?:\.\./)+[\w.@+-][\w./@+-]*)`)
)

// brokenReferences returns how many references the document at path
// (under root) makes and what is wrong with them: relative links whose
// file is missing, paths that lead out of root, and code spans naming a
// path under one of root's top-level entries (internal/..., docs/...,
// tools/...) that does not exist.
func brokenReferences(root, path, text string) (int, []string) {
	top := map[string]bool{}
	if entries, err := os.ReadDir(root); err == nil {
		for _, e := range entries {
			if e.Name() != ".git" {
				top[e.Name()] = true
			}
		}
	}
	dir := filepath.Dir(path)
	seen := map[string]bool{}
	var problems []string
	refs := 0
	check := func(kind, ref, base string) {
		if seen[ref] {
			return
		}
		seen[ref] = true
		refs++
		target := filepath.Clean(filepath.Join(base, filepath.FromSlash(ref)))
		if r, err := filepath.Rel(root, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			problems = append(problems, fmt.Sprintf("%s %s leads out of the repository", kind, ref))
			return
		}
		if _, err := os.Stat(target); err != nil {
			problems = append(problems, fmt.Sprintf("%s %s: no such file in the repository", kind, ref))
		}
	}
	for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		if i := strings.IndexByte(target, '#'); i >= 0 {
			target = target[:i]
		}
		check("link", target, dir)
	}
	for _, m := range parentPath.FindAllStringSubmatch(text, -1) {
		check("path", strings.TrimRight(m[1], ".,;:"), dir)
	}
	for _, m := range codeSpan.FindAllStringSubmatch(text, -1) {
		p := strings.TrimPrefix(m[1], "./")
		first, _, nested := strings.Cut(p, "/")
		if !nested || !top[first] || strings.ContainsAny(p, "<>{}*") {
			continue
		}
		check("path", strings.TrimSuffix(p, "/"), root)
	}
	return refs, problems
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}
