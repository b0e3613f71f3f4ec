package apiauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// TestDevIssuerPersists: the key is created once, 0600, and reused, so a
// token issued before a restart validates after it.
func TestDevIssuerPersists(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data") // created on first use
	d1, err := LoadOrCreateDevIssuer(dir, DefaultDevIssuer, DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %s, want 0600", fi.Mode().Perm())
	}
	tok, err := d1.Token(testOrgNr, DefaultScope, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}

	d2, err := LoadOrCreateDevIssuer(dir, DefaultDevIssuer, DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	if d1.KeyID() == "" || d2.KeyID() != d1.KeyID() {
		t.Errorf("kid %q after reload, want %q", d2.KeyID(), d1.KeyID())
	}
	if p, err := devValidator(t, d2, newClock()).Validate(context.Background(), "Bearer "+tok); err != nil || p.OrgNr != testOrgNr {
		t.Errorf("token of the first load with the second's keys: %+v, %v", p, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only the key file", len(entries))
	}

	other := devIssuer(t)
	if other.KeyID() == d1.KeyID() {
		t.Error("two directories, one key id")
	}
	if _, err := devValidator(t, other, newClock()).Validate(context.Background(), "Bearer "+tok); err == nil {
		t.Error("token accepted with another directory's keys")
	}
}

// TestDevIssuerConcurrentCreate: processes starting together agree on one
// key.
func TestDevIssuerConcurrentCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range kids {
		wg.Go(func() {
			d, err := LoadOrCreateDevIssuer(dir, DefaultDevIssuer, DefaultAudience)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = d.KeyID()
		})
	}
	wg.Wait()
	for _, k := range kids {
		if k != kids[0] {
			t.Fatalf("kids differ: %q", kids)
		}
	}
}

func TestDevIssuerRefusesKeyFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		prep func(t *testing.T, file string)
		want string
	}{
		{"ErrReadableByOthers", func(t *testing.T, file string) {
			if err := os.Chmod(file, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "chmod 600"},
		{"ErrNotPEM", func(t *testing.T, file string) {
			if err := os.WriteFile(file, []byte("not a key"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a PEM private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreateDevIssuer(dir, DefaultDevIssuer, DefaultAudience); err != nil {
				t.Fatal(err)
			}
			tc.prep(t, filepath.Join(dir, DevKeyFile))
			_, err := LoadOrCreateDevIssuer(dir, DefaultDevIssuer, DefaultAudience)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestDevIssuerTokenShape checks the token's header and claims against
// Maskinporten's shape.
func TestDevIssuerTokenShape(t *testing.T) {
	t.Parallel()
	d := devIssuer(t)
	tok, err := d.Token(testOrgNr, DefaultScope, 10*time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	decode := func(s string) map[string]any {
		t.Helper()
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	h, c := decode(parts[0]), decode(parts[1])
	if h["alg"] != "ES256" || h["kid"] != d.KeyID() {
		t.Errorf("header %v", h)
	}
	want := map[string]any{
		"iss": DefaultDevIssuer, "aud": DefaultAudience, "scope": DefaultScope, "client_id": DevClientID,
		"iat": float64(t0.Unix()), "nbf": float64(t0.Unix()), "exp": float64(t0.Add(10 * time.Minute).Unix()),
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if cons, _ := c["consumer"].(map[string]any); cons["authority"] != "iso6523-actorid-upis" || cons["ID"] != "0192:"+testOrgNr {
		t.Errorf("consumer %v", c["consumer"])
	}
	if jti, _ := c["jti"].(string); len(jti) != 32 {
		t.Errorf("jti %q", c["jti"])
	}

	noScope, err := d.Token(testOrgNr, "", time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decode(strings.Split(noScope, ".")[1])["scope"]; ok {
		t.Error("empty scope: token has a scope claim")
	}
}

// TestDevIssuerJWKS: the published set is the public key only.
func TestDevIssuerJWKS(t *testing.T) {
	t.Parallel()
	d := devIssuer(t)
	b, err := d.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 1 {
		t.Fatalf("JWKS %s", b)
	}
	k := doc.Keys[0]
	if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || k["kid"] != d.KeyID() {
		t.Errorf("key %v", k)
	}
	if _, ok := k["d"]; ok {
		t.Fatal("JWKS publishes the private key")
	}
	set, err := jwk.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	// PublicKeys hands out a copy: changing it changes nothing.
	pk := d.PublicKeys()
	_ = pk.Set("x", "y")
	k0, _ := pk.Key(0)
	_ = k0.Set(jwk.KeyIDKey, "changed")
	if d.KeyID() == "changed" || set.Len() != 1 {
		t.Error("PublicKeys shares the issuer's key")
	}
}

func TestDevIssuerToken(t *testing.T) {
	t.Parallel()
	d := devIssuer(t)
	for _, tc := range []struct {
		name  string
		orgnr string
		ttl   time.Duration
	}{
		{"ErrCheckDigit", "912345603", time.Hour},
		{"ErrShort", "91234560", time.Hour},
		{"ErrSpace", " 912345602", time.Hour},
		{"ErrEmpty", "", time.Hour},
		{"ErrZeroTTL", testOrgNr, 0},
		{"ErrNegativeTTL", testOrgNr, -time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tok, err := d.Token(tc.orgnr, DefaultScope, tc.ttl, t0); err == nil {
				t.Errorf("token %q, want an error", tok)
			}
		})
	}
	if _, err := LoadOrCreateDevIssuer(t.TempDir(), "", DefaultAudience); err == nil {
		t.Error("no issuer: no error")
	}
}
