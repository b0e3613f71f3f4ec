package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/intake"
)

// maxEventBytes bounds a webhook body. One MinIO event is about 1.5 KB and
// AWS batches few records, so 1 MiB is generous.
const maxEventBytes = 1 << 20

// s3Event is an S3 event notification as MinIO and AWS send it, or the SNS
// envelope that carries one (Type, Message).
type s3Event struct {
	Records []s3Record `json:"Records"`

	// SNS HTTP(S) subscription envelope.
	Type         string `json:"Type"`
	Message      string `json:"Message"`
	TopicArn     string `json:"TopicArn"`
	SubscribeURL string `json:"SubscribeURL"`
}

// s3Record is one record of an event; only what the webhook uses.
type s3Record struct {
	EventName string `json:"eventName"`
	S3        struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key       string `json:"key"` // URL-encoded, '+' for space
			Size      int64  `json:"size"`
			ETag      string `json:"eTag"`
			VersionID string `json:"versionId"`
			Sequencer string `json:"sequencer"`
		} `json:"object"`
	} `json:"s3"`
}

// objectCreated reports whether an event name is an ObjectCreated event:
// "s3:ObjectCreated:Put" from MinIO, "ObjectCreated:Put" from AWS.
func objectCreated(name string) bool {
	return strings.HasPrefix(name, "s3:ObjectCreated:") || strings.HasPrefix(name, "ObjectCreated:")
}

// decodeKey decodes an event's object key. Both MinIO and AWS encode keys
// like a query value: '+' is a space, so a literal '+' arrives as %2B.
func decodeKey(raw string) (string, error) {
	key, err := url.QueryUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("decode key: %w", err)
	}
	return key, nil
}

// hookS3Probe answers MinIO's reachability check.
func (s *Server) hookS3Probe(w http.ResponseWriter, r *http.Request) {
	if s.cfg.WebhookSecret == "" {
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// hookS3 handles one S3 event delivery. It answers 204 for every
// authenticated, well-formed delivery: each record is queued, left to the
// scan (its submitter has files queued), ignored (not an upload) or, when
// the store or the queue fails for it, dropped with a log line and a count
// in WebhookFaults. It never asks for the event again: MinIO delivers a
// target's events in order and retries the first until it succeeds, so one
// record the service cannot handle (a key the store fails on, an outage)
// would hold back every company's events behind it. Nothing is lost by
// dropping: the inbox scan finds every upload within --scan-interval once
// the fault is over.
func (s *Server) hookS3(w http.ResponseWriter, r *http.Request) {
	if s.cfg.WebhookSecret == "" {
		http.NotFound(w, r)
		return
	}
	if !s.webhookAuthorized(r) {
		// Operators need to see a misconfigured sender: nothing else says
		// why its events never arrive.
		s.log.Warn("s3 webhook: delivery refused: bad or missing secret", "remote", r.RemoteAddr,
			"user_agent", r.UserAgent())
		// Both schemes: SNS sends URL credentials as Basic auth.
		w.Header().Add("WWW-Authenticate", `Bearer realm="lessee webhook"`)
		w.Header().Add("WWW-Authenticate", `Basic realm="lessee webhook"`)
		http.Error(w, "bad or missing webhook secret", http.StatusUnauthorized)
		return
	}
	var ev s3Event
	if status, err := decodeJSON(w, r, &ev); err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	switch ev.Type {
	case "SubscriptionConfirmation":
		// Confirming means fetching a URL from the request body; an operator
		// does that once, by hand, rather than this service calling out.
		s.log.Warn("s3 webhook: SNS subscription awaits confirmation; open SubscribeURL once to confirm",
			"topic", ev.TopicArn, "subscribe_url", ev.SubscribeURL)
		w.WriteHeader(http.StatusNoContent)
		return
	case "Notification":
		var inner s3Event
		if err := json.Unmarshal([]byte(ev.Message), &inner); err != nil {
			http.Error(w, "SNS message is not an S3 event", http.StatusBadRequest)
			return
		}
		ev.Records = inner.Records
	case "":
	default: // UnsubscribeConfirmation and whatever SNS adds later
		w.WriteHeader(http.StatusNoContent)
		return
	}

	for i := range ev.Records {
		if err := s.handleRecord(r.Context(), &ev.Records[i]); err != nil {
			s.log.Warn("s3 webhook: record dropped; the inbox scan will queue the upload",
				"err", ident.MaskText(err.Error()))
			if s.cfg.WebhookFaults != nil {
				s.cfg.WebhookFaults.Inc()
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// webhookAuthorized checks the shared secret: a Bearer token, or the
// password of Basic auth (SNS puts URL credentials there).
func (s *Server) webhookAuthorized(r *http.Request) bool {
	got := ""
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "Bearer ") {
		got = strings.TrimSpace(auth[7:])
	} else if _, pass, ok := r.BasicAuth(); ok {
		got = pass
	}
	return got != "" && secretEqual(got, s.cfg.WebhookSecret)
}

// recordTimeout bounds the store and queue calls of one record, so that a
// slow store answers the sender within its own timeout.
const recordTimeout = 5 * time.Second

// handleRecord queues the upload one record names, if it is one of ours.
func (s *Server) handleRecord(ctx context.Context, rec *s3Record) error {
	if !objectCreated(rec.EventName) || rec.S3.Bucket.Name != s.cfg.Bucket {
		return nil
	}
	key, err := decodeKey(rec.S3.Object.Key)
	if err != nil {
		// No real key decodes badly; retrying would not help.
		s.log.Warn("s3 webhook: record ignored", "err", ident.MaskText(err.Error()))
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	seen, err := s.intake.Seen(ctx, key)
	switch {
	case err != nil:
		return fmt.Errorf("upload %s: %w", key, err)
	case !seen.Found:
		// Receipts, archive, folder markers, or processed and moved already.
		s.log.Debug("s3 webhook: not an upload in the inbox", "key", ident.MaskText(key))
	case seen.Deferred:
		// The scan queues it once older files of the submitter are done.
		s.log.Debug("s3 webhook: submitter has files queued; left to the scan", "key", ident.MaskText(key))
	default:
		s.log.Info("s3 webhook: upload seen", "job_id", intake.JobID(seen.Upload.Bucket, seen.Upload.Key, seen.Upload.Version),
			"key", ident.MaskText(key), "enqueued", seen.Enqueued)
	}
	return nil
}

// decodeJSON reads a size-limited JSON body into v. It returns the HTTP
// status to answer with on error.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxEventBytes))
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, errors.New("event too large")
		}
		return http.StatusBadRequest, errors.New("malformed event JSON")
	}
	return 0, nil
}
