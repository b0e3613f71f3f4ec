package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/api"
	"github.com/fleetreg/lessee/apiauth"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// TestTokenAuthReasonInLanguage: the validator's reason reaches the API
// through tokenAuth as a message of the catalogue, so a token refused
// before any organisation is known is answered in --default-language,
// reason and all.
func TestTokenAuthReasonInLanguage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dev, err := apiauth.LoadOrCreateDevIssuer(t.TempDir(), apiauth.DefaultDevIssuer, apiauth.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	v, err := apiauth.NewValidator(ctx, apiauth.Config{Issuer: apiauth.DefaultDevIssuer, Audience: apiauth.DefaultAudience,
		Scope: apiauth.DefaultScope}, dev.PublicKeys())
	if err != nil {
		t.Fatal(err)
	}
	readOnly, err := dev.Token("912345602", "lessee:read", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(sqlstoretest.SQLite(t), tokenAuth{v}, api.Config{DefaultLanguage: lessee.Norwegian}, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		name, auth string
		status     int
		want       string
	}{
		{"Forbidden", "Bearer " + readOnly, 403, "ingen tilgang (tokenet mangler scopet " + apiauth.DefaultScope + ")"},
		{"Malformed", "Bearer x.y.z", 401, "ikke autentisert (tokenet ble avvist: tokenet har feil format)"},
		{"NotBearer", "Basic abc", 401, "ikke autentisert (tokenet ble avvist: Authorization må bruke ordningen Bearer)"},
	} {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/changes", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", tc.auth)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Message string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || body.Message != tc.want {
			t.Errorf("%s: %d %q (%v), want %d %q", tc.name, resp.StatusCode, body.Message, err, tc.status, tc.want)
		}
	}
}
