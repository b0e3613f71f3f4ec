package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/fleetreg/lessee/examples"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/internal/slogmask"
	"github.com/fleetreg/lessee/receipt"
	"github.com/fleetreg/lessee/sftpd"
	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/validate"
	"github.com/fleetreg/lessee/web"
	"github.com/fleetreg/lessee/worker"
)

// shutdownTimeout is how long a stop waits for running files before it
// cuts them off (they resume from their last committed chunk).
const shutdownTimeout = 25 * time.Second

const serveHelp = `Runs the service: the workers, the inbox scan, the S3 endpoint (embedded unless
--s3-endpoint names one), the job pages and the single-change API. With no
flags everything runs in-process, with its state under --data, and the demo
registry is loaded into an empty registry. It prints where everything listens
and an upload command that works as printed.

Ctrl-C (or SIGTERM) stops it: running files get up to %s to finish, and a
second Ctrl-C stops at once; a file cut off resumes from its last committed
chunk at the next start.

Examples:
  lessee serve
  lessee serve --data /srv/lessee --listen 127.0.0.1:8090 --s3-listen 127.0.0.1:9100
  lessee serve --role worker --database-url postgres://lessee@db/lessee \
      --redis-url redis://redis:6379/0 --s3-endpoint http://minio:9000`

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("serve", "lessee serve [flags]", fmt.Sprintf(serveHelp, shutdownTimeout), stdout)
	var cfg serveConfig
	cfg.flags(cmd.fs)
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	if _, err := cmd.args(); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return cmd.usageErr("%s", err)
	}
	log, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return cmd.usageErr("%s", err)
	}
	intr := interruptOf(ctx)
	svc := &service{cfg: cfg, log: log, stopNow: intr.stopNow(), stopMessages: stderr}
	if err := svc.start(ctx); err != nil {
		svc.close()
		return err
	}
	svc.banner(ctx).print(stdout)
	err = svc.wait()
	svc.close()
	if err != nil {
		return err
	}
	return svc.stopped()
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
	}
	return slog.New(slogmask.New(h)), nil
}

// service is a running `lessee serve`: every component it started, so that
// tests can run it in-process and close it.
type service struct {
	cfg serveConfig
	log *slog.Logger
	// s3Now, if set, is the embedded S3 endpoint's clock (LastModified);
	// tests move it on instead of sleeping.
	s3Now func() time.Time
	// stopNow, closed at a second interrupt, makes a stop cut running
	// files off at once and close HTTP connections without waiting.
	stopNow <-chan struct{}
	// stopMessages, if set, is told in plain words what a stop waits for
	// and how it ended (the log has the same as structured lines).
	stopMessages io.Writer

	mu  sync.Mutex
	cut []worker.Running // files the stop cut off

	httpAddr   string // bound HTTP address
	apiAddr    string // bound API address, if the API is on
	sftpAddr   string // bound SFTP address, if SFTP is on
	s3Endpoint string // URL of the S3 endpoint in use
	redisOpt   asynq.RedisConnOpt
	redis      redis.UniversalClient // health checks and scan repairs
	store      *sqlstore.Store
	objects    *s3store.Client

	group   *errgroup.Group
	cancel  context.CancelFunc
	closers []func() error // run in reverse order by close
}

