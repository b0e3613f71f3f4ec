package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/storage/s3store"
)

// Embedded S3 credentials of `lessee serve`.
const (
	accessKey = "lessee"
	secretKey = "lessee-secret"
	bucket    = "lessee"
)

// child is a running `lessee serve`.
type child struct {
	cmd        *exec.Cmd
	exit       chan error
	logPath    string
	s3         *s3store.Client
	s3Endpoint string // the embedded S3 endpoint's URL
	metricsURL string // its Prometheus metrics, when known
}

// startServe runs `lessee serve` with the embedded S3 endpoint on a fresh
// data directory and waits until it reports healthy. An empty databaseURL
// runs it on the embedded SQLite registry under data, without the demo
// registry.
func startServe(ctx context.Context, cfg Config, databaseURL, data string, maxBytes int64, maxRows int) (*child, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s3Listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c := &child{logPath: filepath.Join(data, "serve.log"), exit: make(chan error, 1)}
	logf, err := os.Create(c.logPath)
	if err != nil {
		return nil, fmt.Errorf("serve log: %w", err)
	}
	args := []string{"serve", "--data", data, "--listen", listen, "--s3-listen", s3Listen, "--api-listen", "127.0.0.1:0",
		"--database-url=" + databaseURL, "--redis-url", cfg.RedisURL, "--scan-interval", "250ms",
		"--log-format", "json", "--max-file-bytes", strconv.FormatInt(maxBytes, 10), "--max-rows", strconv.Itoa(maxRows)}
	if databaseURL == "" {
		args = append(args, "--demo=false")
	}
	if cfg.ChunkSize > 0 {
		args = append(args, "--chunk-size", strconv.Itoa(cfg.ChunkSize))
	}
	c.cmd = exec.Command(cfg.Bin, args...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// The child writes the log through its own descriptors: ours is only
	// closed, and a failure to close it loses nothing.
	if err := c.cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start lessee serve: %w", err)
	}
	go func() { c.exit <- c.cmd.Wait(); _ = logf.Close() }()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-c.exit:
			c.cmd = nil
			return nil, fmt.Errorf("lessee serve exited during start: %v; log %s", err, c.logPath)
		default:
		}
		resp, err := client.Get("http://" + listen + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("lessee serve not healthy within 60s; log %s", c.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.s3Endpoint = "http://" + s3Listen
	c.s3, err = s3store.NewClient(ctx, s3store.Config{Endpoint: c.s3Endpoint, AccessKey: accessKey, SecretKey: secretKey, Bucket: bucket})
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return c, nil
}

// stop ends the child with SIGINT, and SIGKILL after 30 s. How it exits
// is not looked at: it is stopped once its run has been measured, or after
// a failure already reported (exited reports an exit during the run).
func (c *child) stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	var err error
	select {
	case err = <-c.exit:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		err = <-c.exit
	}
	_ = err
	c.cmd = nil
}

// peakRSS reads the child's VmHWM, the most memory it has held resident.
func (c *child) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("peak rss: %w", err)
	}
	return statusKB(b, "VmHWM:")
}

// statusKB returns the value of a "Name:   123 kB" line in bytes.
func statusKB(status []byte, name string) (int64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s: %w", name, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s line", name)
}

// upload puts a local file at key.
func (c *child) upload(ctx context.Context, key, path string) error {
	return c.s3.PutFile(ctx, key, path, "application/octet-stream")
}

// jobState is the part of a job row the bench watches.
type jobState struct {
	State               string
	RowsTotal, RowsDone int
}

func finished(state string) bool {
	return state == string(lessee.JobCompleted) || state == string(lessee.JobRefused)
}

