package main

import (
	"context"
	"errors"
	"flag"
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
func runToken(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: lessee token --as ORGNR [--scope S] [--ttl D]

Prints a bearer token for the organisation ORGNR, signed by the development
issuer's key in --data (created on first use), as the API accepts it when the
service runs without --token-jwks-url:

  curl -H "Authorization: Bearer $(lessee token --as 912345602)" ...`)
		fs.PrintDefaults()
	}
	data := fs.String("data", "./lessee-data", "directory of the development issuer's signing key ("+apiauth.DevKeyFile+"), as serve uses")
	as := fs.String("as", "", "organisation number the token is for (the consumer claim)")
	scope := fs.String("scope", apiauth.DefaultScope, "space-separated scopes of the token; empty for none")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	issuer := fs.String("token-issuer", apiauth.DefaultDevIssuer, "issuer (iss) of the token")
	audience := fs.String("token-audience", apiauth.DefaultAudience, "audience (aud) of the token")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() != 0 || *as == "" {
		fs.Usage()
		return flag.ErrHelp
	}
	orgnr := strings.TrimSpace(*as)
	if err := ident.OrgNr(orgnr); err != nil {
		return fmt.Errorf("--as %q: %w", *as, err)
	}
	if *ttl <= 0 {
		return errors.New("--ttl must be positive")
	}
	if *issuer == "" || *audience == "" {
		return errors.New("--token-issuer and --token-audience must not be empty")
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
