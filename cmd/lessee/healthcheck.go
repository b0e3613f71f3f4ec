package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runHealthcheck asks a running service for /healthz; container health
// checks use it because the image has no shell or curl.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("healthcheck", "lessee healthcheck [--listen ADDR]", `Asks the service on --listen for /healthz and prints its answer; exits 0 when
it reports the database, Redis and S3 healthy, 1 otherwise (container health
checks use it: the image has no shell or curl).

Examples:
  lessee healthcheck
  LESSEE_LISTEN=127.0.0.1:8090 lessee healthcheck`, stdout)
	listen := cmd.fs.String("listen", defaultServeConfig().Listen, "HTTP address of the service (as given to serve)")
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	if _, err := cmd.args(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+*listen+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: cannot reach the service at http://%s: %w", *listen, netCause(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprint(stdout, string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s", resp.Status)
	}
	return nil
}
