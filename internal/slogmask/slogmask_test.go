package slogmask

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"testing"
)

func TestHandlerMasksIdentityNumbers(t *testing.T) {
	t.Parallel()
	const fnr = "01019012345"
	var buf bytes.Buffer
	log := slog.New(New(slog.NewJSONHandler(&buf, nil))).With("pre", "lessee "+fnr)
	log.Info("row for "+fnr,
		"lessee", fnr,
		"err", fmt.Errorf("wrapped: %w", errors.New("bad id "+fnr)),
		"list", []string{fnr},
		slog.Group("g", "id", fnr),
		"orgnr", "923609016",
	)
	out := buf.String()
	if regexp.MustCompile(`\d{11}`).MatchString(out) {
		t.Fatalf("log output holds an unmasked 11-digit number: %s", out)
	}
	if !bytes.Contains(buf.Bytes(), []byte("923609016")) {
		t.Errorf("organisation numbers must stay readable: %s", out)
	}
	if !bytes.Contains(buf.Bytes(), []byte("*********45")) {
		t.Errorf("masked value missing: %s", out)
	}
}
