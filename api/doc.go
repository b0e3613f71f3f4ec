// Package api is the single-change API: the registry authority's "API for
// leasing companies" on the same engine as the bulk path. POST
// /api/v1/changes decodes one change (the change file's column names, or
// the authority's own shape), checks it with the same parser and rules as
// a file's row, and applies it through the store's one-change transaction
// (the same state loading and row locks as a file's chunk, the audit log
// with source api, the fleet's export mark), keeping its answer under an
// Idempotency-Key. GET /api/v1/vehicles/{id} shows a vehicle to its owner
// and delegates only; anyone else gets the 404 of a vehicle that does not
// exist. Tokens are checked by an Authenticator (see package apiauth);
// each organisation has its own request rate.
package api
