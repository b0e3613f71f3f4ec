package apiauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/message"
)

// Defaults of the service's token configuration; `lessee serve` and
// `lessee token` share them.
const (
	DefaultDevIssuer   = "lessee-dev"   // iss of the development issuer's tokens
	DefaultAudience    = "lessee-api"   // aud the API requires
	DefaultScope       = "lessee:write" // scope the API requires
	DefaultLeeway      = 30 * time.Second
	DefaultMissRefresh = 30 * time.Second
)

// Limits on what a Validator reads.
const (
	maxTokenBytes = 8 << 10 // a Maskinporten token is about 1 KiB
	maxJWKSBytes  = 1 << 20
	fetchTimeout  = 10 * time.Second
	minRSABits    = 2048
)

// Maskinporten's consumer claim: an ISO 6523 identifier whose ICD 0192 is
// the Norwegian organisation number.
const (
	consumerAuthority = "iso6523-actorid-upis"
	orgNrPrefix       = "0192:"
)

// Error kinds; errors.Is(err, ErrForbidden) and so on work on every error
// Validate returns.
var (
	ErrUnauthenticated = errors.New("unauthenticated") // 401
	ErrForbidden       = errors.New("forbidden")       // 403
	ErrUnavailable     = errors.New("unavailable")     // 503
)

// Error is why a token was not accepted.
type Error struct {
	Kind   error  // ErrUnauthenticated, ErrForbidden or ErrUnavailable
	Reason string // short, lower case, safe to show to the client
	// Err is the cause of an ErrUnavailable (the fetch of the key set),
	// for the operator's log; nil for the other kinds.
	Err error
	// text is Reason as a message of the catalogue (see reasonError).
	text error
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Reason }

// Unwrap gives the kind and, for ErrUnavailable, the cause.
func (e *Error) Unwrap() []error {
	errs := []error{e.Kind}
	if e.text != nil {
		errs = append(errs, e.text)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func unauthenticated(key message.Key) error {
	return reasonError(ErrUnauthenticated, key)
}

// reasonError is an Error of kind whose reason is the catalogue's message
// key: English in Reason, for logs, and in the client's language through
// message.TextOf, which finds it in the error's chain.
func reasonError(kind error, key message.Key, args ...any) error {
	t := message.Errorf(key, args...)
	return &Error{Kind: kind, Reason: t.Error(), text: t}
}

// Principal is the caller a valid token names.
type Principal struct {
	OrgNr    string    // the submitter: consumer.ID without "0192:"
	Scopes   []string  // every scope of the token
	TokenID  string    // jti, empty when absent
	ClientID string    // client_id, empty when absent
	Expires  time.Time // the token's exp
	KeyID    string    // the kid of the key that signed it
}

// Config is what a Validator requires of a token.
type Config struct {
	Issuer   string // iss, exactly
	Audience string // one of aud
	Scope    string // one of the space-separated scope
	// JWKSURL is where the signing keys are fetched from (https, or http
	// on a loopback address); empty uses the key set given to
	// NewValidator.
	JWKSURL string
	// Leeway is the clock skew allowed for exp, nbf and iat; 0 means
	// DefaultLeeway.
	Leeway time.Duration
	// MissRefresh is the least time between two fetches of the key set
	// caused by tokens with an unknown kid; 0 means DefaultMissRefresh.
	MissRefresh time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient fetches the key set; nil means a client with a 10 s
	// timeout. Its Timeout bounds each fetch. A copy is used, whose
	// redirects must meet the rule for JWKSURL.
	HTTPClient *http.Client
}

// Validator checks bearer tokens. It is safe for concurrent use.
type Validator struct {
	cfg    Config
	static jwk.Set // without JWKSURL

	// accepted remembers tokens already validated, so that an
	// integration sending one token with every call pays the signature
	// check once; see Validate.
	mu       sync.Mutex
	accepted map[string]acceptedToken

	cache       *jwk.Cache // with JWKSURL
	refreshSem  chan struct{}
	lastRefresh time.Time // guarded by refreshSem
}

// NewValidator checks cfg and returns a Validator. With cfg.JWKSURL it
// fetches the key set once before it returns and keeps it fresh in the
// background until ctx ends, so ctx must live as long as the Validator;
// keys is then unused. Without a URL, keys is the key set.
func NewValidator(ctx context.Context, cfg Config, keys jwk.Set) (*Validator, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("token validator: issuer and audience are required")
	}
	if cfg.Scope == "" || strings.ContainsAny(cfg.Scope, " \t\r\n") {
		return nil, errors.New("token validator: scope must be one non-empty scope")
	}
	if cfg.Leeway < 0 || cfg.MissRefresh < 0 {
		return nil, errors.New("token validator: leeway and miss refresh must not be negative")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.MissRefresh == 0 {
		cfg.MissRefresh = DefaultMissRefresh
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Validator{cfg: cfg, refreshSem: make(chan struct{}, 1)}
	if cfg.JWKSURL == "" {
		if keys == nil || keys.Len() == 0 {
			return nil, errors.New("token validator: no JWKS URL and no keys")
		}
		v.static = keys
		return v, nil
	}
	if err := checkJWKSURL(cfg.JWKSURL); err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: fetchTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		client = &c
	}
	// A redirect must lead where the URL itself could be.
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return checkJWKSURL(req.URL.String())
	}
	v.cache = jwk.NewCache(ctx)
	if err := v.cache.Register(cfg.JWKSURL, jwk.WithHTTPClient(limitedClient{client})); err != nil {
		return nil, fmt.Errorf("token validator: %w", err)
	}
	v.lastRefresh = cfg.Now()
	if _, err := v.cache.Refresh(ctx, cfg.JWKSURL); err != nil {
		return nil, fmt.Errorf("token validator: fetch JWKS: %w", err)
	}
	return v, nil
}

// checkJWKSURL refuses a key set URL an attacker on the network could
// answer.
func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("token validator: JWKS URL %q is not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("token validator: JWKS URL %q must be https (http only on loopback)", s)
}

// limitedClient caps the size of a key set response.
type limitedClient struct{ c *http.Client }

func (l limitedClient) Get(u string) (*http.Response, error) {
	resp, err := l.c.Get(u)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxJWKSBytes), resp.Body}
	return resp, nil
}

