package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fleetreg/lessee/apiauth"
	"github.com/fleetreg/lessee/ident"
)

// runToken prints a token of the development issuer, whose signing key is
// kept under --data: the token the API accepts when the service is its
// own issuer (no --token-jwks-url).
const tokenHelp = `Prints a bearer token for the organisation ORGNR, signed by the development
issuer's key in --data (created on first use), as the API accepts it when the
service runs without --token-jwks-url.

Examples:
  lessee token --as 912345602
  curl -H "Authorization: Bearer $(lessee token --as 912345602)" http://127.0.0.1:8081/api/v1/vehicles/EL10001`

func runToken(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("token", "lessee token --as ORGNR [--scope S] [--ttl D] [flags]", tokenHelp, stdout)
	fs := cmd.fs
	data := fs.String("data", defaultServeConfig().Data, "directory of the development issuer's signing key ("+apiauth.DevKeyFile+"), as serve uses")
	as := fs.String("as", "", "organisation number the token is for (the consumer claim)")
	scope := fs.String("scope", apiauth.DefaultScope, "space-separated scopes of the token; empty for none")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	issuer := fs.String("token-issuer", apiauth.DefaultDevIssuer, "issuer (iss) of the token")
	audience := fs.String("token-audience", apiauth.DefaultAudience, "audience (aud) of the token")
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	if *as == "" {
		return cmd.usageErr("missing --as ORGNR: the organisation number the token is for")
	}
	if _, err := cmd.args(); err != nil {
		return err
	}
	orgnr := strings.TrimSpace(*as)
	if err := ident.OrgNr(orgnr); err != nil {
		return cmd.usageErr("--as %q: %v", *as, err)
	}
	if err := cmd.checkFlags(positive("ttl", *ttl)); err != nil {
		return err
	}
	if *issuer == "" || *audience == "" {
		return cmd.usageErr("--token-issuer and --token-audience must not be empty")
	}
	d, err := apiauth.LoadOrCreateDevIssuer(*data, *issuer, *audience)
	if err != nil {
		return err
	}
	tok, err := d.Token(orgnr, *scope, *ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
