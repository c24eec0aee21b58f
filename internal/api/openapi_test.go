package api

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// httpMethods are the keys of an OpenAPI path item that are operations.
var httpMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true,
	"options": true, "head": true, "patch": true, "trace": true,
}

type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

type openAPIOperation struct {
	Security   *[]map[string][]string `json:"security"`
	Parameters []json.RawMessage      `json:"parameters"`
	Responses  map[string]any         `json:"responses"`
}

func loadOpenAPI(t *testing.T) (openAPIDoc, any) {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	var raw any
	if err := json.Unmarshal(openapiDoc, &raw); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	return doc, raw
}

// operations lists the document's operations as "METHOD /path".
func (d openAPIDoc) operations(t *testing.T) map[string]openAPIOperation {
	t.Helper()
	out := map[string]openAPIOperation{}
	for path, item := range d.Paths {
		for key, raw := range item {
			if !httpMethods[key] {
				// test/e2e/isolation_test.go treats every key of a path item
				// as a method; keep parameters on the operations.
				t.Errorf("openapi.json: path %s has non-operation key %q; declare it on each operation instead", path, key)
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Errorf("openapi.json: %s %s: %v", key, path, err)
				continue
			}
			out[strings.ToUpper(key)+" "+path] = op
		}
	}
	return out
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, raw := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json declares openapi %q, want 3.x", doc.OpenAPI)
	}

	a := New(Config{})
	routes := map[string]bool{}
	for _, r := range a.Routes() {
		routes[r] = true
	}
	ops := doc.operations(t)
	var missing, extra []string
	for r := range routes {
		if _, ok := ops[r]; !ok {
			missing = append(missing, r)
		}
	}
	for op := range ops {
		if !routes[op] {
			extra = append(extra, op)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes registered in routes.go but not documented in openapi.json (%d):\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("operations in openapi.json that routes.go does not register (%d):\n  %s", len(extra), strings.Join(extra, "\n  "))
	}

	// Every $ref points inside the document.
	var bad []string
	walkRefs(raw, "#", func(at, ref string) {
		if _, ok := resolvePointer(raw, ref); !ok {
			bad = append(bad, at+" -> "+ref)
		}
	})
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("unresolved $ref in openapi.json (%d):\n  %s", len(bad), strings.Join(bad, "\n  "))
	}

	// Every {param} of a path is declared as a path parameter of each of its
	// operations, and every operation has responses.
	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	for name, op := range ops {
		path := name[strings.Index(name, " ")+1:]
		declared := map[string]bool{}
		for _, p := range op.Parameters {
			var v any
			_ = json.Unmarshal(p, &v)
			if m, ok := v.(map[string]any); ok {
				if ref, ok := m["$ref"].(string); ok {
					v, _ = resolvePointer(raw, ref)
				}
			}
			if m, ok := v.(map[string]any); ok && m["in"] == "path" {
				declared[m["name"].(string)] = true
			}
		}
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			if !declared[m[1]] {
				t.Errorf("openapi.json: %s does not declare path parameter %q", name, m[1])
			}
		}
		if len(op.Responses) == 0 {
			t.Errorf("openapi.json: %s has no responses", name)
		}
	}
}

// TestOpenAPISecurity checks that exactly the operations marked
// "security: []" are served without a token.
func TestOpenAPISecurity(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	a := New(Config{})
	fill := strings.NewReplacer("{port}", "80", "{number}", "1")
	anyParam := regexp.MustCompile(`\{[^}]+\}`)
	for name, op := range doc.operations(t) {
		method, path, _ := strings.Cut(name, " ")
		path = anyParam.ReplaceAllString(fill.Replace(path), "x")
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		public := op.Security != nil && len(*op.Security) == 0
		switch {
		case public && rec.Code == http.StatusUnauthorized:
			t.Errorf("%s is documented as public (security: []) but answers 401 without a token", name)
		case !public && rec.Code != http.StatusUnauthorized:
			t.Errorf("%s is documented as needing a token but answers %d without one; add \"security\": [] if it is public", name, rec.Code)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	want, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	a := New(Config{})
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: status %d, want 200; body %s", rec.Code, rec.Body)
	}
	if mt, _, err := mime.ParseMediaType(rec.Header().Get("Content-Type")); err != nil || mt != "application/json" {
		t.Errorf("GET /api/v1/openapi.json: Content-Type %q, want application/json", rec.Header().Get("Content-Type"))
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Errorf("GET /api/v1/openapi.json answered %d bytes that differ from openapi.json (%d bytes)", rec.Body.Len(), len(want))
	}
}

// walkRefs calls fn for every "$ref" string in v, with the JSON pointer of
// the object holding it.
func walkRefs(v any, at string, fn func(at, ref string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				fn(at, s)
				continue
			}
			walkRefs(e, at+"/"+escapePointer(k), fn)
		}
	case []any:
		for i, e := range x {
			walkRefs(e, at+"/"+strconv.Itoa(i), fn)
		}
	}
}

func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// resolvePointer resolves a local reference ("#/components/schemas/X").
func resolvePointer(doc any, ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, false
	}
	if rest == "" {
		return doc, true
	}
	if !strings.HasPrefix(rest, "/") {
		return nil, false
	}
	cur := doc
	for _, tok := range strings.Split(rest[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch x := cur.(type) {
		case map[string]any:
			next, ok := x[tok]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}