// acceptedToken is a validated token's principal and until when it may be
// taken without validating again.
type acceptedToken struct {
	p     Principal
	until time.Time
}

// Accepted tokens are remembered for at most acceptedFor, never past their
// own exp (with the leeway), and at most maxAccepted of them: a key
// removed from the JWKS stops a token it signed within acceptedFor.
const (
	acceptedFor = time.Minute
	maxAccepted = 10000
)

// Validate checks an Authorization header value and returns the principal
// of its token. Errors are *Error values of the kinds above. A token it
// accepted is accepted again without a signature check for up to a
// minute, never past its own exp.
func (v *Validator) Validate(ctx context.Context, authorization string) (Principal, error) {
	now := v.now()
	v.mu.Lock()
	a, ok := v.accepted[authorization]
	v.mu.Unlock()
	if ok && now.Before(a.until) && v.stillListed(ctx, a.p.KeyID) {
		return a.p, nil
	}
	p, err := v.validate(ctx, authorization)
	if err != nil {
		return p, err
	}
	until := now.Add(acceptedFor)
	if exp := p.Expires.Add(v.cfg.Leeway); exp.Before(until) {
		until = exp
	}
	v.mu.Lock()
	if v.accepted == nil || len(v.accepted) >= maxAccepted {
		v.accepted = map[string]acceptedToken{}
	}
	v.accepted[authorization] = acceptedToken{p: p, until: until}
	v.mu.Unlock()
	return p, nil
}

// stillListed reports whether the key kid is in the key set as it stands,
// without fetching it: a token whose key has left the set is validated
// again (and refused) rather than taken from memory.
func (v *Validator) stillListed(ctx context.Context, kid string) bool {
	if v.static != nil {
		_, ok := v.static.LookupKeyID(kid)
		return ok
	}
	set, err := v.cache.Get(ctx, v.cfg.JWKSURL)
	if err != nil {
		return false
	}
	_, ok := set.LookupKeyID(kid)
	return ok
}

// now is the validator's clock.
func (v *Validator) now() time.Time {
	if v.cfg.Now != nil {
		return v.cfg.Now()
	}
	return time.Now()
}

