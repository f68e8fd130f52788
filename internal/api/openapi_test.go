package api

// Tests of openapi.json, the document served at GET /openapi.json: it is
// valid enough to use, it documents every route the server registers (read
// from the source of every file of the package, so a new route without docs
// fails here) and no other, and it names every error code the API can
// answer, and every code a write to a customer's bucket can fail with.

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/graph"
)

var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc
}

// resolvePointer resolves a local reference ("#/a/b") in doc.
func resolvePointer(doc map[string]any, ref string) (any, bool) {
	if ref == "#" {
		return doc, true
	}
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	var cur any = doc
	for _, seg := range strings.Split(ref[2:], "/") {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// deref follows $ref until it reaches a value that is not a reference.
func deref(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("expected an object, got %T", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		if v, ok = resolvePointer(doc, ref); !ok {
			t.Fatalf("$ref %q does not resolve", ref)
		}
	}
	t.Fatalf("$ref chain too long")
	return nil
}

// documentedOperations returns the operations of the document as
// "METHOD /path", each with its operation object.
func documentedOperations(t *testing.T, doc map[string]any) map[string]map[string]any {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatalf("openapi.json has no paths object")
	}
	ops := map[string]map[string]any{}
	for path, item := range paths {
		im, ok := item.(map[string]any)
		if !ok {
			t.Fatalf("path %s is not an object", path)
		}
		for key, v := range im {
			if !slices.Contains(openAPIMethods, key) {
				continue
			}
			op, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%s %s is not an object", key, path)
			}
			ops[strings.ToUpper(key)+" "+path] = op
		}
	}
	return ops
}

func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	if info, _ := doc["info"].(map[string]any); info["title"] == nil || info["version"] == nil {
		t.Errorf("info needs a title and a version: %v", info)
	}

	// Every $ref resolves inside the document.
	refs := 0
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"]; ok {
				s, isStr := ref.(string)
				if _, found := resolvePointer(doc, s); !isStr || !found {
					t.Errorf("%s: $ref %v does not resolve inside the document", at, ref)
				}
				refs++
			}
			for k, c := range v {
				walk(c, at+"/"+k)
			}
		case []any:
			for i, c := range v {
				walk(c, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(doc, "#")
	if refs == 0 {
		t.Errorf("no $ref at all: expected shared components")
	}

	schemes, _ := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	for _, name := range []string{"operatorKey", "apiKey"} {
		s, _ := schemes[name].(map[string]any)
		if s["type"] != "http" || s["scheme"] != "bearer" {
			t.Errorf("security scheme %s = %v, want an http bearer scheme", name, s)
		}
	}

	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	opIDs := map[string]string{}
	for name, op := range documentedOperations(t, doc) {
		path := name[strings.Index(name, " ")+1:]
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s: no operationId", name)
		} else if other, dup := opIDs[id]; dup {
			t.Errorf("%s: operationId %s is also used by %s", name, id, other)
		}
		opIDs[id] = name

		// Path parameters are declared exactly and required.
		want := map[string]bool{}
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			want[m[1]] = true
		}
		got := map[string]bool{}
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			pm := deref(t, doc, p)
			if pm["in"] == "path" {
				n, _ := pm["name"].(string)
				got[n] = true
				if pm["required"] != true {
					t.Errorf("%s: path parameter %s is not required", name, n)
				}
				if !want[n] {
					t.Errorf("%s: path parameter %s is not in the path", name, n)
				}
			}
		}
		for n := range want {
			if !got[n] {
				t.Errorf("%s: path parameter {%s} is not declared", name, n)
			}
		}

		sec, ok := op["security"].([]any)
		if !ok {
			t.Errorf("%s: no security list (use [] for none)", name)
		}
		for _, req := range sec {
			for s := range req.(map[string]any) {
				if _, ok := schemes[s]; !ok {
					t.Errorf("%s: security scheme %s is not declared", name, s)
				}
			}
		}

		responses, _ := op["responses"].(map[string]any)
		ok2xx := false
		for code := range responses {
			if strings.HasPrefix(code, "2") {
				ok2xx = true
			}
		}
		if !ok2xx {
			t.Errorf("%s: no 2xx response", name)
		}
	}
}

