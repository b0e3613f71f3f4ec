package api

import (
	"bytes"
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ingest"
)

// loadOpenAPI loads and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// documented returns the document's operations as mux patterns
// ("METHOD /path"), each with its documented statuses.
func documented(doc *openapi3.T) map[string][]int {
	ops := map[string][]int{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			var statuses []int
			for code := range op.Responses.Map() {
				n, err := strconv.Atoi(code)
				if err != nil {
					n = -1 // "default" or "4XX": never equal to a real status
				}
				statuses = append(statuses, n)
			}
			slices.Sort(statuses)
			ops[method+" "+path] = statuses
		}
	}
	return ops
}

// apiSource is api.go, parsed.
func apiSource(t *testing.T) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "api.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// routesPatterns returns the patterns Server.Routes registers, read from
// its source: the string literal of every mux.Handle or mux.HandleFunc
// call in it. A pattern that is not a literal, or the mux handed on to
// another function, fails the test, since the patterns could then not be
// read here.
func routesPatterns(t *testing.T) []string {
	t.Helper()
	var routes *ast.FuncDecl
	for _, d := range apiSource(t).Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "Routes" && fd.Recv != nil {
			routes = fd
		}
	}
	if routes == nil || len(routes.Type.Params.List) != 1 || len(routes.Type.Params.List[0].Names) != 1 {
		t.Fatal("api.go has no method Routes(mux *http.ServeMux)")
	}
	mux := routes.Type.Params.List[0].Names[0].Name
	var patterns []string
	ast.Inspect(routes.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		for _, a := range call.Args {
			if id, ok := a.(*ast.Ident); ok && id.Name == mux {
				t.Errorf("Routes hands %s to another function; register routes in Routes itself so that this test sees them", mux)
			}
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != mux || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			t.Errorf("Routes registers a pattern that is not a string literal; this test cannot check it against openapi.json")
			return true
		}
		p, err := strconv.Unquote(lit.Value)
		if err != nil {
			t.Fatal(err)
		}
		patterns = append(patterns, p)
		return true
	})
	slices.Sort(patterns)
	return patterns
}

// errorCodes returns the values of api.go's Code* constants.
func errorCodes(t *testing.T) []string {
	t.Helper()
	var codes []string
	for _, d := range apiSource(t).Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					codes = append(codes, v)
				}
			}
		}
	}
	slices.Sort(codes)
	return codes
}

// wildcard is a {name} of a pattern or path template.
var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// probe returns a request that the pattern matches, its wildcards filled.
func probe(t *testing.T, pattern string) *http.Request {
	t.Helper()
	method, path, _ := strings.Cut(pattern, " ")
	req, err := http.NewRequest(method, "http://api.test"+wildcard.ReplaceAllString(path, "x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// allRoutes is a mux with every route Routes can register (the JWKS route
// only with a JWKS configured).
func allRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	New(nil, tokens{}, Config{JWKS: []byte(`{"keys":[]}`)}, slog.New(slog.DiscardHandler)).Routes(mux)
	return mux
}

// TestOpenAPIDocument: the document loads and is valid OpenAPI 3; its
// change object names every column of a change file, with aliases the
// file's header takes; its error codes are the API's.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	change := doc.Components.Schemas["ChangeRequest"].Value
	for c := range lessee.NumColumns {
		if change.Properties[c.String()] == nil {
			t.Errorf("ChangeRequest has no property %s", c)
		}
	}
	for name, prop := range change.Properties {
		if name == "leasingtakerId" {
			if col, ok := ingest.ColumnNamed(name); !ok || col != lessee.ColLesseeID {
				t.Errorf("leasingtakerId is documented as lessee_id, but the decoder takes it for %v", col)
			}
			continue
		}
		aliases, _ := prop.Value.Extensions["x-aliases"].([]any)
		for _, a := range append([]any{name}, aliases...) {
			s, _ := a.(string)
			if col, ok := ingest.ColumnNamed(s); !ok || col.String() != name {
				t.Errorf("ChangeRequest: %q is documented for %s, but the decoder takes it for %v (known %v)", s, name, col, ok)
			}
		}
	}
	var enum []string
	for _, v := range doc.Components.Schemas["Error"].Value.Properties["code"].Value.Enum {
		enum = append(enum, v.(string))
	}
	slices.Sort(enum)
	if want := errorCodes(t); !slices.Equal(enum, want) {
		t.Errorf("Error.code enum %v; api.go's Code constants %v", enum, want)
	}
}

// TestOpenAPIRoutes: every operation of the document is a route of
// Routes, and every route Routes registers (as its source says, checked
// against the mux) is in the document.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	mux := allRoutes()
	ops := documented(doc)
	for pattern := range ops {
		if _, got := mux.Handler(probe(t, pattern)); got != pattern {
			t.Errorf("openapi.json documents %s, but the mux routes it to %q", pattern, got)
		}
	}
	source := routesPatterns(t)
	if len(source) == 0 {
		t.Fatal("found no route in Routes")
	}
	for _, pattern := range source {
		if _, got := mux.Handler(probe(t, pattern)); got != pattern {
			t.Errorf("Routes' source registers %s, but the mux routes it to %q", pattern, got)
		}
		if _, ok := ops[pattern]; !ok {
			t.Errorf("Routes registers %s; openapi.json does not document it", pattern)
		}
	}
	if doc := slices.Sorted(maps.Keys(ops)); !slices.Equal(doc, source) {
		t.Errorf("openapi.json documents %v; Routes registers %v", doc, source)
	}
}