func (v *Validator) validate(ctx context.Context, authorization string) (Principal, error) {
	raw, err := bearer(authorization)
	if err != nil {
		return Principal{}, err
	}

	// The key provider runs inside jwt.Parse; it records why it found no
	// key, which the library's error would only describe in its own words.
	var keyErr error
	var kid string
	provider := jws.KeyProviderFunc(func(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
		alg, key, err := v.key(ctx, sig.ProtectedHeaders())
		if err != nil {
			keyErr = err
			return err
		}
		kid = sig.ProtectedHeaders().KeyID()
		sink.Key(alg, key)
		return nil
	})
	tok, err := jwt.ParseString(raw,
		jwt.WithKeyProvider(provider),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(v.cfg.Now)),
		jwt.WithAcceptableSkew(v.cfg.Leeway),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience),
	)
	if err != nil {
		if keyErr != nil {
			return Principal{}, keyErr
		}
		return Principal{}, classify(err)
	}
	// The library skips an exp of 0 (1970) as if it were absent.
	if tok.Expiration().Unix() <= 0 {
		return Principal{}, unauthenticated(message.TokenExpired)
	}

	orgnr, err := consumerOrgNr(tok)
	if err != nil {
		return Principal{}, err
	}
	p := Principal{OrgNr: orgnr, TokenID: tok.JwtID(), Expires: tok.Expiration(), KeyID: kid}
	if s, ok := tok.Get("scope"); ok {
		if s, ok := s.(string); ok {
			p.Scopes = strings.Fields(s)
		}
	}
	if c, ok := tok.Get("client_id"); ok {
		if c, ok := c.(string); ok {
			p.ClientID = c
		}
	}
	for _, s := range p.Scopes {
		if s == v.cfg.Scope {
			return p, nil
		}
	}
	return Principal{}, reasonError(ErrForbidden, message.TokenLacksScope, v.cfg.Scope)
}

// bearer takes the token out of an Authorization header value and checks
// that it is a compact JWS in canonical base64url, so one token has one
// spelling.
func bearer(h string) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", unauthenticated(message.TokenMissing)
	}
	scheme, tok, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", unauthenticated(message.TokenNotBearer)
	}
	tok = strings.TrimLeft(tok, " ")
	if tok == "" {
		return "", unauthenticated(message.TokenMissing)
	}
	if len(tok) > maxTokenBytes {
		return "", unauthenticated(message.TokenTooLong)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", unauthenticated(message.TokenMalformed)
	}
	for _, p := range parts {
		if p == "" {
			return "", unauthenticated(message.TokenMalformed)
		}
		if _, err := base64.RawURLEncoding.Strict().DecodeString(p); err != nil {
			return "", unauthenticated(message.TokenMalformed)
		}
	}
	return tok, nil
}

// key returns the key and algorithm a token's signature must verify with:
// the key of the set with the token's kid, with the key's own alg, which
// must be an asymmetric one and the token's alg.
func (v *Validator) key(ctx context.Context, h jws.Headers) (jwa.SignatureAlgorithm, jwk.Key, error) {
	alg := h.Algorithm()
	if !allowedAlg(alg) {
		return "", nil, unauthenticated(message.TokenAlgorithm)
	}
	kid := h.KeyID()
	if kid == "" {
		return "", nil, unauthenticated(message.TokenNoKeyID)
	}
	key, err := v.lookup(ctx, kid)
	if err != nil {
		return "", nil, err
	}
	if use := key.KeyUsage(); use != "" && use != jwk.ForSignature.String() {
		return "", nil, unauthenticated(message.TokenKeyNotForSigning)
	}
	keyAlg := jwa.SignatureAlgorithm(key.Algorithm().String())
	if !allowedAlg(keyAlg) || !keyFits(keyAlg, key) {
		return "", nil, unauthenticated(message.TokenKeyUnusable)
	}
	if keyAlg != alg {
		return "", nil, unauthenticated(message.TokenAlgorithmMismatch)
	}
	return keyAlg, key, nil
}

// allowedAlg reports whether alg is an asymmetric signature algorithm.
func allowedAlg(alg jwa.SignatureAlgorithm) bool {
	switch alg {
	case jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512,
		jwa.ES256, jwa.ES384, jwa.ES512, jwa.EdDSA:
		return true
	}
	return false
}

