package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetreg/lessee/api"
	"github.com/fleetreg/lessee/apiauth"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/validate"
)

// startAPI serves the single-change API on --api-listen. Without
// --token-jwks-url the service is its own development issuer: its key is
// kept under --data (`lessee token` signs with it) and its JWKS served
// beside the API.
func (s *service) startAPI(ctx context.Context, store *sqlstore.Store, reg prometheus.Registerer) error {
	cfg := s.cfg
	var keys jwk.Set
	var jwks []byte
	if cfg.TokenJWKSURL == "" {
		dev, err := apiauth.LoadOrCreateDevIssuer(cfg.Data, cfg.TokenIssuer, cfg.TokenAudience)
		if err != nil {
			return fmt.Errorf("development token issuer: %w", err)
		}
		keys = dev.PublicKeys()
		if jwks, err = dev.JWKS(); err != nil {
			return fmt.Errorf("development token issuer: %w", err)
		}
	}
	v, err := apiauth.NewValidator(ctx, apiauth.Config{Issuer: cfg.TokenIssuer, Audience: cfg.TokenAudience,
		Scope: cfg.TokenScope, JWKSURL: cfg.TokenJWKSURL}, keys)
	if err != nil {
		return fmt.Errorf("API tokens: %w", err)
	}
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		return fmt.Errorf("load time zone: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.APIListen)
	if err != nil {
		return fmt.Errorf("--api-listen: %w", err)
	}
	s.apiAddr = ln.Addr().String()
	srv := api.New(store, tokenAuth{v}, api.Config{Validate: validate.Config{AllowSynthetic: cfg.TestRegistry},
		Rate: cfg.APIRate, Location: oslo, JWKS: jwks, Metrics: api.NewMetrics(reg), DefaultLanguage: cfg.defaultLanguage()}, s.log)
	mux := http.NewServeMux()
	srv.Routes(mux)
	// Bodies are at most 64 KiB and answers small.
	s.serveHTTP(ctx, ln, mux, 30*time.Second, 30*time.Second)
	s.group.Go(func() error { s.forgetIdempotencyKeys(ctx, store, time.Hour); return nil })
	s.group.Go(func() error { srv.RunMarks(ctx, time.Second); return nil })
	return nil
}

// forgetIdempotencyKeys removes answers kept past their 24 hours every
// interval until ctx is done. Every API process may run it at once.
func (s *service) forgetIdempotencyKeys(ctx context.Context, store *sqlstore.Store, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := store.ForgetIdempotencyKeys(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("could not remove expired idempotency keys; the next sweep tries again", "err", err)
		} else if n > 0 {
			s.log.Info("expired idempotency keys removed", "count", n)
		}
	}
}

// tokenAuth is the API's Authenticator over an apiauth.Validator.
type tokenAuth struct{ v *apiauth.Validator }

func (a tokenAuth) Authenticate(ctx context.Context, authorization string) (string, error) {
	p, err := a.v.Validate(ctx, authorization)
	switch {
	case err == nil:
		return p.OrgNr, nil
	case errors.Is(err, apiauth.ErrForbidden):
		return "", authError{kind: api.ErrForbidden, err: err}
	case errors.Is(err, apiauth.ErrUnavailable):
		return "", authError{kind: api.ErrUnavailable, err: err}
	}
	return "", authError{kind: api.ErrUnauthenticated, err: err}
}

// authError is an apiauth error as the API's kind, with its message.
type authError struct {
	kind error
	err  error
}

func (e authError) Error() string { return e.err.Error() }

// Unwrap gives the API's kind and the apiauth error, whose reason the API
// writes in the caller's language (message.TextOf finds it).
func (e authError) Unwrap() []error { return []error{e.kind, e.err} }