// servedRoutes returns the patterns the server registers, read from the
// source of every non-test file of the package: each function that
// registers a route (routes() in server.go, streamingRoutes() in
// streaming.go, ...) is evaluated by a routeWalker. Every registration call
// in those files must be one the walkers evaluated, so a route added
// anywhere, in any form, either is checked against the document or fails
// here.
func servedRoutes(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*ast.File
	// Functions of the package, which route patterns may call.
	funcs := map[string]*ast.FuncDecl{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		pf, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		parsed = append(parsed, pf)
		for _, d := range pf.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
				funcs[fd.Name.Name] = fd
			}
		}
	}

	var routes []string
	evaluated := map[token.Pos]bool{}
	all := map[token.Pos]bool{}
	sawRoutes := false
	for _, pf := range parsed {
		for _, d := range pf.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			if fd.Recv != nil && fd.Name.Name == "routes" {
				sawRoutes = true
			}
			registers := false
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok && isHandle(call) {
					registers = true
					all[call.Pos()] = true
				}
				return true
			})
			if !registers {
				continue
			}
			w := &routeWalker{t: t, fset: fset, env: map[string]string{}, funcs: funcs, seen: evaluated}
			w.stmts(fd.Body.List)
			routes = append(routes, w.routes...)
		}
	}
	if !sawRoutes {
		t.Fatalf("the package has no routes method")
	}
	for _, pos := range sortedPositions(all) {
		if !evaluated[pos] {
			t.Errorf("%s: a route is registered where openapi_test.go does not look (inside a function literal?); teach it this form", fset.Position(pos))
		}
	}
	if len(routes) == 0 {
		t.Fatalf("found no routes in the package")
	}
	return routes
}

func sortedPositions(m map[token.Pos]bool) []token.Pos {
	out := make([]token.Pos, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// routeWalker evaluates the route patterns of a function that registers
// routes (with m.HandleFunc, m.Handle or s.mux.HandleFunc): string literals,
// constants and variables built from them with +, loops over kinds, and
// calls of the package's functions of one argument made of if/switch and
// return statements. Forms it does not understand fail the test, so it is
// taught them rather than skipping a route.
type routeWalker struct {
	t      *testing.T
	fset   *token.FileSet
	env    map[string]string
	funcs  map[string]*ast.FuncDecl
	routes []string
	depth  int
	// seen records the registration calls evaluated.
	seen map[token.Pos]bool
}

// graphKinds gives the value a graph kind has for the walker: its String(),
// so k.String() of a kind evaluates to the kind's value.
var graphKinds = map[string]string{
	"KindEntity":       graph.KindEntity.String(),
	"KindRelationship": graph.KindRelationship.String(),
}

func (w *routeWalker) stmts(list []ast.Stmt) {
	for _, s := range list {
		w.stmt(s)
	}
}

func (w *routeWalker) stmt(s ast.Stmt) {
	switch s := s.(type) {
	case *ast.DeclStmt:
		gd, ok := s.Decl.(*ast.GenDecl)
		if !ok {
			return
		}
		for _, sp := range gd.Specs {
			vs, ok := sp.(*ast.ValueSpec)
			if !ok {
				continue
			}
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					w.set(name.Name, vs.Values[i])
				}
			}
		}
	case *ast.AssignStmt:
		for i, lhs := range s.Lhs {
			if id, ok := lhs.(*ast.Ident); ok && i < len(s.Rhs) {
				w.set(id.Name, s.Rhs[i])
			}
		}
	case *ast.ExprStmt:
		if call, ok := s.X.(*ast.CallExpr); ok && isHandle(call) {
			p, ok := w.eval(call.Args[0])
			if !ok {
				w.t.Fatalf("%s: cannot work out the route pattern of this call; teach openapi_test.go its form", w.fset.Position(call.Pos()))
			}
			w.routes = append(w.routes, p)
			if w.seen != nil {
				w.seen[call.Pos()] = true
			}
			return
		}
		w.noHandle(s)
	case *ast.IfStmt:
		w.stmts(s.Body.List)
		if s.Else != nil {
			w.stmt(s.Else)
		}
	case *ast.BlockStmt:
		w.stmts(s.List)
	case *ast.RangeStmt:
		lit, ok := s.X.(*ast.CompositeLit)
		v, isIdent := s.Value.(*ast.Ident)
		if !ok || !isIdent {
			w.noHandle(s)
			return
		}
		for _, e := range lit.Elts {
			val, ok := w.eval(e)
			if !ok {
				w.t.Fatalf("%s: cannot evaluate the loop value; teach openapi_test.go its form", w.fset.Position(e.Pos()))
			}
			w.env[v.Name] = val
			w.stmts(s.Body.List)
		}
		delete(w.env, v.Name)
	default:
		w.noHandle(s)
	}
}

func (w *routeWalker) set(name string, e ast.Expr) {
	if v, ok := w.eval(e); ok {
		w.env[name] = v
	} else {
		delete(w.env, name)
	}
}

