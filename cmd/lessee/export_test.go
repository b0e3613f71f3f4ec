package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestExportCommand runs `lessee export` against an embedded service's
// database and S3 endpoint.
func TestExportCommand(t *testing.T) {
	e := startService(t, serveConfig{})
	env := map[string]string{
		"LESSEE_S3_ENDPOINT": e.svc.s3Endpoint,
		"LESSEE_DATA":        e.svc.cfg.Data,
	}
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()
	export := func(args ...string) (stdout, stderr string, err error) {
		var out, errOut bytes.Buffer
		err = run(ctx, append([]string{"export"}, args...), getenv, &out, &errOut)
		return out.String(), errOut.String(), err
	}

	t.Run("OKAs", func(t *testing.T) {
		out, errOut, err := export("--as", "912345602")
		if err != nil {
			t.Fatalf("export: %v\n%s", err, errOut)
		}
		if out != "912345602\t11\texports/912345602/fleet.csv\n" {
			t.Errorf("output %q", out)
		}
		var buf bytes.Buffer
		if _, err := e.objects.Download(ctx, "exports/912345602/fleet.csv", "", &buf); err != nil {
			t.Fatal(err)
		}
		got := buf.String()
		if !strings.HasPrefix(got, "registration_number,vin,lessee_id,lessee_name,start_date,end_date\nEL10001,WVWZZZ1KZAW000001,,,,\n") ||
			strings.Count(got, "\n") != 12 {
			t.Errorf("export:\n%s", got)
		}
	})

	t.Run("OKAll", func(t *testing.T) {
		out, errOut, err := export("--all")
		if err != nil {
			t.Fatalf("export --all: %v\n%s", err, errOut)
		}
		want := "912345602\t11\texports/912345602/fleet.csv\n" +
			"912345610\t1\texports/912345610/fleet.csv\n" +
			"912345637\t1\texports/912345637/fleet.csv\n" +
			"912345653\t0\texports/912345653/fleet.csv\n"
		if out != want {
			t.Errorf("output:\n%s\nwant:\n%s", out, want)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"ErrBadOrgnr", []string{"--as", "912345603"}, `--as "912345603"`},
		{"ErrNotFleetOwner", []string{"--as", "912345645"}, "912345645 is not a fleet owner"},
		{"ErrUnknown", []string{"--as", "910000039"}, "no such enterprise"},
		{"ErrBoth", []string{"--as", "912345602", "--all"}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := export(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("export %q: err = %v, want one saying %q", tc.args, err, tc.want)
			}
		})
	}
	t.Run("ErrNeither", func(t *testing.T) {
		var ue *usageError
		if _, _, err := export(); !errors.As(err, &ue) || !strings.Contains(err.Error(), "missing --as ORGNR or --all") {
			t.Errorf("export without --as or --all: err = %v, want a usage error saying so", err)
		}
	})
}
