package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/message"
	"github.com/fleetreg/lessee/validate"
)

// Errors an Authenticator returns: no valid token (401), or a valid token
// without the scope (403).
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
	// ErrUnavailable: the token's keys cannot be had now (503).
	ErrUnavailable = errors.New("token keys unavailable")
)

// Authenticator checks a request's Authorization header and returns the
// organisation number the token acts as.
type Authenticator interface {
	Authenticate(ctx context.Context, authorization string) (orgnr string, err error)
}

// Store is what the API needs from SQL.
type Store interface {
	// ApplyBatch applies changes in one transaction, each decided alone,
	// keeping each answer under its call's idempotency key (see
	// sqlstore.Store.ApplyBatch); a key reused for another request is a
	// change's Err with code lessee.ECONFLICT.
	ApplyBatch(ctx context.Context, changes []lessee.APIChange) ([]lessee.APIResult, error)
	Vehicle(ctx context.Context, vin string) (lessee.Vehicle, error)
	VehicleByRegistrationNumber(ctx context.Context, reg string) (lessee.Vehicle, error)
	AuthorityState(ctx context.Context, orgnrs []string) (*lessee.State, error)
	// MarkFleetChanged counts a change to the fleet for its export.
	MarkFleetChanged(ctx context.Context, orgnr string) error
	// Enterprise returns an enterprise (for its language); lessee.ENOTFOUND
	// when the registry knows nothing of it.
	Enterprise(ctx context.Context, orgnr string) (*lessee.Enterprise, error)
}

// Config tunes the API.
type Config struct {
	Validate validate.Config
	// Rate is how many requests per second one organisation may make
	// (bursts of as many); zero or less means no limit.
	Rate float64
	// Location is whose day the processing date is (Europe/Oslo).
	Location *time.Location
	// JWKS, when set, is served at /.well-known/jwks.json (the development
	// issuer's keys).
	JWKS []byte
	// Metrics, when set, count and time every request.
	Metrics *Metrics
	// Batch tunes how concurrent changes share transactions.
	Batch BatchConfig
	// DefaultLanguage is what answers are written in for an organisation
	// whose enterprise names no language, or that the registry does not
	// know, and before a token names the organisation; zero means
	// lessee.Norwegian.
	DefaultLanguage lessee.Language
}

// languageTTL is how long an organisation's language is kept for the
// answers that are not a change's outcome (which read it with the
// change's state): a language changed in the registry reaches them
// within it.
const languageTTL = time.Minute

// keptLanguage is an organisation's language as read at a time.
type keptLanguage struct {
	lang lessee.Language
	at   time.Time
}

// Server is the single-change API.
type Server struct {
	store Store
	batch *batcher
	auth  Authenticator
	cfg   Config
	log   *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time

	mu        sync.Mutex
	limiters  map[string]*rate.Limiter
	changed   map[string]bool         // fleets changed since the last FlushMarks
	languages map[string]keptLanguage // by organisation; see languageTTL
}

// New returns the API over store, authenticating with auth.
func New(store Store, auth Authenticator, cfg Config, log *slog.Logger) *Server {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	cfg.DefaultLanguage = cfg.DefaultLanguage.Or(lessee.Norwegian)
	return &Server{store: store, batch: newBatcher(store, cfg.Batch, cfg.Metrics.observeGroup), auth: auth, cfg: cfg, log: log, Now: time.Now,
		limiters: map[string]*rate.Limiter{}, changed: map[string]bool{}, languages: map[string]keptLanguage{}}
}

// Routes registers the API's routes on mux.
func (s *Server) Routes(mux *http.ServeMux) {
	m := s.cfg.Metrics
	mux.HandleFunc("POST /api/v1/changes", m.instrument("/api/v1/changes", s.postChange))
	mux.HandleFunc("GET /api/v1/vehicles/{id}", m.instrument("/api/v1/vehicles/{id}", s.getVehicle))
	mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	if s.cfg.JWKS != nil {
		mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "max-age=300")
			_, _ = w.Write(s.cfg.JWKS)
		})
	}
}

