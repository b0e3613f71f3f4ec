// Package s3store is the S3 adapter: a Client (AWS SDK v2) bound to one
// bucket, used by the worker and scanner, and Server, the embedded
// S3-compatible endpoint that `lessee serve` runs when no --s3-endpoint is
// given.
//
// # Client
//
// Errors are classified once here: ErrNotFound (NoSuchKey on GET and copy,
// NotFound on HEAD) and ErrPreconditionFailed (If-Match mismatch), both
// wrapping the SDK error so callers can still inspect it. Put is atomic: an
// object is complete or absent, also for multipart uploads. Object.LastModified
// has millisecond precision from List and second precision from Head and
// Download; compare it truncated to the second.
//
// # Server
//
// Server wraps gofakes3 with the s3afero backend over a folder:
//
//	<Dir>/buckets/<bucket>/<key>   objects, as plain files
//	<Dir>/metadata/                gofakes3's per-object MD5 and metadata
//	<Dir>/uploads/<id>/            unfinished multipart uploads, one file per part
//	<Dir>/tmp/                     bodies being received; emptied at start
//
// On top of gofakes3 it adds what real clients need:
//   - decodeAWSChunked turns aws-chunked bodies (STREAMING-* payloads, with or
//     without trailing checksums, as AWS CLI v2 >= 2.23 and recent SDKs send
//     them) into plain bodies, checking the decoded length and the trailing
//     checksum (CRC32, CRC32C, CRC64NVME, SHA1, SHA256);
//   - bodies are spooled to tmp/ and renamed into place, so a failed, short
//     or corrupt upload stores nothing and a crash leaves no partial object;
//   - multipart parts are kept on disk, not in memory;
//   - If-Match on GET and HEAD (gofakes3 ignores it).
//
// The server does not authenticate requests: it is meant for loopback. ETags
// are the MD5 of the content, also for objects assembled from a multipart
// upload (the CompleteMultipartUpload response itself carries the usual
// "<md5>-<parts>" form), so List, Head and Download agree.
package s3store