// noHandle fails when a statement the walker does not follow registers a
// route.
func (w *routeWalker) noHandle(n ast.Node) {
	ast.Inspect(n, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok && isHandle(call) {
			w.t.Fatalf("%s: a route is registered in a statement openapi_test.go does not follow; teach it this form", w.fset.Position(call.Pos()))
		}
		_, isFunc := n.(*ast.FuncLit)
		return !isFunc
	})
}

func isHandle(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && (sel.Sel.Name == "HandleFunc" || sel.Sel.Name == "Handle") && len(call.Args) == 2
}

func (w *routeWalker) eval(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			s, err := strconv.Unquote(e.Value)
			return s, err == nil
		}
	case *ast.Ident:
		v, ok := w.env[e.Name]
		return v, ok
	case *ast.ParenExpr:
		return w.eval(e.X)
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			a, ok1 := w.eval(e.X)
			b, ok2 := w.eval(e.Y)
			return a + b, ok1 && ok2
		}
	case *ast.CallExpr:
		// k.String() of a loop variable that holds a kind.
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "String" && len(e.Args) == 0 {
			return w.eval(sel.X)
		}
		if id, ok := e.Fun.(*ast.Ident); ok && len(e.Args) == 1 {
			return w.call(id.Name, e.Args[0])
		}
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "graph" {
			v, ok := graphKinds[e.Sel.Name]
			return v, ok
		}
	}
	return "", false
}

// call evaluates a call of the package's function name with one argument.
func (w *routeWalker) call(name string, arg ast.Expr) (string, bool) {
	fd := w.funcs[name]
	if fd == nil || w.depth > 8 {
		return "", false
	}
	params := fd.Type.Params.List
	if len(params) != 1 || len(params[0].Names) != 1 {
		return "", false
	}
	v, ok := w.eval(arg)
	if !ok {
		return "", false
	}
	inner := &routeWalker{t: w.t, fset: w.fset, funcs: w.funcs, depth: w.depth + 1,
		env: map[string]string{params[0].Names[0].Name: v}}
	return inner.run(fd.Body.List)
}

// run interprets a function body of if, switch and return statements.
func (w *routeWalker) run(list []ast.Stmt) (string, bool) {
	for _, s := range list {
		switch s := s.(type) {
		case *ast.ReturnStmt:
			if len(s.Results) != 1 {
				return "", false
			}
			return w.eval(s.Results[0])
		case *ast.IfStmt:
			if s.Init != nil {
				return "", false
			}
			c, ok := s.Cond.(*ast.BinaryExpr)
			if !ok || (c.Op != token.EQL && c.Op != token.NEQ) {
				return "", false
			}
			a, ok1 := w.eval(c.X)
			b, ok2 := w.eval(c.Y)
			if !ok1 || !ok2 {
				return "", false
			}
			if (a == b) == (c.Op == token.EQL) {
				return w.run(s.Body.List)
			}
			if s.Else != nil {
				return w.run([]ast.Stmt{s.Else})
			}
		case *ast.BlockStmt:
			return w.run(s.List)
		case *ast.SwitchStmt:
			if s.Init != nil || s.Tag == nil {
				return "", false
			}
			tag, ok := w.eval(s.Tag)
			if !ok {
				return "", false
			}
			var dflt *ast.CaseClause
			for _, cc := range s.Body.List {
				cc := cc.(*ast.CaseClause)
				if cc.List == nil {
					dflt = cc
				}
				for _, e := range cc.List {
					if v, ok := w.eval(e); !ok {
						return "", false
					} else if v == tag {
						return w.run(cc.Body)
					}
				}
			}
			if dflt != nil {
				return w.run(dflt.Body)
			}
		default:
			return "", false
		}
	}
	return "", false
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := documentedOperations(t, doc)

	served := map[string]bool{}
	for _, p := range servedRoutes(t) {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			if p != "/" {
				t.Errorf("route %q has no method; document it with its methods and register it with one", p)
			}
			continue // the catch-all answering NOT_FOUND
		}
		served[method+" "+path] = true
	}
	if len(served) < 20 {
		t.Fatalf("found only %d routes in the package's sources: %v", len(served), served)
	}
	for _, r := range sortedKeys(served) {
		if documented[r] == nil {
			t.Errorf("route %s is served but not in openapi.json", r)
		}
	}
	for _, r := range sortedKeys(documented) {
		if !served[r] {
			t.Errorf("openapi.json documents %s, which the server does not register", r)
		}
	}

	// The documented operations reach those patterns on a real mux (the
	// handlers are not called, so the stores may be nil), with every
	// optional part of the API on.
	s := New(Config{Gatherer: prometheus.NewRegistry(), OperatorKey: "k", Streaming: &Streaming{}})
	fill := regexp.MustCompile(`\{[^}]+\}`)
	for _, r := range sortedKeys(documented) {
		method, path, _ := strings.Cut(r, " ")
		req := httptest.NewRequest(method, fill.ReplaceAllString(path, "x0"), nil)
		if _, pattern := s.mux.Handler(req); pattern != r {
			t.Errorf("%s reaches pattern %q on the server's mux", r, pattern)
		}
	}

	// The server serves this document.
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != string(openAPI) || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Errorf("GET /openapi.json = %d %q, want 200 application/json with the embedded document", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sourceErrorCodes returns the error codes the API's sources can answer.
func sourceErrorCodes(t *testing.T) map[string]bool {
	t.Helper()
	patterns := []*regexp.Regexp{
		regexp.MustCompile(`writeError\([^,]+,[^,]+,\s*"([A-Z][A-Z0-9_]*)"`),
		regexp.MustCompile(`errorf\([^,]+,\s*"([A-Z][A-Z0-9_]*)"`),
		regexp.MustCompile(`&errBody\{[^,]+,\s*"([A-Z][A-Z0-9_]*)"`),
		regexp.MustCompile(`Code:\s*"([A-Z][A-Z0-9_]*)"`),
	}
	var files []string
	for _, glob := range []string{"*.go", filepath.Join("..", "syncjobs", "*.go")} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	codes := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range patterns {
			for _, m := range re.FindAllSubmatch(b, -1) {
				codes[string(m[1])] = true
			}
		}
	}
	if len(codes) < 20 {
		t.Fatalf("found only %d error codes in the sources: %v", len(codes), codes)
	}
	return codes
}

