package apiauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// DevKeyFile is the development issuer's signing key's file name inside
// its directory.
const DevKeyFile = "api_signing_key.pem"

// DevClientID is the client_id of the development issuer's tokens.
const DevClientID = "lessee-dev"

// DevIssuer issues Maskinporten-shaped tokens with a key kept on disk, for
// development and tests: whoever can read the key file can act as any
// organisation.
type DevIssuer struct {
	issuer, audience string
	key              jwk.Key // private; kid, alg ES256, use sig
	public           jwk.Key
}

// LoadOrCreateDevIssuer reads the signing key dir/DevKeyFile, or creates
// it (P-256, mode 0600) on first use. The key id is the key's RFC 7638
// thumbprint, so it stays the same as long as the file does.
func LoadOrCreateDevIssuer(dir, issuer, audience string) (*DevIssuer, error) {
	if issuer == "" || audience == "" {
		return nil, errors.New("dev issuer: issuer and audience are required")
	}
	name := filepath.Join(dir, DevKeyFile)
	priv, err := readDevKey(name)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err = createDevKey(dir, name)
	}
	if err != nil {
		return nil, err
	}

	key, err := jwk.FromRaw(priv)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	public, err := key.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	if err := jwk.AssignKeyID(public); err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	for _, k := range []jwk.Key{key, public} {
		for _, kv := range [][2]any{{jwk.KeyIDKey, public.KeyID()}, {jwk.AlgorithmKey, jwa.ES256}, {jwk.KeyUsageKey, jwk.ForSignature}} {
			if err := k.Set(kv[0].(string), kv[1]); err != nil {
				return nil, fmt.Errorf("dev issuer: %w", err)
			}
		}
	}
	return &DevIssuer{issuer: issuer, audience: audience, key: key, public: public}, nil
}

// createDevKey generates a key and stores it as name. It is written to a
// temporary file (CreateTemp makes it 0600) and linked into place, so a
// second process starting at the same moment either wins or reads the
// complete key, never half a file.
func createDevKey(dir, name string) (*ecdsa.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: encode key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".api_signing_key-*")
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("dev issuer: write key: %w", err)
	}
	if err := os.Link(tmp.Name(), name); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	return readDevKey(name)
}

// readDevKey reads a P-256 key in PKCS #8 PEM and refuses a file others
// may read.
func readDevKey(name string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("dev issuer: %s is readable by others (mode %s); chmod 600 it", name, fi.Mode().Perm())
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("dev issuer: %s: not a PEM private key", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %s: %w", name, err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("dev issuer: %s: not a P-256 key", name)
	}
	return priv, nil
}

// Issuer is the iss of the issuer's tokens.
func (d *DevIssuer) Issuer() string { return d.issuer }

// Audience is the aud of the issuer's tokens.
func (d *DevIssuer) Audience() string { return d.audience }

// KeyID is the kid of the signing key.
func (d *DevIssuer) KeyID() string { return d.public.KeyID() }

// PublicKeys returns a new key set holding the issuer's public key.
func (d *DevIssuer) PublicKeys() jwk.Set {
	set := jwk.NewSet()
	k, err := d.public.Clone()
	if err != nil { // cloning a valid key does not fail
		panic(fmt.Sprintf("dev issuer: clone public key: %v", err))
	}
	_ = set.AddKey(k)
	return set
}

// JWKS is the public key set as JSON, for GET /.well-known/jwks.json.
func (d *DevIssuer) JWKS() ([]byte, error) {
	b, err := json.Marshal(d.PublicKeys())
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	return b, nil
}

// Token issues a token for the organisation orgnr with the given scope
// (space-separated; empty for none), valid from now for ttl, shaped as
// Maskinporten's: iss, aud, scope, consumer, iat, nbf, exp, jti,
// client_id, and the header's kid and alg ES256.
func (d *DevIssuer) Token(orgnr, scope string, ttl time.Duration, now time.Time) (string, error) {
	if !validOrgNr(orgnr) {
		return "", fmt.Errorf("dev issuer: %q is not a valid organisation number", orgnr)
	}
	if ttl <= 0 {
		return "", errors.New("dev issuer: ttl must be positive")
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("dev issuer: %w", err)
	}
	b := jwt.NewBuilder().
		Issuer(d.issuer).
		Audience([]string{d.audience}).
		IssuedAt(now).
		NotBefore(now).
		Expiration(now.Add(ttl)).
		JwtID(hex.EncodeToString(jti)).
		Claim("client_id", DevClientID).
		Claim("consumer", map[string]string{"authority": consumerAuthority, "ID": orgNrPrefix + orgnr})
	if scope != "" {
		b = b.Claim("scope", scope)
	}
	tok, err := b.Build()
	if err != nil {
		return "", fmt.Errorf("dev issuer: %w", err)
	}
	tok.Options().Enable(jwt.FlattenAudience) // "aud": "…", as Maskinporten writes it
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256, d.key))
	if err != nil {
		return "", fmt.Errorf("dev issuer: sign: %w", err)
	}
	return string(signed), nil
}