func (s *service) start(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	s.cancel = cancel
	s.group, ctx = errgroup.WithContext(ctx)
	cfg := s.cfg

	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	tmp := filepath.Join(cfg.Data, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return fmt.Errorf("create temp directory: %w", err)
	}
	// Spool files of a process that was killed; --data is this process's own.
	if err := worker.RemoveSpoolFiles(tmp); err != nil {
		s.log.Warn("could not remove old spool files", "dir", tmp, "err", err)
	}

	// SQL.
	dbURL, embeddedDB := cfg.DatabaseURL, cfg.DatabaseURL == ""
	if embeddedDB {
		dbURL = "sqlite:" + filepath.Join(cfg.Data, "registry.db")
	}
	var store *sqlstore.Store
	err := s.retry(ctx, "database", displayEndpoint(dbURL), func(ctx context.Context) error {
		var err error
		store, err = sqlstore.Open(ctx, dbURL)
		return err
	})
	if err != nil {
		return err
	}
	store.SetPool(cfg.DBMaxConns, cfg.DBMaxIdleConns, 30*time.Minute)
	s.store = store
	s.closers = append(s.closers, store.Close)
	if cfg.Migrate {
		if err := store.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate database: %w", err)
		}
	}
	if embeddedDB && cfg.Demo {
		if err := loadDemo(ctx, store, cfg.TestRegistry, s.log); err != nil {
			return err
		}
	}

	// Redis.
	switch {
	case cfg.RedisCluster != "":
		opt := asynq.RedisClusterClientOpt{Addrs: strings.Split(cfg.RedisCluster, ",")}
		s.redisOpt = opt
		if err := s.retry(ctx, "redis cluster", cfg.RedisCluster, func(ctx context.Context) error { return pingRedis(ctx, opt) }); err != nil {
			return err
		}
	case cfg.RedisURL == "":
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("start embedded redis: %w", err)
		}
		s.closers = append(s.closers, func() error { mr.Close(); return nil })
		s.redisOpt = asynq.RedisClientOpt{Addr: mr.Addr()}
		s.log.Info("embedded redis started; it keeps nothing across restarts, the inbox scan resumes unfinished files", "addr", mr.Addr())
	default:
		opt, err := asynq.ParseRedisURI(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("--redis-url: %w", err)
		}
		s.redisOpt = opt
		if err := s.retry(ctx, "redis", displayEndpoint(cfg.RedisURL), func(ctx context.Context) error { return pingRedis(ctx, opt) }); err != nil {
			return err
		}
	}

	// S3.
	access, secret := cfg.S3AccessKey, cfg.S3SecretKey
	s.s3Endpoint = cfg.S3Endpoint
	if cfg.S3Endpoint == "" {
		if access == "" && secret == "" {
			access, secret = defaultAccessKey, defaultSecretKey
		}
		srv, err := s3store.NewServer(s3store.ServerConfig{Dir: filepath.Join(cfg.Data, "s3"), Bucket: cfg.Bucket, Logger: s.log, Now: s.s3Now})
		if err != nil {
			return fmt.Errorf("start embedded s3: %w", err)
		}
		ln, err := net.Listen("tcp", cfg.S3Listen)
		if err != nil {
			return fmt.Errorf("--s3-listen: %w", err)
		}
		s.s3Endpoint = "http://" + ln.Addr().String()
		s.serveHTTP(ctx, ln, srv.Handler(), 0, 0)
	}
	objects, err := s3store.NewClient(ctx, s3store.Config{
		Endpoint: s.s3Endpoint, Region: cfg.S3Region, AccessKey: access, SecretKey: secret, Bucket: cfg.Bucket,
	})
	if err != nil {
		return fmt.Errorf("s3 client: %w", err)
	}
	s.objects = objects
	if err := s.retry(ctx, "s3 bucket "+cfg.Bucket, displayEndpoint(s.s3Endpoint), objects.EnsureBucket); err != nil {
		return err
	}

	// The queue and the one intake path every sighting of an upload takes.
	rc, ok := s.redisOpt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return fmt.Errorf("unsupported redis options %T", s.redisOpt)
	}
	s.redis = rc
	s.closers = append(s.closers, rc.Close)
	insp := asynq.NewInspector(s.redisOpt)
	s.closers = append(s.closers, insp.Close)
	client := asynq.NewClient(s.redisOpt)
	s.closers = append(s.closers, client.Close)
	taskOpt := worker.DefaultOptions()
	taskOpt.SmallFileBytes = cfg.SmallFile
	queue := worker.NewQueue(client, taskOpt, s.log)
	queue.RecoverArchived(insp)
	queue.RepairWith(s.redis)
	reg := web.NewRegistry(insp)
	reg.MustRegister(web.NewJobsCollector(store))
	metrics := web.NewMetrics(reg)
	uploads := intake.New(objects, queue, intake.Config{Bucket: cfg.Bucket, MaxPerSubmitter: intake.DefaultMaxPerSubmitter,
		Faults: metrics.IntakeFaults.WithLabelValues(web.PathScan)}, s.log)

	// SFTP drop.
	if cfg.SFTPListen != "" && cfg.Role != roleWorker {
		sftpSrv, err := sftpd.New(sftpd.Config{HostKeyDir: cfg.Data, UsersFile: cfg.SFTPUsers, TempDir: tmp,
			MaxFileBytes: cfg.MaxFileBytes, Intake: uploads,
			QueueFaults: metrics.IntakeFaults.WithLabelValues(web.PathSFTP)}, objects, s.log)
		if err != nil {
			return fmt.Errorf("sftp: %w", err)
		}
		ln, err := net.Listen("tcp", cfg.SFTPListen)
		if err != nil {
			return fmt.Errorf("--sftp-listen: %w", err)
		}
		s.sftpAddr = ln.Addr().String()
		s.group.Go(func() error { return sftpSrv.Serve(ctx, ln) })
	}

	// Worker and scan.
	limits := ingest.DefaultLimits()
	limits.MaxBytes, limits.MaxRows = cfg.MaxFileBytes, cfg.MaxRows
	chunkSize, inFlight := cfg.chunking(store.Dialect())
	handler := worker.NewHandler(objects, store, worker.Config{
		Limits: limits, Validate: validate.Config{AllowSynthetic: cfg.TestRegistry},
		ChunkSize: chunkSize, ChunksInFlight: inFlight, TempDir: tmp, SnapshotMaxRemovals: cfg.SnapshotMaxRemovals,
		DefaultLanguage: cfg.defaultLanguage(),
	}, s.log)
	handler.OnFinished = metrics.ObserveJob
	if cfg.Role != roleHTTP {
		s.group.Go(func() error {
			return worker.Serve(ctx, s.redisOpt, handler, worker.ServerConfig{
				SmallConcurrency: cfg.SmallWorkers, LargeConcurrency: cfg.LargeWorkers, ShutdownTimeout: shutdownTimeout,
				ResumeAfter: cfg.ResumeAfter, StopNow: s.stopNow, Stopping: s.stopping, Stopped: s.setCut,
			}, s.log)
		})
		s.group.Go(func() error { uploads.Run(ctx, cfg.ScanInterval); return nil })
	} else {
		s.group.Go(func() error { <-ctx.Done(); s.stopping(nil, 0); return nil })
	}
	// Every process sweeps receipts past their retention, hourly.
	sweeper := &worker.HistorySweeper{Store: store, Objects: objects, Retention: cfg.ReceiptRetention, Log: s.log, Now: time.Now}
	s.group.Go(func() error { sweeper.Run(ctx, time.Hour); return nil })

	// HTTP.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	s.httpAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.healthz)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", web.MetricsHandler(reg)) // every role: workers count their own files
	if cfg.Role != roleWorker {
		ws := web.New(web.Config{Bucket: cfg.Bucket, WebhookSecret: cfg.WebhookSecret,
			OperatorUser: cfg.OperatorUser, OperatorPassword: cfg.OperatorPassword,
			WebhookFaults: metrics.IntakeFaults.WithLabelValues(web.PathWebhook)},
			store, objects, uploads, nil, s.log)
		ws.Routes(mux)
		mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: s.redisOpt})
		s.closers = append(s.closers, mon.Close)
		mux.Handle("/monitoring/", ws.RequireOperator(mon))
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/jobs", http.StatusFound)
		})
	}
	// Webhook bodies are small; receipts streamed to operators may be large.
	s.serveHTTP(ctx, ln, mux, time.Minute, 10*time.Minute)
	if cfg.APIListen != "" && cfg.Role != roleWorker {
		if err := s.startAPI(ctx, store, reg); err != nil {
			return err
		}
	}
	s.log.Info("lessee serve started", "role", cfg.Role, "http", s.httpAddr, "s3", displayEndpoint(s.s3Endpoint), "bucket", cfg.Bucket)
	return nil
}

