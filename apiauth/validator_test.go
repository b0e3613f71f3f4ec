package apiauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// devPriv is the DevIssuer's private key, to sign crafted tokens with.
func devPriv(t testing.TB, d *DevIssuer) *ecdsa.PrivateKey {
	t.Helper()
	var priv ecdsa.PrivateKey
	if err := d.key.Raw(&priv); err != nil {
		t.Fatal(err)
	}
	return &priv
}

// checkErr checks that err is of kind want (nil: no error) with a reason
// containing reason, and that it does not repeat any part of header.
func checkErr(t *testing.T, err, want error, reason, header string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Validate: %v, want accepted", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("Validate: %v, want %v", err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Validate: %T is not an *Error", err)
	}
	if !strings.Contains(e.Reason, reason) {
		t.Errorf("reason %q, want it to contain %q", e.Reason, reason)
	}
	// The reason is a message of the catalogue, so the API can write it
	// in the caller's language; Norwegian is not the English reason.
	if want != ErrUnavailable {
		text, ok := message.TextOf(err)
		if !ok {
			t.Fatalf("reason %q is no message of the catalogue", e.Reason)
		}
		if en, nb := message.Render(lessee.English, text), message.Render(lessee.Norwegian, text); en != e.Reason || nb == en {
			t.Errorf("reason %q: English %q, Norwegian %q", e.Reason, en, nb)
		}
	}
	for _, part := range strings.FieldsFunc(header, func(r rune) bool { return r == ' ' || r == '.' }) {
		if len(part) > 12 && strings.Contains(err.Error(), part) {
			t.Errorf("error %q repeats the token", err)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	d := devIssuer(t)
	priv := devPriv(t, d)
	kid := d.KeyID()
	c := newClock()
	v := devValidator(t, d, c)

	devToken, err := d.Token(testOrgNr, DefaultScope, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	es := func(cl map[string]any) string {
		return "Bearer " + craft(t, map[string]any{"alg": "ES256", "kid": kid, "typ": "JWT"}, cl, esSigner(t, priv))
	}
	other := newECKey(t)
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	jwks, err := d.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	ecdhPub, err := priv.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	rawPoint := ecdhPub.Bytes() // the uncompressed point

	for _, tc := range []struct {
		name   string
		header string
		want   error
		reason string
	}{
		{"OK", "Bearer " + devToken, nil, ""},
		{"OKLowerCaseScheme", "bearer " + devToken, nil, ""},
		{"OKCrafted", es(claims()), nil, ""},
		{"ErrMissing", "", ErrUnauthenticated, "missing"},
		{"ErrOnlyScheme", "Bearer", ErrUnauthenticated, "missing"},
		{"ErrBasic", "Basic dXNlcjpwYXNzd29yZA==", ErrUnauthenticated, "scheme"},
		{"ErrNoScheme", devToken, ErrUnauthenticated, "scheme"},
		{"ErrGarbage", "Bearer not-a-token", ErrUnauthenticated, "malformed"},
		{"ErrDots", "Bearer ...", ErrUnauthenticated, "malformed"},
		{"ErrTwoParts", "Bearer " + devToken[:strings.LastIndex(devToken, ".")], ErrUnauthenticated, "malformed"},
		{"ErrFourParts", "Bearer " + devToken + ".e30", ErrUnauthenticated, "malformed"},
		{"ErrPadded", "Bearer " + devToken + "=", ErrUnauthenticated, "malformed"},
		{"ErrJSONSerialization", `Bearer {"payload":"e30","signatures":[]}`, ErrUnauthenticated, "malformed"},
		{"ErrTooLong", "Bearer " + strings.Repeat("a", 9000) + ".e30.e30", ErrUnauthenticated, "too long"},
		{"ErrNotJSON", "Bearer " + b64([]byte("nope")) + ".e30.e30", ErrUnauthenticated, "malformed"},
		{"ErrClaimsNotJSON", "Bearer " + func() string {
			h := b64([]byte(`{"alg":"ES256","kid":"`+kid+`"}`)) + "." + b64([]byte("nope"))
			return h + "." + b64(esSigner(t, priv)([]byte(h)))
		}(), ErrUnauthenticated, "malformed"},
		{"ErrBadSignature", "Bearer " + devToken[:len(devToken)-4] + "AAAA", ErrUnauthenticated, "signature"},

		{"ErrAlgNoneNoSignature", "Bearer " + craft(t, map[string]any{"alg": "none", "kid": kid}, claims(), func([]byte) []byte { return nil }), ErrUnauthenticated, "malformed"},
		{"ErrAlgNone", "Bearer " + craft(t, map[string]any{"alg": "none", "kid": kid}, claims(), func([]byte) []byte { return []byte("x") }), ErrUnauthenticated, "algorithm not allowed"},
		{"ErrAlgNoneCase", "Bearer " + craft(t, map[string]any{"alg": "None", "kid": kid}, claims(), func([]byte) []byte { return []byte("x") }), ErrUnauthenticated, "algorithm not allowed"},
		{"ErrHMACConfusionPEM", "Bearer " + craft(t, map[string]any{"alg": "HS256", "kid": kid}, claims(), hsSigner(pubPEM)), ErrUnauthenticated, "algorithm not allowed"},
		{"ErrHMACConfusionDER", "Bearer " + craft(t, map[string]any{"alg": "HS256", "kid": kid}, claims(), hsSigner(pubDER)), ErrUnauthenticated, "algorithm not allowed"},
		{"ErrHMACConfusionJWKS", "Bearer " + craft(t, map[string]any{"alg": "HS256", "kid": kid}, claims(), hsSigner(jwks)), ErrUnauthenticated, "algorithm not allowed"},
		{"ErrHMACConfusionPoint", "Bearer " + craft(t, map[string]any{"alg": "HS256", "kid": kid}, claims(), hsSigner(rawPoint)), ErrUnauthenticated, "algorithm not allowed"},
		{"ErrHS256NoKid", "Bearer " + craft(t, map[string]any{"alg": "HS256"}, claims(), hsSigner(pubPEM)), ErrUnauthenticated, "algorithm not allowed"},
		{"ErrAlgMismatch", "Bearer " + craft(t, map[string]any{"alg": "ES384", "kid": kid}, claims(), esSigner(t, priv)), ErrUnauthenticated, "does not match"},
		{"ErrUnknownKeySameKid", "Bearer " + craft(t, map[string]any{"alg": "ES256", "kid": kid}, claims(), esSigner(t, other)), ErrUnauthenticated, "signature"},
		{"ErrKidNotInSet", "Bearer " + craft(t, map[string]any{"alg": "ES256", "kid": "other"}, claims(), esSigner(t, other)), ErrUnauthenticated, "unknown signing key"},
		{"ErrNoKid", "Bearer " + craft(t, map[string]any{"alg": "ES256"}, claims(), esSigner(t, priv)), ErrUnauthenticated, "no key id"},
		{"ErrJKUIgnored", "Bearer " + craft(t, map[string]any{"alg": "ES256", "kid": "other", "jku": "http://127.0.0.1:1/jwks"}, claims(), esSigner(t, other)), ErrUnauthenticated, "unknown signing key"},

		{"ErrExpired", es(with("exp", t0.Add(-31*time.Second).Unix())), ErrUnauthenticated, "expired"},
		{"OKExpiredWithinLeeway", es(with("exp", t0.Add(-29*time.Second).Unix())), nil, ""},
		{"ErrExpZero", es(with("exp", 0)), ErrUnauthenticated, "expired"},
		{"ErrExpNegative", es(with("exp", -1)), ErrUnauthenticated, ""},
		{"ErrNoExp", es(with("exp", nil)), ErrUnauthenticated, "no expiry"},
		{"ErrExpString", es(with("exp", "tomorrow")), ErrUnauthenticated, "malformed"},
		{"ErrNbfFuture", es(with("nbf", t0.Add(31*time.Second).Unix())), ErrUnauthenticated, "not yet valid"},
		{"OKNbfWithinLeeway", es(with("nbf", t0.Add(29*time.Second).Unix())), nil, ""},
		{"ErrIatFuture", es(with("iat", t0.Add(time.Minute).Unix())), ErrUnauthenticated, "issued in the future"},
		{"OKNoNbfNoIat", es(with("nbf", nil, "iat", nil)), nil, ""},

		{"ErrWrongIssuer", es(with("iss", "https://maskinporten.no/")), ErrUnauthenticated, "issuer"},
		{"ErrNoIssuer", es(with("iss", nil)), ErrUnauthenticated, "issuer"},
		{"ErrWrongAudience", es(with("aud", "other-api")), ErrUnauthenticated, "audience"},
		{"ErrNoAudience", es(with("aud", nil)), ErrUnauthenticated, "audience"},
		{"OKAudienceArray", es(with("aud", []string{"other-api", DefaultAudience})), nil, ""},
		{"ErrAudienceArrayWithout", es(with("aud", []string{"other-api", "lessee-api2"})), ErrUnauthenticated, "audience"},

		{"ForbiddenNoScope", es(with("scope", nil)), ErrForbidden, "scope"},
		{"ForbiddenOtherScope", es(with("scope", "lessee:read")), ErrForbidden, "scope"},
		{"ForbiddenScopePrefix", es(with("scope", "lessee:writer")), ErrForbidden, "scope"},
		{"ForbiddenScopeArray", es(with("scope", []string{DefaultScope})), ErrForbidden, "scope"},
		{"OKScopeAmongOthers", es(with("scope", "openid lessee:write other:x")), nil, ""},

		{"ErrNoConsumer", es(with("consumer", nil)), ErrUnauthenticated, "no consumer"},
		{"ErrConsumerBadCheckDigit", es(with("consumer", map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192:912345603"})), ErrUnauthenticated, "consumer"},
		{"ErrConsumerEightDigits", es(with("consumer", map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192:91234560"})), ErrUnauthenticated, "consumer"},
		{"ErrConsumerSpace", es(with("consumer", map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192: 912345602"})), ErrUnauthenticated, "consumer"},
		{"ErrConsumerWrongPrefix", es(with("consumer", map[string]any{"authority": "iso6523-actorid-upis", "ID": "0088:912345602"})), ErrUnauthenticated, "consumer"},
		{"ErrConsumerNoPrefix", es(with("consumer", map[string]any{"authority": "iso6523-actorid-upis", "ID": "912345602"})), ErrUnauthenticated, "consumer"},
		{"ErrConsumerWrongAuthority", es(with("consumer", map[string]any{"authority": "other", "ID": "0192:912345602"})), ErrUnauthenticated, "consumer"},
		{"ErrConsumerString", es(with("consumer", "0192:912345602")), ErrUnauthenticated, "consumer"},
		{"ErrBadConsumerBeforeScope", es(with("scope", nil, "consumer", map[string]any{"ID": "0192:1"})), ErrUnauthenticated, "consumer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Validate(context.Background(), tc.header)
			checkErr(t, err, tc.want, tc.reason, tc.header)
			if tc.want == nil && p.OrgNr != testOrgNr {
				t.Errorf("principal %+v, want orgnr %s", p, testOrgNr)
			}
		})
	}
}

// TestValidatePrincipal checks what a dev token's principal carries.
func TestValidatePrincipal(t *testing.T) {
	t.Parallel()
	d := devIssuer(t)
	v := devValidator(t, d, newClock())
	tok, err := d.Token("912345610", "openid "+DefaultScope, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Validate(context.Background(), "Bearer "+tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.OrgNr != "912345610" || !slices.Equal(p.Scopes, []string{"openid", DefaultScope}) ||
		len(p.TokenID) != 32 || p.ClientID != DevClientID {
		t.Errorf("principal %+v", p)
	}
	tok2, _ := d.Token("912345610", DefaultScope, time.Hour, t0)
	p2, err := v.Validate(context.Background(), "Bearer "+tok2)
	if err != nil || p2.TokenID == p.TokenID {
		t.Errorf("second token: %+v, %v; want a new jti", p2, err)
	}
}

// TestValidateExpiry follows one dev token through its lifetime.
func TestValidateExpiry(t *testing.T) {
	t.Parallel()
	d := devIssuer(t)
	c := newClock()
	v := devValidator(t, d, c)
	tok, err := d.Token(testOrgNr, DefaultScope, time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		advance time.Duration
		want    error
	}{{0, nil}, {89 * time.Second, nil}, {time.Second, ErrUnauthenticated}} {
		c.Advance(step.advance)
		_, err := v.Validate(context.Background(), "Bearer "+tok)
		if !errors.Is(err, step.want) && !(err == nil && step.want == nil) {
			t.Errorf("at %s: %v, want %v", c.Now().Sub(t0), err, step.want)
		}
	}
}

// TestValidateJWKS validates against a key set served over HTTP, with an
// RSA key as Maskinporten's, and with the odd keys a key set may hold.
func TestValidateJWKS(t *testing.T) {
	t.Parallel()
	rsaKey := newRSAKey(t, 2048)
	small := newRSAKey(t, 1024)
	noAlg := newECKey(t)
	enc := newECKey(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	symKey, err := jwk.FromRaw(secret)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{jwk.KeyIDKey: "sym", jwk.AlgorithmKey: jwa.HS256, jwk.KeyUsageKey: "sig"} {
		if err := symKey.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrongCurve := newECKey(t)
	private := newECKey(t)
	privateJWK, err := jwk.FromRaw(private)
	if err != nil {
		t.Fatal(err)
	}
	_ = privateJWK.Set(jwk.KeyIDKey, "private")
	_ = privateJWK.Set(jwk.AlgorithmKey, jwa.ES256)
	symLying, _ := symKey.Clone()
	_ = symLying.Set(jwk.KeyIDKey, "sym-es")
	_ = symLying.Set(jwk.AlgorithmKey, jwa.ES256)
	set := keySet(t,
		publicJWK(t, &rsaKey.PublicKey, "rsa", jwa.RS256, "sig"),
		publicJWK(t, &small.PublicKey, "small", jwa.RS256, "sig"),
		publicJWK(t, &noAlg.PublicKey, "noalg", "", "sig"),
		publicJWK(t, &enc.PublicKey, "enc", jwa.ES256, "enc"),
		publicJWK(t, &p384.PublicKey, "p384", jwa.ES384, "sig"),
		publicJWK(t, edPub, "ed", jwa.EdDSA, ""),
		publicJWK(t, &wrongCurve.PublicKey, "wrong-curve", jwa.ES384, "sig"),
		privateJWK,
		symKey, symLying,
	)
	srv := newJWKSServer(t, set)
	c := newClock()
	v, err := NewValidator(t.Context(), Config{
		Issuer: DefaultDevIssuer, Audience: DefaultAudience, Scope: DefaultScope,
		JWKSURL: srv.URL + "/jwk", Now: c.Now,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(alg, kid string) map[string]any { return map[string]any{"alg": alg, "kid": kid} }
	for _, tc := range []struct {
		name   string
		token  string
		want   error
		reason string
	}{
		{"OKRS256", craft(t, hdr("RS256", "rsa"), claims(), rsSigner(t, rsaKey)), nil, ""},
		{"OKES384", craft(t, hdr("ES384", "p384"), claims(), es384Signer(t, p384)), nil, ""},
		{"OKEdDSA", craft(t, hdr("EdDSA", "ed"), claims(), edSigner(edPriv)), nil, ""},
		{"ErrES384KeyOnP256", craft(t, hdr("ES384", "wrong-curve"), claims(), esSigner(t, wrongCurve)), ErrUnauthenticated, "not usable"},
		{"ErrPrivateKeyInSet", craft(t, hdr("ES256", "private"), claims(), esSigner(t, private)), ErrUnauthenticated, "not usable"},
		{"ErrPS256WithRS256Key", craft(t, hdr("PS256", "rsa"), claims(), psSigner(t, rsaKey)), ErrUnauthenticated, "does not match"},
		{"ErrHMACWithRSAPublicKey", craft(t, hdr("HS256", "rsa"), claims(), hsSigner(x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey))), ErrUnauthenticated, "algorithm not allowed"},
		{"ErrSymmetricKeyInSet", craft(t, hdr("HS256", "sym"), claims(), hsSigner(secret)), ErrUnauthenticated, "algorithm not allowed"},
		{"ErrSymmetricKeyClaimingES256", craft(t, hdr("ES256", "sym-es"), claims(), esSigner(t, noAlg)), ErrUnauthenticated, "not usable"},
		{"ErrKeyWithoutAlg", craft(t, hdr("ES256", "noalg"), claims(), esSigner(t, noAlg)), ErrUnauthenticated, "not usable"},
		{"ErrEncryptionKey", craft(t, hdr("ES256", "enc"), claims(), esSigner(t, enc)), ErrUnauthenticated, "not for signatures"},
		{"ErrSmallRSAKey", craft(t, hdr("RS256", "small"), claims(), rsSigner(t, small)), ErrUnauthenticated, "not usable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Validate(context.Background(), "Bearer "+tc.token)
			checkErr(t, err, tc.want, tc.reason, tc.token)
		})
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("%d fetches of the key set, want 1", n)
	}
}

// TestValidateKeyRotation swaps the served key set: the new key is
// picked up at its first use, and the removed one stops working once the
// set has been fetched again.
func TestValidateKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, keySet(t, publicJWK(t, &oldKey.PublicKey, "old", jwa.ES256, "sig")))
	c := newClock()
	v, err := NewValidator(t.Context(), Config{
		Issuer: DefaultDevIssuer, Audience: DefaultAudience, Scope: DefaultScope,
		JWKSURL: srv.URL, Now: c.Now, MissRefresh: 10 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	oldTok := "Bearer " + craft(t, map[string]any{"alg": "ES256", "kid": "old"}, with("exp", t0.Add(24*time.Hour).Unix()), esSigner(t, oldKey))
	newTok := "Bearer " + craft(t, map[string]any{"alg": "ES256", "kid": "new"}, with("exp", t0.Add(24*time.Hour).Unix()), esSigner(t, newKey))
	validate := func(step, header string, want error, fetches int32) {
		t.Helper()
		_, err := v.Validate(ctx, header)
		if (want == nil && err != nil) || (want != nil && !errors.Is(err, want)) {
			t.Errorf("%s: %v, want %v", step, err, want)
		}
		if n := srv.fetches.Load(); n != fetches {
			t.Errorf("%s: %d fetches, want %d", step, n, fetches)
		}
	}
	validate("old key", oldTok, nil, 1)
	srv.set(t, keySet(t, publicJWK(t, &newKey.PublicKey, "new", jwa.ES256, "sig")))
	validate("old key, cached set", oldTok, nil, 1)
	validate("new key within MissRefresh of the first fetch", newTok, ErrUnauthenticated, 1)
	c.Advance(11 * time.Second)
	validate("new key after a kid-miss refresh", newTok, nil, 2)
	validate("new key again, no fetch", newTok, nil, 2)
	validate("old key after the refresh", oldTok, ErrUnauthenticated, 2)
	c.Advance(11 * time.Second)
	validate("old key, refreshed again", oldTok, ErrUnauthenticated, 3)
}

// TestValidateMissRefreshBounded sends many tokens with made-up key ids
// at once: they cause at most one fetch per MissRefresh.
func TestValidateMissRefreshBounded(t *testing.T) {
	t.Parallel()
	key := newECKey(t)
	srv := newJWKSServer(t, keySet(t, publicJWK(t, &key.PublicKey, "k", jwa.ES256, "sig")))
	c := newClock()
	v, err := NewValidator(t.Context(), Config{
		Issuer: DefaultDevIssuer, Audience: DefaultAudience, Scope: DefaultScope,
		JWKSURL: srv.URL, Now: c.Now,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	flood := func() {
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				tok := craft(t, map[string]any{"alg": "ES256", "kid": fmt.Sprint("made-up-", i)}, claims(), esSigner(t, key))
				if _, err := v.Validate(context.Background(), "Bearer "+tok); !errors.Is(err, ErrUnauthenticated) {
					t.Errorf("made-up kid: %v", err)
				}
			})
		}
		wg.Wait()
	}
	flood()
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("%d fetches right after the first, want 1", n)
	}
	c.Advance(DefaultMissRefresh)
	flood()
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("%d fetches after MissRefresh, want 2", n)
	}
}

// TestValidateJWKSDown: a key set that cannot be fetched at start is an
// error; later, cached keys keep working and an unknown kid is
// ErrUnavailable rather than a verdict on the token.
func TestValidateJWKSDown(t *testing.T) {
	t.Parallel()
	key := newECKey(t)
	srv := newJWKSServer(t, keySet(t, publicJWK(t, &key.PublicKey, "k", jwa.ES256, "sig")))
	cfg := Config{Issuer: DefaultDevIssuer, Audience: DefaultAudience, Scope: DefaultScope, JWKSURL: srv.URL}

	srv.status.Store(http.StatusInternalServerError)
	if _, err := NewValidator(t.Context(), cfg, nil); err == nil {
		t.Fatal("NewValidator with a failing JWKS URL: no error")
	}
	srv.status.Store(http.StatusOK)
	c := newClock()
	cfg.Now = c.Now
	v, err := NewValidator(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.status.Store(http.StatusInternalServerError)
	c.Advance(time.Hour)
	known := craft(t, map[string]any{"alg": "ES256", "kid": "k"}, with("exp", t0.Add(2*time.Hour).Unix()), esSigner(t, key))
	if _, err := v.Validate(context.Background(), "Bearer "+known); err != nil {
		t.Errorf("known key while the JWKS is down: %v", err)
	}
	unknown := craft(t, map[string]any{"alg": "ES256", "kid": "rotated"}, with("exp", t0.Add(2*time.Hour).Unix()), esSigner(t, key))
	_, err = v.Validate(context.Background(), "Bearer "+unknown)
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Err == nil || strings.Contains(e.Error(), srv.URL) {
		t.Errorf("unknown kid while the JWKS is down: %v (%#v)", err, e)
	}
}

func TestNewValidatorConfig(t *testing.T) {
	t.Parallel()
	keys := devIssuer(t).PublicKeys()
	ok := Config{Issuer: DefaultDevIssuer, Audience: DefaultAudience, Scope: DefaultScope}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		keys jwk.Set
	}{
		{"ErrNoIssuer", func(c *Config) { c.Issuer = "" }, keys},
		{"ErrNoAudience", func(c *Config) { c.Audience = "" }, keys},
		{"ErrNoScope", func(c *Config) { c.Scope = "" }, keys},
		{"ErrTwoScopes", func(c *Config) { c.Scope = "a b" }, keys},
		{"ErrNegativeLeeway", func(c *Config) { c.Leeway = -time.Second }, keys},
		{"ErrNoKeys", func(c *Config) {}, nil},
		{"ErrEmptyKeys", func(c *Config) {}, jwk.NewSet()},
		{"ErrPlainHTTP", func(c *Config) { c.JWKSURL = "http://maskinporten.no/jwk" }, nil},
		{"ErrRelativeURL", func(c *Config) { c.JWKSURL = "/jwk" }, nil},
		{"ErrFileURL", func(c *Config) { c.JWKSURL = "file:///etc/passwd" }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			if _, err := NewValidator(context.Background(), cfg, tc.keys); err == nil {
				t.Error("no error")
			}
		})
	}
	redirect := httptest.NewServer(http.RedirectHandler("http://192.0.2.1/jwk", http.StatusFound))
	defer redirect.Close()
	cfg := ok
	cfg.JWKSURL = redirect.URL
	if _, err := NewValidator(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "must be https") {
		t.Errorf("JWKS URL redirecting to plain http: %v", err)
	}
	if err := checkJWKSURL("https://maskinporten.no/jwk"); err != nil {
		t.Error(err)
	}
	if err := checkJWKSURL("http://localhost:8081/.well-known/jwks.json"); err != nil {
		t.Error(err)
	}
}
