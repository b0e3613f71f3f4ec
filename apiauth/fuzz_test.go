package apiauth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzValidate feeds arbitrary Authorization headers to a Validator: it
// must not panic, every error must be one of the kinds, and a header is
// accepted only when it carries, byte for byte, a token the issuer signed.
func FuzzValidate(f *testing.F) {
	d := devIssuer(f)
	priv := devPriv(f, d)
	v := devValidator(f, d, newClock())

	issued := map[string]bool{}
	for _, scope := range []string{DefaultScope, "openid " + DefaultScope, "lessee:read"} {
		tok, err := d.Token(testOrgNr, scope, time.Hour, t0)
		if err != nil {
			f.Fatal(err)
		}
		issued[tok] = true
		f.Add("Bearer " + tok)
	}
	kid := d.KeyID()
	for _, seed := range []string{
		craft(f, map[string]any{"alg": "none", "kid": kid}, claims(), func([]byte) []byte { return []byte("x") }),
		craft(f, map[string]any{"alg": "HS256", "kid": kid}, claims(), hsSigner([]byte(kid))),
		craft(f, map[string]any{"alg": "ES384", "kid": kid}, claims(), esSigner(f, priv)),
		craft(f, map[string]any{"alg": "ES256", "kid": kid}, with("exp", 0), esSigner(f, priv)),
		craft(f, map[string]any{"alg": "ES256", "kid": kid}, with("consumer", map[string]any{"ID": 7}), esSigner(f, priv)),
	} {
		issued[seed] = true // signed by the issuer's key, though not valid
		f.Add("Bearer " + seed)
	}
	f.Add("")
	f.Add("Bearer")
	f.Add("Basic dXNlcjpwdw==")
	f.Add("Bearer e30.e30.e30")
	f.Add(`Bearer {"payload":"e30","signatures":[{"protected":"e30","signature":"AA"}]}`)

	f.Fuzz(func(t *testing.T, header string) {
		p, err := v.Validate(context.Background(), header)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !(errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrForbidden)) || e.Reason == "" {
				t.Fatalf("Validate(%q): unexpected error %#v", header, err)
			}
			return
		}
		_, tok, _ := strings.Cut(strings.TrimSpace(header), " ")
		if !issued[strings.TrimLeft(tok, " ")] || p.OrgNr != testOrgNr {
			t.Fatalf("Validate(%q) accepted a token the issuer did not sign: %+v", header, p)
		}
	})
}