// retry calls fn until it succeeds or --start-timeout passes, so that a
// service started before its dependencies waits for them; the final error
// says which dependency, and where.
func (s *service) retry(ctx context.Context, what, where string, fn func(context.Context) error) error {
	deadline := time.Now().Add(s.cfg.StartTimeout)
	delay := 250 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().Add(delay).After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s at %s is unreachable: %w", what, where, err)
		}
		s.log.Warn("dependency not reachable yet; retrying", "dependency", what, "at", where, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s at %s: %w", what, where, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// serveHTTP serves h on ln until ctx is done.
//
// readTimeout and writeTimeout bound a whole request and response (0: none,
// for the S3 endpoint, whose uploads and downloads may be large and slow).
func (s *service) serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, readTimeout, writeTimeout time.Duration) {
	srv := &http.Server{
		Handler:           h,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.group.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
		return nil
	})
	s.group.Go(func() error {
		<-ctx.Done()
		// Open requests get 10 s, none after a second interrupt.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		go func() {
			select {
			case <-s.stopNow:
				cancel()
			case <-sctx.Done():
			}
		}()
		if err := srv.Shutdown(sctx); err != nil {
			return srv.Close()
		}
		return nil
	})
}

// healthz reports whether SQL, Redis and S3 answer.
func (s *service) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	checks := map[string]error{
		"database": s.store.Ping(ctx),
		"s3":       s.objects.Ping(ctx),
		"redis":    s.redis.Ping(ctx).Err(),
	}
	status := http.StatusOK
	var b strings.Builder
	for _, name := range []string{"database", "redis", "s3"} {
		if err := checks[name]; err != nil {
			// Health is unauthenticated: the detail goes to the log only.
			status = http.StatusServiceUnavailable
			fmt.Fprintf(&b, "%s: unavailable\n", name)
			s.log.Warn("health check failed", "dependency", name, "err", err)
		} else {
			fmt.Fprintf(&b, "%s: ok\n", name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, b.String())
}

func pingRedis(ctx context.Context, opt asynq.RedisConnOpt) error {
	rc, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return fmt.Errorf("unsupported redis options %T", opt)
	}
	defer func() { _ = rc.Close() }() // teardown: PING has answered
	return rc.Ping(ctx).Err()
}

