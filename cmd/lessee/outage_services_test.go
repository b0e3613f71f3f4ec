package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fleetreg/lessee/storage/s3store"
)

// This file holds the services the outage test owns and breaks: a private
// PostgreSQL cluster, private redis-server processes and an S3 endpoint on
// a listener that can be closed and reopened on the same port. Restarting
// the machine's shared PostgreSQL or Redis would break the tests of other
// packages running at the same time.

// outageTools finds the PostgreSQL and Redis binaries, or says why the
// outage test cannot run here.
type outageTools struct {
	pgBin   string   // folder with initdb, pg_ctl and postgres
	redis   string   // redis-server
	asOwner []string // command prefix that runs PostgreSQL as a non-root user
}

func findOutageTools() (outageTools, string) {
	var tl outageTools
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		if p, err := exec.LookPath("pg_ctl"); err == nil {
			bins = []string{p}
		}
	}
	if len(bins) == 0 {
		return tl, "pg_ctl not found (in /usr/lib/postgresql/*/bin or PATH)"
	}
	// The newest major version sorts last as long as it has two digits.
	slices.Sort(bins)
	tl.pgBin = filepath.Dir(bins[len(bins)-1])
	if _, err := os.Stat(filepath.Join(tl.pgBin, "initdb")); err != nil {
		return tl, "initdb not found beside " + bins[len(bins)-1]
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return tl, "redis-server not found in PATH"
	}
	tl.redis = p
	// PostgreSQL refuses to run as root.
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return tl, "running as root and there is no postgres user to run PostgreSQL as"
		}
		rp, err := exec.LookPath("runuser")
		if err != nil {
			return tl, "running as root and runuser is not found"
		}
		tl.asOwner = []string{rp, "-u", "postgres", "--"}
	}
	return tl, ""
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// privatePostgres is a PostgreSQL cluster in a temporary folder, listening
// on a free loopback port with trust authentication.
type privatePostgres struct {
	t     *testing.T
	tools outageTools
	dir   string
	data  string
	port  int
}

// startPostgres creates and starts a private cluster, stopped and removed
// at cleanup.
func startPostgres(t *testing.T, tools outageTools) *privatePostgres {
	t.Helper()
	// Not t.TempDir: its parent is private to root, and the server runs
	// as the postgres user.
	dir, err := os.MkdirTemp("", "lessee-outage-pg-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if len(tools.asOwner) > 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatalf("chown %s: %v", dir, err)
		}
	}
	pg := &privatePostgres{t: t, tools: tools, dir: dir, data: filepath.Join(dir, "data"), port: freePort(t)}
	start := time.Now()
	pg.run("initdb", "-D", pg.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
	// fsync off: the test kills the server, not the machine, so the page
	// cache keeps everything a committed transaction wrote.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=100", pg.port, dir)
	pg.run("pg_ctl", "-D", pg.data, "-l", filepath.Join(dir, "server.log"), "-o", opts, "-w", "-t", "30", "start")
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "server.log")); err == nil {
				t.Logf("private PostgreSQL log (tail):\n%s", tail(b, 4000))
			}
		}
		_ = pg.command("pg_ctl", "-D", pg.data, "-m", "immediate", "-w", "stop").Run()
	})
	t.Logf("private PostgreSQL on port %d ready in %s", pg.port, time.Since(start).Round(time.Millisecond))
	return pg
}

func (pg *privatePostgres) command(tool string, args ...string) *exec.Cmd {
	argv := append(slices.Clone(pg.tools.asOwner), filepath.Join(pg.tools.pgBin, tool))
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = pg.dir
	return cmd
}

func (pg *privatePostgres) run(tool string, args ...string) {
	pg.t.Helper()
	out, err := pg.command(tool, args...).CombinedOutput()
	if err != nil {
		pg.t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
}

// url returns the URL of database db.
func (pg *privatePostgres) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, db)
}

