package worker

import (
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
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