// keyFits reports whether key is a public key of the type and size alg
// needs: RSA of at least 2048 bits, the curve of an ES algorithm, Ed25519.
func keyFits(alg jwa.SignatureAlgorithm, key jwk.Key) bool {
	if private, err := jwk.IsPrivateKey(key); err != nil || private {
		return false
	}
	var raw any
	if err := key.Raw(&raw); err != nil {
		return false
	}
	switch alg {
	case jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512:
		k, ok := raw.(*rsa.PublicKey)
		return ok && k.N.BitLen() >= minRSABits
	case jwa.ES256:
		k, ok := raw.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P256()
	case jwa.ES384:
		k, ok := raw.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P384()
	case jwa.ES512:
		k, ok := raw.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P521()
	case jwa.EdDSA:
		_, ok := raw.(ed25519.PublicKey)
		return ok
	}
	return false
}

// lookup finds the key with id kid, fetching the key set again when it is
// not there and the last fetch is at least MissRefresh ago.
func (v *Validator) lookup(ctx context.Context, kid string) (jwk.Key, error) {
	if v.static != nil {
		if key, ok := v.static.LookupKeyID(kid); ok {
			return key, nil
		}
		return nil, unauthenticated(message.TokenUnknownKey)
	}
	set, err := v.cache.Get(ctx, v.cfg.JWKSURL)
	if err != nil {
		return nil, &Error{Kind: ErrUnavailable, Reason: "signing keys unavailable", Err: err}
	}
	if key, ok := set.LookupKeyID(kid); ok {
		return key, nil
	}

	select {
	case v.refreshSem <- struct{}{}:
	case <-ctx.Done():
		return nil, &Error{Kind: ErrUnavailable, Reason: "signing keys unavailable", Err: ctx.Err()}
	}
	defer func() { <-v.refreshSem }()
	// Another request may have fetched the set while this one waited.
	if set, err = v.cache.Get(ctx, v.cfg.JWKSURL); err == nil {
		if key, ok := set.LookupKeyID(kid); ok {
			return key, nil
		}
	}
	now := v.cfg.Now()
	if now.Sub(v.lastRefresh) < v.cfg.MissRefresh {
		return nil, unauthenticated(message.TokenUnknownKey)
	}
	v.lastRefresh = now
	set, err = v.cache.Refresh(ctx, v.cfg.JWKSURL)
	if err != nil {
		return nil, &Error{Kind: ErrUnavailable, Reason: "signing keys unavailable", Err: err}
	}
	if key, ok := set.LookupKeyID(kid); ok {
		return key, nil
	}
	return nil, unauthenticated(message.TokenUnknownKey)
}

// classify turns an error of jwt.Parse into a reason of our own.
func classify(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired()):
		return unauthenticated(message.TokenExpired)
	case errors.Is(err, jwt.ErrTokenNotYetValid()):
		return unauthenticated(message.TokenNotYetValid)
	case errors.Is(err, jwt.ErrInvalidIssuedAt()):
		return unauthenticated(message.TokenIssuedInFuture)
	case errors.Is(err, jwt.ErrInvalidIssuer()):
		return unauthenticated(message.TokenWrongIssuer)
	case errors.Is(err, jwt.ErrInvalidAudience()):
		return unauthenticated(message.TokenWrongAudience)
	case errors.Is(err, jwt.ErrRequiredClaim()):
		return unauthenticated(message.TokenNoExpiry)
	case jws.IsVerificationError(err):
		return unauthenticated(message.TokenBadSignature)
	}
	return unauthenticated(message.TokenMalformed)
}

// consumerOrgNr reads the submitter from Maskinporten's consumer claim.
func consumerOrgNr(tok jwt.Token) (string, error) {
	c, ok := tok.Get("consumer")
	if !ok {
		return "", unauthenticated(message.TokenNoConsumer)
	}
	m, ok := c.(map[string]any)
	if !ok {
		return "", unauthenticated(message.TokenBadConsumer)
	}
	if a, _ := m["authority"].(string); a != consumerAuthority {
		return "", unauthenticated(message.TokenBadConsumer)
	}
	id, _ := m["ID"].(string)
	orgnr, ok := strings.CutPrefix(id, orgNrPrefix)
	if !ok || !validOrgNr(orgnr) {
		return "", unauthenticated(message.TokenBadConsumer)
	}
	return orgnr, nil
}

// validOrgNr is ident.OrgNr without the surrounding whitespace it allows.
func validOrgNr(s string) bool {
	return len(s) == 9 && strings.TrimSpace(s) == s && ident.OrgNr(s) == nil
}