// createDB creates an empty database.
func (pg *privatePostgres) createDB(name string) string {
	pg.t.Helper()
	pg.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "postgres", name)
	return pg.url(name)
}

// crash stops the server the way a crash would: every backend is killed
// and the next start replays the WAL.
func (pg *privatePostgres) crash() {
	pg.t.Helper()
	pg.run("pg_ctl", "-D", pg.data, "-m", "immediate", "-w", "stop")
}

// start starts the server again with the options it last ran with.
func (pg *privatePostgres) start() {
	pg.t.Helper()
	// pg_ctl restart keeps the options in postmaster.opts; start reads
	// them only through restart, so give them again.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=100", pg.port, pg.dir)
	pg.run("pg_ctl", "-D", pg.data, "-l", filepath.Join(pg.dir, "server.log"), "-o", opts, "-w", "-t", "30", "start")
}

// privateRedis is a redis-server child process on a free port. Without
// append-only persistence a restart loses every key, as a Redis without
// persistence (or a failover to an empty replica) does.
type privateRedis struct {
	t          *testing.T
	bin        string
	dir        string
	port       int
	appendOnly bool
	logs       *lockedBuffer

	cmd  *exec.Cmd
	exit chan error
}

// startRedis starts a private redis-server, killed at cleanup.
func startRedis(t *testing.T, tools outageTools, appendOnly bool) *privateRedis {
	t.Helper()
	r := &privateRedis{t: t, bin: tools.redis, dir: t.TempDir(), port: freePort(t), appendOnly: appendOnly, logs: &lockedBuffer{}}
	r.start()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("private Redis log (tail):\n%s", tail([]byte(r.logs.String()), 3000))
		}
	})
	return r
}

func (r *privateRedis) url(db int) string {
	return fmt.Sprintf("redis://127.0.0.1:%d/%d", r.port, db)
}

// start runs redis-server and waits until it answers PING.
func (r *privateRedis) start() {
	r.t.Helper()
	aof := "no"
	if r.appendOnly {
		aof = "yes"
	}
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", aof, "--appendfsync", "always", "--dir", r.dir, "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }()
	r.cmd, r.exit = cmd, exit
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port), MaxRetries: -1})
	defer rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exit:
			r.cmd = nil
			r.t.Fatalf("redis-server exited during start: %v\n%s", err, r.logs.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rc.Ping(ctx).Err()
		cancel()
		// A server loading its append-only file answers LOADING.
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server not answering within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends redis-server with SIGKILL.
func (r *privateRedis) kill() {
	if r.cmd == nil {
		return
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.t.Errorf("kill redis-server: %v", err)
	}
	<-r.exit
	r.cmd = nil
}

// s3Endpoint serves an s3store.Server on a fixed loopback address and can
// be stopped, refusing connections, and started again on the same port.
type s3Endpoint struct {
	t    *testing.T
	addr string
	h    http.Handler

	mu  sync.Mutex
	srv *http.Server
}

// startS3Endpoint serves an embedded S3 store in dir, stopped at cleanup.
func startS3Endpoint(t *testing.T, dir, bucket string) *s3Endpoint {
	t.Helper()
	srv, err := s3store.NewServer(s3store.ServerConfig{Dir: dir, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	e := &s3Endpoint{t: t, addr: freeAddr(t), h: srv.Handler()}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *s3Endpoint) url() string { return "http://" + e.addr }

// start listens again on the endpoint's address.
func (e *s3Endpoint) start() {
	e.t.Helper()
	var ln net.Listener
	var err error
	// The port was just ours; retry briefly should the kernel hold it.
	for range 50 {
		if ln, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatalf("listen on %s again: %v", e.addr, err)
	}
	srv := &http.Server{Handler: e.h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
}

// stop closes the listener and every open connection: requests in flight
// fail and new connections are refused.
func (e *s3Endpoint) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		_ = e.srv.Close()
		e.srv = nil
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
