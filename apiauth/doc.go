// Package apiauth authenticates callers of the single-change API: it
// validates the OAuth2 bearer tokens Maskinporten issues (JWTs) and, for
// development, is an issuer of such tokens itself.
//
// # Validation
//
// A Validator accepts an Authorization header of the form "Bearer <jwt>"
// and returns the Principal the token names, or an error that is
// ErrUnauthenticated (answer 401: missing, malformed, forged, expired, for
// another issuer or audience, no valid consumer), ErrForbidden (answer 403:
// a valid token without the configured scope) or ErrUnavailable (answer
// 503: the signing keys could not be fetched). Every error is an *Error
// whose text is a short reason that is safe to show to the client; it
// never repeats the token.
//
// The token must be a compact JWS with a "kid" header naming a key of the
// key set. The key's own "alg" decides the algorithm: the token's header
// must state the same one, and only asymmetric algorithms are accepted
// (RS*, PS*, ES*, EdDSA), never "none" and never HMAC, even when the key
// set holds a symmetric key. A key without "alg", or with "use" other than
// "sig", is not used. Claims: "exp" is required; "exp", "nbf" and "iat" are
// checked with Config.Leeway; "iss" must equal Config.Issuer; "aud" (a
// string or an array) must contain Config.Audience; the space-separated
// "scope" must contain Config.Scope. The submitter is Maskinporten's
// "consumer" claim, {"authority": "iso6523-actorid-upis", "ID":
// "0192:<orgnr>"}, with a valid 9-digit organisation number.
//
// # Keys
//
// With Config.JWKSURL the key set is fetched (https, or http on loopback)
// and cached with jwk.Cache, which refreshes it in the background. A token
// whose "kid" is not in the cached set makes the set be fetched again at
// once, so a rotated key is picked up at its first use, but at most once
// per Config.MissRefresh, so tokens with made-up key ids cannot make the
// service hammer the issuer. Without a URL the Validator uses a fixed key
// set, normally the DevIssuer's public keys.
//
// # Development issuer
//
// DevIssuer keeps an ES256 (P-256) signing key in a data directory
// (DevKeyFile, mode 0600, created on first use) and issues tokens shaped
// as Maskinporten's, for `lessee token` and tests. Its public key set is
// what the service publishes at /.well-known/jwks.json.
package apiauth
