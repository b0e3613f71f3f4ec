// Package web is the HTTP face of the service beside asynqmon: the S3 event
// webhook, the operator's job list and job pages (HTML and JSON) and
// Prometheus metrics.
//
// # Routes
//
//	POST /hooks/s3        S3 event notifications (MinIO webhook target, or
//	                      AWS S3 -> SNS HTTP(S) subscription); 204 when done
//	GET  /api/jobs        recent jobs as JSON, newest first (?limit=, 1..1000)
//	GET  /api/jobs/{id}   one job as JSON
//	GET  /api/jobs/{id}/receipt        the job's receipt CSV
//	GET  /api/jobs/{id}/receipt.xlsx   its XLSX receipt (XLSX uploads)
//	GET  /api/jobs/{id}/summary        its summary JSON
//	GET  /jobs            the job list as HTML: filters (?submitter=,
//	                      ?state=, ?code=) and keyset paging (?before=<id>)
//	GET  /jobs/{id}       one job's page: progress, counts, timings,
//	                      receipts and its rejected rows (?code=,
//	                      ?after=<row index>, keyset paging)
//	GET  /metrics         Prometheus metrics (when a handler is given)
//
// The pages are html/template, server-rendered, with no script: a page
// showing a job that is not finished reloads itself with a meta refresh.
// Every value that may carry a personal identity number (file names, keys,
// messages, echoed cells) is masked before it reaches a page or the API.
//
// /jobs and /api/ sit behind HTTP Basic auth when an operator user and
// password are configured; RequireOperator wraps other handlers (asynqmon)
// the same way.
//
// # Events
//
// An event only says that something happened; the webhook never trusts it
// for what to process. It takes the bucket and URL-decoded key from each
// ObjectCreated record, ignores other buckets and keys outside inbox/, asks
// the store for the object (HEAD) and enqueues the very task the inbox scan
// would enqueue for that object, so an event plus a scan, or an event
// delivered twice, is one job. A key that no longer exists was already
// processed and moved, and is skipped.
//
// The shared secret arrives as "Authorization: Bearer <secret>" (MinIO's
// auth_token) or as the password of HTTP Basic auth (SNS, which takes the
// credentials from the subscription URL https://user:secret@host/hooks/s3).
// With no secret configured the webhook answers 404.
package web
