package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestServeConfigErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"ErrRole":            {args: []string{"--role", "both"}, want: "--role must be all, worker or http"},
		"ErrRoleNeedsShared": {args: []string{"--role", "worker"}, want: "needs --redis-url, --database-url and --s3-endpoint"},
		"ErrChunk":           {env: map[string]string{"LESSEE_CHUNK_SIZE": "-1"}, want: "--chunk-size"},
		"ErrOpenWithoutAuth": {args: []string{"--listen", "0.0.0.0:8080"}, want: "need --operator-user and --operator-password"},
		"ErrOpenS3":          {args: []string{"--s3-listen", "0.0.0.0:9000"}, want: "--s3-allow-remote"},
		"ErrTwoRedis":        {args: []string{"--redis-url", "redis://x", "--redis-cluster", "a:1,b:2"}, want: "not both"},
		"ErrOperatorHalf":    {args: []string{"--operator-user", "ops"}, want: "--operator-user and --operator-password go together"},
		"ErrSFTPNoUsers":     {args: []string{"--sftp-listen", "127.0.0.1:0"}, want: "--sftp-listen needs --sftp-users"},
		"ErrResumeTooSoon":   {args: []string{"--resume-after", "5s"}, want: "--resume-after must be at least 10s"},
		"ErrEnvValue":        {env: map[string]string{"LESSEE_SCAN_INTERVAL": "soon"}, want: "LESSEE_SCAN_INTERVAL"},
		"ErrRedisUnreachable": {
			args: []string{"--data", t.TempDir(), "--redis-url", "redis://127.0.0.1:1/0", "--start-timeout", "500ms", "--listen", "127.0.0.1:0", "--s3-listen", "127.0.0.1:0"},
			want: "redis at redis://127.0.0.1:1/0 is unreachable",
		},
		"ErrDatabaseUnreachable": {
			args: []string{"--data", t.TempDir(), "--database-url", "postgres://u:secret@127.0.0.1:1/x?connect_timeout=1", "--start-timeout", "500ms"},
			want: "database at postgres://u:xxxxx@127.0.0.1:1/x",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"serve"}, tc.args...), func(k string) string { return tc.env[k] }, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error reveals a password: %v", err)
			}
		})
	}
}

func TestHealthEndpoints(t *testing.T) {
	e := startService(t, serveConfig{})
	for path, want := range map[string]string{"/healthz": "database: ok\nredis: ok\ns3: ok\n", "/readyz": "database: ok", "/livez": "ok"} {
		resp, err := http.Get("http://" + e.svc.httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(b.String(), want) {
			t.Errorf("GET %s = %d %q, want 200 with %q", path, resp.StatusCode, b.String(), want)
		}
	}
	resp, err := http.Get("http://" + e.svc.httpAddr + "/monitoring/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /monitoring/ = %d %s, want the asynqmon page", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
