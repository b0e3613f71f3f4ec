package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee/apiauth"
)

// TestTokenCommand: `lessee token` prints a token that a Validator built
// from the same data directory's development issuer accepts, for the
// organisation asked for.
func TestTokenCommand(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	env := map[string]string{"LESSEE_DATA": data}
	getenv := func(k string) string { return env[k] }
	token := func(args ...string) (stdout, stderr string, err error) {
		var out, errOut bytes.Buffer
		err = run(context.Background(), append([]string{"token"}, args...), getenv, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	validator := func(t *testing.T, at time.Time) *apiauth.Validator {
		t.Helper()
		d, err := apiauth.LoadOrCreateDevIssuer(data, apiauth.DefaultDevIssuer, apiauth.DefaultAudience)
		if err != nil {
			t.Fatal(err)
		}
		v, err := apiauth.NewValidator(context.Background(), apiauth.Config{
			Issuer: apiauth.DefaultDevIssuer, Audience: apiauth.DefaultAudience, Scope: apiauth.DefaultScope,
			Now: func() time.Time { return at },
		}, d.PublicKeys())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	t.Run("OK", func(t *testing.T) {
		out, errOut, err := token("--as", "912345602")
		if err != nil {
			t.Fatalf("token: %v\n%s", err, errOut)
		}
		if strings.Count(out, "\n") != 1 || strings.Count(out, ".") != 2 {
			t.Fatalf("output %q, want one token on one line", out)
		}
		p, err := validator(t, time.Now()).Validate(context.Background(), "Bearer "+strings.TrimSpace(out))
		if err != nil {
			t.Fatal(err)
		}
		if p.OrgNr != "912345602" || p.ClientID != apiauth.DevClientID {
			t.Errorf("principal %+v", p)
		}
		// The default lifetime is an hour.
		if _, err := validator(t, time.Now().Add(time.Hour+time.Minute)).Validate(context.Background(), "Bearer "+strings.TrimSpace(out)); !errors.Is(err, apiauth.ErrUnauthenticated) {
			t.Errorf("after an hour: %v, want expired", err)
		}
	})

	t.Run("OKFlags", func(t *testing.T) {
		out, errOut, err := token("--as", "912345610", "--ttl", "2m", "--scope", "openid lessee:write")
		if err != nil {
			t.Fatalf("token: %v\n%s", err, errOut)
		}
		tok := "Bearer " + strings.TrimSpace(out)
		if p, err := validator(t, time.Now()).Validate(context.Background(), tok); err != nil || p.OrgNr != "912345610" || len(p.Scopes) != 2 {
			t.Errorf("principal %+v, %v", p, err)
		}
		if _, err := validator(t, time.Now().Add(3*time.Minute)).Validate(context.Background(), tok); !errors.Is(err, apiauth.ErrUnauthenticated) {
			t.Errorf("--ttl 2m after 3m: %v, want expired", err)
		}
	})

	t.Run("ForbiddenOtherScope", func(t *testing.T) {
		out, errOut, err := token("--as", "912345602", "--scope", "lessee:read")
		if err != nil {
			t.Fatalf("token: %v\n%s", err, errOut)
		}
		if _, err := validator(t, time.Now()).Validate(context.Background(), "Bearer "+strings.TrimSpace(out)); !errors.Is(err, apiauth.ErrForbidden) {
			t.Errorf("%v, want ErrForbidden", err)
		}
	})

	t.Run("ErrOtherAudience", func(t *testing.T) {
		out, errOut, err := token("--as", "912345602", "--token-audience", "other-api")
		if err != nil {
			t.Fatalf("token: %v\n%s", err, errOut)
		}
		if _, err := validator(t, time.Now()).Validate(context.Background(), "Bearer "+strings.TrimSpace(out)); !errors.Is(err, apiauth.ErrUnauthenticated) {
			t.Errorf("%v, want ErrUnauthenticated", err)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"ErrBadOrgNr", []string{"--as", "912345603"}, "--as"},
		{"ErrShortOrgNr", []string{"--as", "1234"}, "9 digits"},
		{"ErrZeroTTL", []string{"--as", "912345602", "--ttl", "0s"}, "--ttl"},
		{"ErrEmptyIssuer", []string{"--as", "912345602", "--token-issuer", ""}, "--token-issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := token(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if out != "" {
				t.Errorf("printed %q", out)
			}
		})
	}

	t.Run("ErrNoAs", func(t *testing.T) {
		_, _, err := token()
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "missing --as") {
			t.Errorf("token without --as: %v, want a usage error naming --as", err)
		}
	})
}