// endToEnd runs one file through a fresh `lessee serve` on a fresh
// registry (a PostgreSQL schema, or with cfg.SQLite the embedded SQLite
// file) and measures it; for CSV it also sends the small file midway. With
// floor it then measures the write floor of what the run wrote, once the
// service has stopped.
func endToEnd(ctx context.Context, cfg Config, f files, path string, format lessee.Format, floor bool, step func(string, ...any)) (*EndToEnd, *WriteFloor, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	b, c, closeAll, err := serve(ctx, cfg, f.dir, f.regDir, st.Size(), max(2*cfg.Rows, 2_000_000), step)
	if err != nil {
		return nil, nil, err
	}
	defer closeAll()

	name := filepath.Base(path)
	key := objectkey.InboxKey(f.submitter, name)
	r := &EndToEnd{Format: format, Size: st.Size()}
	if cfg.Keep {
		r.DatabaseURL = b.storeURL
	}
	step("uploading %s (%d bytes)", name, st.Size())
	start := time.Now()
	if err := c.upload(ctx, key, path); err != nil {
		return nil, nil, err
	}
	r.Upload = time.Since(start)

	var smallDone chan smallResult
	var passes passClock
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		j, ok, err := b.watch(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		passes.observe(j, ok, step)
		if ok && smallDone == nil && f.small != "" && format == lessee.FormatCSV && j.RowsDone > 0 && j.RowsDone >= j.RowsTotal/10 {
			smallDone = make(chan smallResult, 1)
			go func(at int) { smallDone <- sendSmall(ctx, c, b, f, at) }(j.RowsDone)
			step("small file sent at %d of %d rows", j.RowsDone, j.RowsTotal)
		}
		if ok && finished(j.State) {
			if j.State != string(lessee.JobCompleted) {
				return nil, nil, fmt.Errorf("%s was %s; log %s", key, j.State, c.logPath)
			}
			break
		}
		if err := c.exited(); err != nil {
			return nil, nil, fmt.Errorf("lessee serve exited: %v; log %s", err, c.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	end := time.Now()
	passes.fill(r, start, end)
	if smallDone != nil {
		s := <-smallDone
		if s.err != nil {
			return nil, nil, fmt.Errorf("small file: %w", s.err)
		}
		s.Small.Overlapped = s.finishedAt.Before(passes.second)
		r.Small = &s.Small
	}
	if r.PeakRSS, err = c.peakRSS(); err != nil {
		return nil, nil, err
	}
	step("checking the receipt against the intended outcomes")
	rows, counts, mismatches, first, err := checkReceipt(ctx, c, f.submitter, name, b.data)
	if err != nil {
		return nil, nil, err
	}
	r.Rows = rows
	r.Applied, r.Unchanged, r.Rejected = counts[0], counts[1], counts[2]
	r.Mismatches, r.FirstMismatch = mismatches, first
	if err := b.db.QueryRowContext(ctx, b.rebind(`SELECT id FROM jobs WHERE object_key = ?`), key).Scan(&r.JobID); err != nil {
		return nil, nil, fmt.Errorf("job of %s: %w", key, err)
	}
	c.stop()
	r.Worker = workerStages(c.logPath)
	if !floor {
		return r, nil, nil
	}
	wf, err := measureWriteFloor(ctx, cfg, b, f, r, step)
	if err != nil {
		return nil, nil, fmt.Errorf("write floor: %w", err)
	}
	return r, wf, nil
}

// exited reports the child's exit, if it has ended.
func (c *child) exited() error {
	select {
	case err := <-c.exit:
		c.cmd = nil
		if err == nil {
			err = errors.New("exit status 0")
		}
		return err
	default:
		return nil
	}
}

type smallResult struct {
	Small
	finishedAt time.Time
	err        error
}

// sendSmall uploads the small file and waits for its receipt.
func sendSmall(ctx context.Context, c *child, b *backend, f files, at int) smallResult {
	key := objectkey.InboxKey(f.smallFrom, "small.csv")
	if err := c.upload(ctx, key, f.small); err != nil {
		return smallResult{err: err}
	}
	start := time.Now()
	deadline := start.Add(5 * time.Minute)
	for {
		j, ok, err := b.watch(ctx, key)
		if err != nil {
			return smallResult{err: err}
		}
		if ok && finished(j.State) {
			res := smallResult{Small: Small{Rows: j.RowsTotal, AtRowsDone: at, ToReceipt: time.Since(start)}, finishedAt: time.Now()}
			var buf bytes.Buffer
			if _, err := c.s3.Download(ctx, objectkey.ReceiptCSV(f.smallFrom, "small.csv"), "", &buf); err != nil {
				return smallResult{err: err}
			}
			_, _, res.Mismatches, _, err = intents(&buf)
			res.err = err
			return res
		}
		if time.Now().After(deadline) {
			return smallResult{err: errors.New("no receipt within 5 minutes")}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkReceipt downloads the receipt of name and compares every row's
// outcome with the intent in its reference.
func checkReceipt(ctx context.Context, c *child, submitter, name, tmp string) (rows int, counts [3]int, mismatches int, first string, err error) {
	fh, err := os.CreateTemp(tmp, "receipt-*")
	if err != nil {
		return 0, counts, 0, "", err
	}
	defer os.Remove(fh.Name())
	defer func() { _ = fh.Close() }() // downloaded, read back, then removed
	if _, err := c.s3.Download(ctx, objectkey.ReceiptCSV(submitter, name), "", fh); err != nil {
		return 0, counts, 0, "", fmt.Errorf("download receipt: %w", err)
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return 0, counts, 0, "", err
	}
	rows, counts, mismatches, first, err = intents(fh)
	return rows, counts, mismatches, first, err
}

// intents reads a receipt CSV and counts its outcomes (applied, unchanged,
// rejected) and the rows whose outcome is not the one named in their
// reference ("R0000001-applied", "R0000003-LESSEE_CONFLICT").
func intents(r io.Reader) (rows int, counts [3]int, mismatches int, first string, err error) {
	br := bufio.NewReaderSize(r, 1<<20)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return 0, counts, 0, "", fmt.Errorf("receipt header: %w", err)
	}
	if len(header) < 8 || header[1] != "reference" || header[6] != "status" || header[7] != "code" {
		return 0, counts, 0, "", fmt.Errorf("receipt header %q", header)
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, counts, mismatches, first, nil
		}
		if err != nil {
			return rows, counts, mismatches, first, fmt.Errorf("receipt: %w", err)
		}
		rows++
		got := rec[6]
		switch got {
		case string(lessee.StatusApplied):
			counts[0]++
		case string(lessee.StatusUnchanged):
			counts[1]++
		default:
			counts[2]++
			got = rec[7]
		}
		if _, intent, _ := strings.Cut(rec[1], "-"); got != intent {
			if mismatches == 0 {
				first = strings.Join(rec, ",")
			}
			mismatches++
		}
	}
}

// workerStages reads the worker's stage timings from its JSON log: the
// "rows applied" line (read_ms, validate_ms, apply_ms) and the "file
// processed" line (receipt_ms), when the worker logs them.
func workerStages(logPath string) map[string]time.Duration {
	out := map[string]time.Duration{}
	fh, err := os.Open(logPath)
	if err != nil {
		return out
	}
	defer func() { _ = fh.Close() }() // only read
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if key, _ := line["key"].(string); strings.Contains(key, "/small.csv") {
			continue
		}
		for _, k := range []string{"read", "validate", "apply", "receipt"} {
			if ms, ok := line[k+"_ms"].(float64); ok {
				out[k] = time.Duration(ms * float64(time.Millisecond))
			}
		}
	}
	return out
}

func flushRedis(ctx context.Context, redisURL string) error {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rc := redis.NewClient(opt)
	defer func() { _ = rc.Close() }() // teardown: FLUSHDB has answered
	if err := rc.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("flush redis: %w", err)
	}
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Machine describes where the bench ran.
type Machine struct {
	CPU        string
	Cores      int
	Memory     int64 // bytes
	Go         string
	PostgreSQL string
}

func (m Machine) String() string {
	if m.PostgreSQL == "" {
		return fmt.Sprintf("%s, %d cores, %.1f GiB; %s", m.CPU, m.Cores, float64(m.Memory)/(1<<30), m.Go)
	}
	return fmt.Sprintf("%s, %d cores, %.1f GiB; %s; %s", m.CPU, m.Cores, float64(m.Memory)/(1<<30), m.PostgreSQL, m.Go)
}

// machine describes this machine, and the PostgreSQL server of databaseURL
// unless it is empty.
func machine(ctx context.Context, databaseURL string) (Machine, error) {
	m := Machine{CPU: "unknown CPU", Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.Memory, _ = statusKB(b, "MemTotal:")
	}
	if databaseURL == "" {
		return m, nil
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return m, fmt.Errorf("bench: connect: %w", err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return m, fmt.Errorf("bench: %w", err)
	}
	m.PostgreSQL = "PostgreSQL " + strings.Fields(v)[0]
	return m, nil
}