func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	ec := deref(t, doc, map[string]any{"$ref": "#/components/schemas/ErrorCode"})
	enum := map[string]bool{}
	list, _ := ec["enum"].([]any)
	for _, c := range list {
		enum[c.(string)] = true
	}
	src := sourceErrorCodes(t)
	var missing, extra []string
	for c := range src {
		if !enum[c] {
			missing = append(missing, c)
		}
	}
	for c := range enum {
		if !src[c] {
			extra = append(extra, c)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("error codes the API answers but ErrorCode does not list: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("ErrorCode lists codes no source answers: %v", extra)
	}

	// DestinationErrorCode (connection tests, the stream's last error) lists
	// exactly the codes of internal/s3dest.
	b, err := os.ReadFile(filepath.Join("..", "s3dest", "errors.go"))
	if err != nil {
		t.Fatal(err)
	}
	s3codes := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*Code[A-Za-z]+\s*=\s*"([A-Z][A-Z0-9_]*)"`).FindAllSubmatch(b, -1) {
		s3codes[string(m[1])] = true
	}
	if len(s3codes) < 5 {
		t.Fatalf("found only %d error codes in ../s3dest/errors.go: %v", len(s3codes), s3codes)
	}
	dest := deref(t, doc, map[string]any{"$ref": "#/components/schemas/DestinationErrorCode"})
	destEnum := map[string]bool{}
	destList, _ := dest["enum"].([]any)
	for _, c := range destList {
		destEnum[c.(string)] = true
	}
	if !maps.Equal(destEnum, s3codes) {
		t.Errorf("DestinationErrorCode lists %v; internal/s3dest has %v", sortedKeys(destEnum), sortedKeys(s3codes))
	}

	// Every code an operation names is a known one, always with one status,
	// under an error response of the Error shape.
	statusOf := map[string]string{}
	for name, op := range documentedOperations(t, doc) {
		responses, _ := op["responses"].(map[string]any)
		for status, r := range responses {
			rm := deref(t, doc, r)
			codes, ok := rm["x-error-codes"].([]any)
			if !ok {
				if status[0] == '4' || status[0] == '5' {
					t.Errorf("%s %s: an error response without x-error-codes", name, status)
				}
				continue
			}
			content, _ := rm["content"].(map[string]any)
			js, _ := content["application/json"].(map[string]any)
			if schema, _ := js["schema"].(map[string]any); schema["$ref"] != "#/components/schemas/Error" {
				t.Errorf("%s %s: error response schema is %v, want the Error component", name, status, js["schema"])
			}
			for _, c := range codes {
				code := c.(string)
				if !enum[code] {
					t.Errorf("%s %s: unknown error code %s", name, status, code)
				}
				if prev, ok := statusOf[code]; ok && prev != status {
					t.Errorf("%s: %s is documented with status %s here and %s elsewhere", name, code, status, prev)
				}
				statusOf[code] = status
			}
		}
	}
}
