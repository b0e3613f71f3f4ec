package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/fleetreg/lessee/intake"
)

// TestHookS3RespectsPerSubmitterCap is the fairness bound of the inbox scan
// (intake.Config.MaxPerSubmitter files of one submitter queued at once)
// applied to the webhook: events for a flood of uploads from one submitter
// must not queue more of its files than the scan would, or another
// submitter's file waits behind the whole flood. Gap G3 of
// docs/threat-model.md, fixed: the webhook goes through intake.Seen, which
// applies the scan's own rule.
func TestHookS3RespectsPerSubmitterCap(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{WebhookSecret: testSecret})
	const flood = 20
	type record struct {
		EventName string `json:"eventName"`
		S3        struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key string `json:"key"`
			} `json:"object"`
		} `json:"s3"`
	}
	var ev struct {
		Records []record `json:"Records"`
	}
	for i := range flood {
		key := fmt.Sprintf("inbox/912345602/flood-%02d.csv", i)
		b.upload(t, key, "x")
		var r record
		r.EventName = "s3:ObjectCreated:Put"
		r.S3.Bucket.Name = testBucket
		r.S3.Object.Key = key
		ev.Records = append(ev.Records, r)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if rec := b.post(t, "/hooks/s3", bearer, body); rec.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if got, limit := len(b.tasks(t)), intake.DefaultMaxPerSubmitter; got > limit {
		t.Errorf("%d of one submitter's files queued by events; the scan's cap is %d", got, limit)
	}
}
