package apiauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// t0 is the tests' now, on a whole second as JWT times are.
var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testOrgNr is a valid organisation number (the demo registry's fleet
// owner).
const testOrgNr = "912345602"

// claims are the claims of a valid token at t0 for testOrgNr; tests change
// a copy.
func claims() map[string]any {
	return map[string]any{
		"iss":       DefaultDevIssuer,
		"aud":       DefaultAudience,
		"scope":     DefaultScope,
		"consumer":  map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192:" + testOrgNr},
		"client_id": "test-client",
		"jti":       "jti-1",
		"iat":       t0.Unix(),
		"nbf":       t0.Unix(),
		"exp":       t0.Add(time.Hour).Unix(),
	}
}

// with returns claims with the given claims set; a nil value removes one.
func with(kv ...any) map[string]any {
	c := claims()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// craft builds a compact JWS by hand, so that tests can write headers the
// library would refuse to produce; sign returns the signature of the
// signing input.
func craft(t testing.TB, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(h) + "." + b64(c)
	return input + "." + b64(sign([]byte(input)))
}

// esSigner signs as ES256 (r and s, 32 bytes each).
func esSigner(t testing.TB, priv *ecdsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		sum := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, priv, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
}

// es384Signer signs as ES384 (r and s, 48 bytes each) with a P-384 key.
func es384Signer(t testing.TB, priv *ecdsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		sum := sha512.Sum384(input)
		r, s, err := ecdsa.Sign(rand.Reader, priv, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 96)
		r.FillBytes(sig[:48])
		s.FillBytes(sig[48:])
		return sig
	}
}

func edSigner(priv ed25519.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte { return ed25519.Sign(priv, input) }
}

func hsSigner(secret []byte) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return m.Sum(nil)
	}
}

func rsSigner(t testing.TB, priv *rsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		sum := sha256.Sum256(input)
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

func psSigner(t testing.TB, priv *rsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		sum := sha256.Sum256(input)
		sig, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newRSAKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publicJWK is the public JWK of raw with the given kid and, unless empty,
// alg and use.
func publicJWK(t testing.TB, raw any, kid string, alg jwa.SignatureAlgorithm, use string) jwk.Key {
	t.Helper()
	k, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	if pk, err := k.PublicKey(); err == nil {
		k = pk
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	if alg != "" {
		if err := k.Set(jwk.AlgorithmKey, alg); err != nil {
			t.Fatal(err)
		}
	}
	if use != "" {
		if err := k.Set(jwk.KeyUsageKey, use); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

func keySet(t testing.TB, keys ...jwk.Key) jwk.Set {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	return set
}

// jwksServer serves a key set that tests can swap, and counts fetches.
type jwksServer struct {
	*httptest.Server
	body    atomic.Pointer[[]byte]
	status  atomic.Int32
	fetches atomic.Int32
}

func newJWKSServer(t testing.TB, set jwk.Set) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(t, set)
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(s.status.Load()))
		w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(t testing.TB, set jwk.Set) {
	t.Helper()
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.body.Store(&b)
}

// devIssuer is a DevIssuer in a temporary directory.
func devIssuer(t testing.TB) *DevIssuer {
	t.Helper()
	d, err := LoadOrCreateDevIssuer(t.TempDir(), DefaultDevIssuer, DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// devValidator validates the tokens of d at the clock's time.
func devValidator(t testing.TB, d *DevIssuer, c *clock) *Validator {
	t.Helper()
	v, err := NewValidator(context.Background(), Config{
		Issuer: DefaultDevIssuer, Audience: DefaultAudience, Scope: DefaultScope, Now: c.Now,
	}, d.PublicKeys())
	if err != nil {
		t.Fatal(err)
	}
	return v
}