// unavailable is tokens, but "Bearer unavailable" finds the issuer's keys
// out of reach.
type unavailable struct{ tokens }

func (u unavailable) Authenticate(ctx context.Context, h string) (string, error) {
	if h == "Bearer unavailable" {
		return "", ErrUnavailable
	}
	return u.tokens.Authenticate(ctx, h)
}

// brokenStore fails where the handlers first reach SQL.
type brokenStore struct{ Store }

var errBroken = errors.New("the database is gone")

func (brokenStore) ApplyBatch(context.Context, []lessee.APIChange) ([]lessee.APIResult, error) {
	return nil, errBroken
}
func (brokenStore) Vehicle(context.Context, string) (lessee.Vehicle, error) {
	return lessee.Vehicle{}, errBroken
}
func (brokenStore) VehicleByRegistrationNumber(context.Context, string) (lessee.Vehicle, error) {
	return lessee.Vehicle{}, errBroken
}

// TestOpenAPIStatuses drives the handlers to every status the document
// gives each route, and validates every answer against the document
// (status documented, headers, content type, body schema). The statuses
// seen for a route must be exactly those documented for it.
func TestOpenAPIStatuses(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	_, store := setup(t, Config{})
	serve := func(st Store, cfg Config) (*httptest.Server, *http.ServeMux) {
		mux := http.NewServeMux()
		New(st, unavailable{}, cfg, slog.New(slog.DiscardHandler)).Routes(mux)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv, mux
	}
	type server struct {
		srv *httptest.Server
		mux *http.ServeMux
	}
	var ok, limited, broken server
	ok.srv, ok.mux = serve(store, Config{JWKS: []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"dev"}]}`)})
	limited.srv, limited.mux = serve(store, Config{Rate: 0.001})
	broken.srv, broken.mux = serve(brokenStore{store}, Config{})

	const (
		changes = "/api/v1/changes"
		add     = `{"operation":"add","registration_number":"EL10001","lessee_id":"12128822249","start_date":"2026-01-01","reference":"api-1"}`
		remove  = `{"operation":"remove","registration_number":"EL10005"}`
	)
	asJSON := []string{"Content-Type", "application/json"}
	withKey := func(k string) []string { return append(slices.Clone(asJSON), "Idempotency-Key", k) }
	seen := map[string][]int{} // pattern: statuses answered
	for _, tc := range []struct {
		name           string
		at             server
		method, path   string
		token, body    string
		header         []string
		status         int
		wantHeader     string // a header the answer must have
		validRequest   bool   // its parameters and body conform to the document (tokens are not checked there)
		wantAnswerCode string // the body's code
	}{
		{"ChangeApplied", ok, "POST", changes, owner, add, withKey("oa-1"), 200, "X-Request-Id", true, ""},
		{"ChangeReplayed", ok, "POST", changes, owner, add, withKey("oa-1"), 200, "Idempotent-Replayed", true, ""},
		{"ChangeUnchanged", ok, "POST", changes, owner, add, asJSON, 200, "X-Request-Id", true, ""},
		{"ChangeAuthorityShape", ok, "POST", changes, owner, `{"handling":"OPPRETTE","kjennemerke":"EL10005","leasingtakerId":{"fodselsnummer":"02079123660"},"etternavn":"Hansen","fra_dato":"01.02.2026"}`, asJSON, 200, "", true, ""},
		{"ChangeNorwegianKeys", ok, "POST", changes, partner, `{"operasjon":"legg_til","regnr":"EL 10007","leietaker":"17051743229","fra_dato":"2026-01-01","paa_vegne_av":"912345602"}`, asJSON, 200, "", true, ""},
		{"ChangeRejected", ok, "POST", changes, owner, `{"operation":"add","registration_number":"EL10002","lessee_id":"03030353373","start_date":"2026-01-15"}`, asJSON, 422, "X-Request-Id", true, "LESSEE_CONFLICT"},
		{"ChangeKeyReused", ok, "POST", changes, owner, remove, withKey("oa-1"), 422, "", true, CodeIdempotencyKeyReused},
		{"ChangeNotJSON", ok, "POST", changes, owner, `{"operation":`, asJSON, 400, "", false, CodeBadRequest},
		{"ChangeKeyTooLong", ok, "POST", changes, owner, remove, withKey(strings.Repeat("k", maxIdempotencyKey+1)), 400, "", false, CodeBadRequest},
		{"ChangeNoToken", ok, "POST", changes, "", add, asJSON, 401, "WWW-Authenticate", true, CodeUnauthenticated},
		{"ChangeNoScope", ok, "POST", changes, "noscope", add, asJSON, 403, "", true, CodeForbidden},
		{"ChangeFirstOfRate", limited, "POST", changes, competitor, `{}`, asJSON, 400, "", false, CodeBadRequest},
		{"ChangeOverRate", limited, "POST", changes, competitor, `{"operation":"remove","registration_number":"FJ20001"}`, asJSON, 429, "Retry-After", true, CodeRateLimited},
		{"ChangeStoreFails", broken, "POST", changes, owner, remove, asJSON, 500, "", true, CodeInternal},
		{"ChangeKeysUnavailable", ok, "POST", changes, "unavailable", add, asJSON, 503, "Retry-After", true, CodeUnavailable},

		{"VehicleOwner", ok, "GET", "/api/v1/vehicles/EL10002", owner, "", nil, 200, "", true, ""},
		{"VehicleNoLessee", ok, "GET", "/api/v1/vehicles/EL10008", owner, "", nil, 200, "", true, ""},
		{"VehicleEndingLease", ok, "GET", "/api/v1/vehicles/WVWZZZ1KZAW000010", owner, "", nil, 200, "", true, ""},
		{"VehicleDelegate", ok, "GET", "/api/v1/vehicles/el-10002", partner, "", nil, 200, "", true, ""},
		{"VehicleCompetitor", ok, "GET", "/api/v1/vehicles/EL10002", competitor, "", nil, 404, "", true, CodeNotFound},
		{"VehicleGarbage", ok, "GET", "/api/v1/vehicles/%21", owner, "", nil, 404, "", true, CodeNotFound},
		{"VehicleNoToken", ok, "GET", "/api/v1/vehicles/EL10002", "", "", nil, 401, "WWW-Authenticate", true, CodeUnauthenticated},
		{"VehicleNoScope", ok, "GET", "/api/v1/vehicles/EL10002", "noscope", "", nil, 403, "", true, CodeForbidden},
		{"VehicleFirstOfRate", limited, "GET", "/api/v1/vehicles/EL10002", owner, "", nil, 200, "", true, ""},
		{"VehicleOverRate", limited, "GET", "/api/v1/vehicles/EL10002", owner, "", nil, 429, "Retry-After", true, CodeRateLimited},
		{"VehicleStoreFails", broken, "GET", "/api/v1/vehicles/EL10002", owner, "", nil, 500, "", true, CodeInternal},
		{"VehicleKeysUnavailable", ok, "GET", "/api/v1/vehicles/EL10002", "unavailable", "", nil, 503, "Retry-After", true, CodeUnavailable},

		{"OpenAPI", ok, "GET", "/api/v1/openapi.json", "", "", nil, 200, "", true, ""},
		{"JWKS", ok, "GET", "/.well-known/jwks.json", "", "", nil, 200, "Cache-Control", true, ""},
	} {
		newReq := func() *http.Request {
			req, err := http.NewRequest(tc.method, tc.at.srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			return req
		}
		req := newReq()
		_, pattern := tc.at.mux.Handler(req)
		method, path, _ := strings.Cut(pattern, " ")
		item := doc.Paths.Find(path)
		op := item.GetOperation(method)
		if op == nil {
			t.Fatalf("%s: %s %s is routed to %q, which openapi.json does not document", tc.name, tc.method, tc.path, pattern)
		}
		route := &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
		params := pathParams(t, path, req.URL.Path)
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if err := openapi3filter.ValidateRequest(context.Background(), in); (err == nil) != tc.validRequest {
			t.Errorf("%s: request validation: %v; want valid %v", tc.name, err, tc.validRequest)
		}

		r := do(t, tc.at.srv, tc.method, tc.path, tc.token, tc.body, tc.header...)
		if r.status != tc.status {
			t.Errorf("%s: %d %s; want %d", tc.name, r.status, r.body, tc.status)
			continue
		}
		if tc.wantHeader != "" && r.header.Get(tc.wantHeader) == "" {
			t.Errorf("%s: no %s header", tc.name, tc.wantHeader)
		}
		if tc.wantAnswerCode != "" && answerField(t, r.body, "code") != tc.wantAnswerCode {
			t.Errorf("%s: code %q; want %q", tc.name, answerField(t, r.body, "code"), tc.wantAnswerCode)
		}
		in.Request = newReq()
		in.Options = nil
		err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in,
			Status:                 r.status,
			Header:                 r.header,
			Body:                   io.NopCloser(bytes.NewReader(r.body)),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		})
		if err != nil {
			t.Errorf("%s: the answer %d %s does not conform to openapi.json: %v", tc.name, r.status, r.body, err)
		}
		seen[pattern] = append(seen[pattern], r.status)
	}
	for pattern, want := range documented(doc) {
		got := slices.Compact(slices.Sorted(slices.Values(seen[pattern])))
		if !slices.Equal(got, want) {
			t.Errorf("%s answered %v; openapi.json documents %v", pattern, got, want)
		}
	}
	for pattern := range seen {
		if _, ok := documented(doc)[pattern]; !ok {
			t.Errorf("%s answered, but openapi.json does not document it", pattern)
		}
	}
}

// pathParams reads the values of a path template's {wildcards} from path.
func pathParams(t *testing.T, template, path string) map[string]string {
	t.Helper()
	params := map[string]string{}
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		t.Fatalf("%s does not match %s", path, template)
	}
	for i, seg := range ts {
		if wildcard.MatchString(seg) {
			params[strings.Trim(seg, "{}")] = ps[i]
		}
	}
	return params
}

// TestOpenAPIServed: GET /api/v1/openapi.json answers the document byte
// for byte, as JSON, without a token.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, Config{})
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, srv, http.MethodGet, "/api/v1/openapi.json", "", "")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("%d, Content-Type %q; want 200 application/json", r.status, r.header.Get("Content-Type"))
	}
	if !bytes.Equal(r.body, file) {
		t.Errorf("the answer (%d bytes) is not openapi.json (%d bytes)", len(r.body), len(file))
	}
}
