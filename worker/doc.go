// Package worker turns uploaded objects into processed files: it finds
// uploads (the inbox scan), enqueues one Asynq task per object version and
// handles those tasks.
//
// # Pipeline
//
// A task names a bucket, key and version. The handler:
//
//  1. parses the key: only inbox/<orgnr>/<name> is accepted. A key with no
//     valid submitter is moved to quarantine/; a key with a valid submitter
//     but a bad name is refused with INVALID_KEY;
//  2. begins (or resumes) the job, whose id is derived from bucket, key and
//     version, so the same upload seen by the scan, an event and a retry is
//     one job;
//  3. spools the object to a temporary file while hashing it, and runs the
//     ingest first pass, which refuses files that cannot be read as a table
//     before any row is applied;
//  4. reads the rows again in chunks; each chunk is validated and applied in
//     one SQL transaction that also stores its per-row results and advances
//     the job's checkpoint;
//  5. writes the receipt from the stored results, then the summary, each as
//     one object write, marks the job finished and moves the source to
//     archive/ (or failed/ when the file was refused). An XLSX upload also
//     gets an XLSX receipt that repeats its rows, read again from the
//     spooled file in step with the results.
//
// # Retries
//
// Every step is safe to repeat. A retried task resumes after the last
// committed chunk; a chunk committed by an earlier attempt is never applied
// again because the checkpoint has moved. A refused file is handled, not
// failed: its task ends without error. A malformed payload ends with
// asynq.SkipRetry. Transient faults (Redis, SQL, S3) are returned so Asynq
// retries them with backoff (RetryDelay); a fault a retry cannot fix, or the
// last retry, ends in giveUp: the file moves to failed/ with a
// PROCESSING_FAILED receipt that lists the rows processed so far, and a
// re-upload reports those rows unchanged. Errors handed to Asynq are masked.
package worker