// wait blocks until the service stops and returns the first error.
func (s *service) wait() error { return s.group.Wait() }

// close stops everything start started.
func (s *service) close() {
	if s.cancel != nil {
		s.cancel()
	}
	if s.group != nil {
		_ = s.group.Wait()
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			s.log.Warn("close at shutdown", "err", err)
		}
	}
	s.closers = nil
}

// loadDemo imports the demo registry into an empty embedded registry.
func loadDemo(ctx context.Context, store *sqlstore.Store, testRegistry bool, log *slog.Logger) error {
	empty, err := store.RegistryEmpty(ctx)
	if err != nil {
		return fmt.Errorf("check registry: %w", err)
	}
	if !empty {
		return nil
	}
	dir, err := os.MkdirTemp("", "lessee-demo-*")
	if err != nil {
		return fmt.Errorf("demo registry: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := examples.WriteRegistry(dir); err != nil {
		return fmt.Errorf("demo registry: %w", err)
	}
	stats, err := store.Import(ctx, dir, sqlstore.ImportOptions{AllowSynthetic: testRegistry})
	if err != nil {
		return fmt.Errorf("import demo registry: %w", err)
	}
	log.Info("registry was empty: loaded the demo registry from examples/registry", "stats", fmt.Sprintf("%+v", stats))
	return nil
}

// loopback reports whether a listen address only accepts local connections.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// displayEndpoint hides a password embedded in a URL.
func displayEndpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// The adapters wired in above satisfy the interfaces their consumers
// declare.
var (
	_ web.JobLister        = (*sqlstore.Store)(nil)
	_ web.Objects          = (*s3store.Client)(nil)
	_ sftpd.ObjectStore    = (*s3store.Client)(nil)
	_ worker.Store         = (*sqlstore.Store)(nil)
	_ intake.Objects       = (*s3store.Client)(nil)
	_ receipt.ObjectWriter = (*s3store.Client)(nil)
)