// Answer is the JSON body of a change's answer.
type Answer struct {
	Status   string `json:"status"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	ChangeID string `json:"change_id"`
}

// errorBody is the JSON body of an error answer.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of answers that are not a change's outcome.
const (
	CodeBadRequest           = "BAD_REQUEST"
	CodeUnauthenticated      = "UNAUTHENTICATED"
	CodeForbidden            = "FORBIDDEN"
	CodeNotFound             = "NOT_FOUND"
	CodeRateLimited          = "RATE_LIMITED"
	CodeIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
	CodeInternal             = "INTERNAL"
	CodeUnavailable          = "UNAVAILABLE"
)

// writeJSON answers v as JSON; should v not encode, a technical fault in
// lang, the caller's language, rather than the encoder's English.
func writeJSON(w http.ResponseWriter, lang lessee.Language, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, internalBody(lang)
	}
	writeBody(w, status, b)
}

// internalBody is the body of a technical fault in lang.
func internalBody(lang lessee.Language) []byte {
	b, err := json.Marshal(errorBody{Code: CodeInternal, Message: message.Format(lang, message.TechnicalFault)})
	if err != nil { // two strings always encode; kept for the compiler
		return []byte(`{"code":"INTERNAL","message":""}`)
	}
	return b
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, lang lessee.Language, status int, code, msg string) {
	writeJSON(w, lang, status, errorBody{Code: code, Message: ident.MaskText(msg)})
}

// language returns what org's answers are written in: its enterprise's
// language, or the default. It is kept for languageTTL; a failed lookup
// answers in the default language rather than fail the request.
func (s *Server) language(ctx context.Context, org string) lessee.Language {
	now := s.Now()
	s.mu.Lock()
	k, ok := s.languages[org]
	s.mu.Unlock()
	if ok && now.Sub(k.at) < languageTTL {
		return k.lang
	}
	e, err := s.store.Enterprise(ctx, org)
	if err != nil && lessee.ErrorCode(err) != lessee.ENOTFOUND {
		s.log.Warn("api: could not read the organisation's language; answering in the default", "submitter", org, "err", ident.MaskText(err.Error()))
		return s.cfg.DefaultLanguage
	}
	return s.keepLanguage(org, e, now)
}

// keepLanguage keeps and returns the language of org, whose enterprise
// (nil: unknown to the registry) was read at time at.
func (s *Server) keepLanguage(org string, e *lessee.Enterprise, at time.Time) lessee.Language {
	lang := message.Choose(e, s.cfg.DefaultLanguage)
	s.mu.Lock()
	s.languages[org] = keptLanguage{lang: lang, at: at}
	s.mu.Unlock()
	return lang
}

// authenticate answers 401 or 403 itself and returns false when the
// request may not go on; then the organisation's rate.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	org, err := s.auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
	// No organisation yet: the default language (--default-language).
	lang := s.cfg.DefaultLanguage
	switch {
	case errors.Is(err, ErrForbidden):
		writeError(w, lang, http.StatusForbidden, CodeForbidden, authMessage(lang, err, message.Forbidden, message.ForbiddenWhy))
		return "", false
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		writeError(w, lang, http.StatusServiceUnavailable, CodeUnavailable, message.Format(lang, message.TokenKeysUnavailable))
		return "", false
	case err != nil:
		w.Header().Set("WWW-Authenticate", `Bearer realm="lessee", error="invalid_token"`)
		writeError(w, lang, http.StatusUnauthorized, CodeUnauthenticated,
			authMessage(lang, err, message.Unauthenticated, message.UnauthenticatedWhy))
		return "", false
	}
	if wait, ok := s.allow(org); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeError(w, lang, http.StatusTooManyRequests, CodeRateLimited,
			message.Format(s.language(r.Context(), org), message.RateLimited, strconv.FormatFloat(s.cfg.Rate, 'g', -1, 64), org))
		return "", false
	}
	return org, true
}

// authMessage is the message of an authentication error err of kind, in
// lang: with the reason when the authenticator gives it as a message of
// the catalogue (apiauth does: "token expired"), else bare. An
// authenticator's own error text is never passed on: it may be a library's
// English, or say more than a client should learn.
func authMessage(lang lessee.Language, err error, bare, why message.Key) string {
	if t, ok := message.TextOf(err); ok {
		return message.Format(lang, why, message.Render(lang, t))
	}
	return message.Format(lang, bare)
}

// allow takes a token from org's bucket, or says how long to wait.
func (s *Server) allow(org string) (time.Duration, bool) {
	if s.cfg.Rate <= 0 {
		return 0, true
	}
	s.mu.Lock()
	l := s.limiters[org]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(s.cfg.Rate), max(1, int(s.cfg.Rate)))
		s.limiters[org] = l
	}
	s.mu.Unlock()
	res := l.ReserveN(s.Now(), 1)
	if !res.OK() {
		return time.Second, false
	}
	if d := res.DelayFrom(s.Now()); d > 0 {
		res.CancelAt(s.Now())
		return d, false
	}
	return 0, true
}

// requestID returns a new random request id.
func requestID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

func (s *Server) postChange(w http.ResponseWriter, r *http.Request) {
	org, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	lang := s.language(r.Context(), org)
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		writeError(w, lang, http.StatusBadRequest, CodeBadRequest, message.Format(lang, message.IdempotencyKeyLong, maxIdempotencyKey))
		return
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes+1)
	raw, err := DecodeChange(body)
	if err != nil {
		if t, ok := message.TextOf(err); ok && errors.Is(err, errBadRequest) {
			writeError(w, lang, http.StatusBadRequest, CodeBadRequest, message.Render(lang, t))
			return
		}
		writeError(w, lang, http.StatusBadRequest, CodeBadRequest, message.Format(lang, message.BodyUnreadable))
		return
	}
	rid, err := requestID()
	if err != nil {
		s.fail(w, r, lang, "request id", err)
		return
	}
	now := s.Now()
	call := lessee.APICall{RequestID: rid, Submitter: org, IdempotencyKey: key, RequestHash: requestHash(raw)}
	vjob := validate.Job{ID: call.JobID(), Submitter: org, ProcessingDate: lessee.DateOf(now.In(s.cfg.Location)), Now: now,
		Language: lang}
	row := validate.ParseRow(s.cfg.Validate, vjob, raw)
	rows := []lessee.Row{row}
	var fleet string
	res, err := s.batch.apply(r.Context(), lessee.APIChange{
		Call: call,
		Keys: validate.KeysFor(vjob, rows),
		Decide: func(st *lessee.State) lessee.Decision {
			// The language as the change's own state has it, fresher
			// than the one kept.
			vjob.Language = s.keepLanguage(org, st.Enterprises[org], now)
			return validate.Decide(s.cfg.Validate, vjob, st, rows)
		},
		Answer: func(o lessee.Outcome) (lessee.APIAnswer, error) {
			fleet = ""
			if o.Status == lessee.StatusApplied {
				fleet = o.OnBehalfOf
			}
			return answerFor(o)
		},
	})
	if err == nil {
		err = res.Err
	}
	ans, replayed := res.Answer, res.Replayed
	switch {
	case lessee.ErrorCode(err) == lessee.ECONFLICT:
		writeError(w, lang, http.StatusUnprocessableEntity, CodeIdempotencyKeyReused, message.Format(lang, message.IdempotencyKeyReused))
		return
	case err != nil:
		s.fail(w, r, lang, "apply change", err)
		return
	}
	if fleet != "" && !replayed {
		s.noteChanged(fleet)
	}
	w.Header().Set("X-Request-Id", rid)
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	s.log.Info("api change", "request_id", rid, "submitter", org, "status", ans.Status, "replayed", replayed)
	writeBody(w, ans.Status, ans.Body)
}

// noteChanged remembers that a change was applied to fleet's vehicles.
func (s *Server) noteChanged(fleet string) {
	s.mu.Lock()
	s.changed[fleet] = true
	s.mu.Unlock()
}

// FlushMarks marks, for their exports, the fleets the API changed since
// the last flush, once each; a fleet it could not mark is kept for the
// next flush. Marking in each change's own transaction would make every
// change of a fleet queue on the fleet's one row.
func (s *Server) FlushMarks(ctx context.Context) error {
	s.mu.Lock()
	fleets := s.changed
	s.changed = map[string]bool{}
	s.mu.Unlock()
	var first error
	for f := range fleets {
		if err := s.store.MarkFleetChanged(ctx, f); err != nil {
			s.noteChanged(f)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// RunMarks flushes the fleet marks every interval until ctx is done, and
// once more then, so that a stopping process leaves none behind.
func (s *Server) RunMarks(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := s.FlushMarks(fctx); err != nil {
				s.log.Warn("api: fleet export marks not written at shutdown; the next change or midnight renews the exports", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := s.FlushMarks(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("api: could not mark changed fleets for export; trying again", "err", err)
			}
		}
	}
}

// answerFor is the answer to a change's outcome: 200 for applied or
// unchanged, 422 for rejected.
func answerFor(o lessee.Outcome) (lessee.APIAnswer, error) {
	status := http.StatusOK
	if o.Status == lessee.StatusRejected {
		status = http.StatusUnprocessableEntity
	}
	b, err := json.Marshal(Answer{Status: string(o.Status), Code: string(o.Code), Message: o.Message, ChangeID: o.ChangeID})
	if err != nil {
		return lessee.APIAnswer{}, err
	}
	return lessee.APIAnswer{Status: status, Body: b}, nil
}

// requestHash identifies a request's content: the cells it gives, so that
// the same change with its keys in another order or spelling is the same.
func requestHash(raw lessee.RawRow) string {
	h := sha256.New()
	for _, c := range raw.Cells {
		fmt.Fprintf(h, "%d:%s\n", len(c.Value), c.Value)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, lang lessee.Language, what string, err error) {
	s.log.Error("api: "+what, "path", r.URL.Path, "err", ident.MaskText(err.Error()))
	writeError(w, lang, http.StatusInternalServerError, CodeInternal, message.Format(lang, message.TechnicalFault))
}

// PeriodView is a lessee period in the vehicle view.
type PeriodView struct {
	LesseeID   string `json:"lessee_id"`
	LesseeName string `json:"lessee_name,omitempty"`
	StartDate  string `json:"start_date"`
	EndDate    string `json:"end_date,omitempty"`
}

// VehicleView is the answer of GET /api/v1/vehicles/{id}.
type VehicleView struct {
	RegistrationNumber string       `json:"registration_number"`
	VIN                string       `json:"vin"`
	Owner              string       `json:"owner"`
	Lessee             *PeriodView  `json:"lessee"`
	Periods            []PeriodView `json:"periods"`
}

func (s *Server) getVehicle(w http.ResponseWriter, r *http.Request) {
	org, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	lang := s.language(r.Context(), org)
	notFound := func() {
		// The same answer whether the vehicle does not exist or belongs
		// to a fleet the caller may not act for.
		writeError(w, lang, http.StatusNotFound, CodeNotFound, message.Format(lang, message.VehicleNotVisible))
	}
	var v lessee.Vehicle
	var err error
	if vin, verr := ident.VIN(id); verr == nil {
		v, err = s.store.Vehicle(r.Context(), vin)
	} else if reg, rerr := ident.NormaliseRegNumber(id); rerr == nil {
		v, err = s.store.VehicleByRegistrationNumber(r.Context(), reg)
	} else {
		notFound()
		return
	}
	if lessee.ErrorCode(err) == lessee.ENOTFOUND {
		notFound()
		return
	}
	if err != nil {
		s.fail(w, r, lang, "vehicle", err)
		return
	}
	now := s.Now()
	today := lessee.DateOf(now.In(s.cfg.Location))
	st, err := s.store.AuthorityState(r.Context(), []string{org, v.Owner})
	if err != nil {
		s.fail(w, r, lang, "vehicle authority", err)
		return
	}
	vjob := validate.Job{Submitter: org, ProcessingDate: today, Now: now}
	if validate.Authorize(vjob, st, v.Owner, today) != nil {
		notFound()
		return
	}
	view := VehicleView{RegistrationNumber: v.RegistrationNumber, VIN: v.VIN, Owner: v.Owner, Periods: []PeriodView{}}
	for _, p := range v.Periods {
		pv := PeriodView{LesseeID: p.LesseeID, LesseeName: p.LesseeName, StartDate: string(p.Start), EndDate: string(p.End)}
		view.Periods = append(view.Periods, pv)
		if !today.Before(p.Start) && p.OpenOn(today) {
			cur := pv
			view.Lessee = &cur
		}
	}
	writeJSON(w, lang, http.StatusOK, view)
}
