package worker

import (
	"strings"
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	prev := time.Duration(0)
	for n := 0; n < 20; n++ {
		d := RetryDelay(n, nil, nil)
		base := min(time.Second<<min(n, 9), 5*time.Minute)
		if d < base || d > base+base/2 {
			t.Errorf("RetryDelay(%d) = %s, want within [%s, %s]", n, d, base, base+base/2)
		}
		if base < prev {
			t.Errorf("backoff shrank at attempt %d", n)
		}
		prev = base
	}
	if d := RetryDelay(0, nil, nil); d > 1500*time.Millisecond {
		t.Errorf("first retry after %s; a short outage should be retried within seconds", d)
	}
}

func TestJobIDStable(t *testing.T) {
	a := JobID("lessee", "inbox/912345602/a.csv", "etag@1")
	if a != JobID("lessee", "inbox/912345602/a.csv", "etag@1") || len(a) != 24 {
		t.Fatalf("JobID not stable: %s", a)
	}
	if strings.Trim(a, "abcdefghijklmnopqrstuvwxyz") != "" {
		t.Fatalf("JobID %s has characters other than letters; logs would mask a digit run", a)
	}
	for _, other := range []string{
		JobID("lessee", "inbox/912345602/a.csv", "etag@2"),
		JobID("lessee", "inbox/912345602/b.csv", "etag@1"),
		JobID("other", "inbox/912345602/a.csv", "etag@1"),
		JobID("lessee", "inbox/912345602/a.csv\x00", "etag@1"),
	} {
		if other == a {
			t.Errorf("different uploads share job id %s", a)
		}
	}
	if v := ObjectVersion("", "abc", time.Unix(100, 900_000_000)); v != "abc@100" {
		t.Errorf("ObjectVersion = %s; sub-second precision must be dropped (List and Head differ)", v)
	}
	if v := ObjectVersion("v1", "abc", time.Unix(100, 0)); v != "v1" {
		t.Errorf("ObjectVersion with a version id = %s", v)
	}
	if v := ObjectVersion("null", "abc", time.Unix(100, 0)); v != "abc@100" {
		t.Errorf(`ObjectVersion("null") = %s; S3 reports "null" for unversioned objects`, v)
	}
}
