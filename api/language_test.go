package api

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// TestLanguage: each organisation gets its answers in its enterprise's
// language (the demo owner's is en, the competitor's nb); codes and
// statuses are the same in both. An organisation unknown to the registry
// gets the default language.
func TestLanguage(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, Config{})
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		status       int
		code         string
		en, nb       string // a phrase the message has in each language
	}{
		{"ErrNotOwner", http.MethodPost, "/api/v1/changes",
			`{"operation":"remove","registration_number":"%s"}`, 422, "NOT_OWNER",
			"the vehicle is not registered to fleet owner", "kjøretøyet er ikke registrert på flåteeier"},
		{"ErrInvalidVIN", http.MethodPost, "/api/v1/changes",
			`{"operation":"add","vin":"WVWZZZ1KZAW00000I","lessee_id":"12128822249","start_date":"2026-01-01"}`, 422, "INVALID_VIN",
			"vin: letter I at position 17 is never used in a VIN", "vin: bokstaven I i posisjon 17 brukes aldri i et understellsnummer"},
		{"ErrMissingStart", http.MethodPost, "/api/v1/changes",
			`{"operation":"add","registration_number":"EL10001","lessee_id":"12128822249"}`, 422, "MISSING_FIELD",
			"start_date: is empty; add needs the date the lease starts", "start_date: er tom; add krever datoen leieforholdet starter"},
		{"ErrUnknownField", http.MethodPost, "/api/v1/changes",
			`{"operation":"add","colour":"red"}`, 400, "BAD_REQUEST",
			`unknown field "colour"`, `ukjent felt "colour"`},
		{"ErrNotJSON", http.MethodPost, "/api/v1/changes",
			`[1]`, 400, "BAD_REQUEST",
			"the body must be a JSON object", "innholdet i forespørselen må være et JSON-objekt"},
		// Bad JSON: where it breaks, in the caller's language, and none of
		// the decoder's own (English) words.
		{"ErrJSONEndsEarly", http.MethodPost, "/api/v1/changes",
			`{"operation":`, 400, "BAD_REQUEST",
			"the body is not JSON: it ends before the JSON value is complete",
			"innholdet i forespørselen er ikke JSON: det slutter før JSON-verdien er fullstendig"},
		{"ErrJSONBadCharacter", http.MethodPost, "/api/v1/changes",
			`{"operation" "add"}`, 400, "BAD_REQUEST",
			"the body is not JSON: an unexpected character at byte 13",
			"innholdet i forespørselen er ikke JSON: et uventet tegn ved byte 13"},
		{"ErrNoSuchVehicle", http.MethodGet, "/api/v1/vehicles/ZZ99999", "", 404, "NOT_FOUND",
			"no vehicle with this registration number or vin that you may see", "ingen kjøretøy med dette registreringsnummeret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each names the other's vehicle, so that both are NOT_OWNER.
			for _, who := range []struct {
				org, other string
				lang       lessee.Language
			}{{owner, "FJ20001", lessee.English}, {competitor, "EL10004", lessee.Norwegian}} {
				body := strings.Replace(tc.body, "%s", who.other, 1)
				r := do(t, srv, tc.method, tc.path, who.org, body)
				msg := answerField(t, r.body, "message")
				want, other := tc.en, tc.nb
				if who.lang == lessee.Norwegian {
					want, other = tc.nb, tc.en
				}
				if r.status != tc.status || answerField(t, r.body, "code") != tc.code {
					t.Errorf("%s (%s): %d %s, want %d %s", who.org, who.lang, r.status, r.body, tc.status, tc.code)
				}
				if !strings.Contains(msg, want) || strings.Contains(msg, other) {
					t.Errorf("%s (%s): message %q, want it to contain %q", who.org, who.lang, msg, want)
				}
				for _, goText := range []string{"unexpected end", "invalid character", "looking for"} {
					if strings.Contains(msg, goText) {
						t.Errorf("%s (%s): message %q passes on Go's %q", who.org, who.lang, msg, goText)
					}
				}
			}
		})
	}

	// An organisation the registry does not know: the default language,
	// nb unless configured.
	const stranger = "974760673"
	body := `{"operation":"remove","registration_number":"EL10004"}`
	if r := do(t, srv, http.MethodPost, "/api/v1/changes", stranger, body); r.status != 422 ||
		answerField(t, r.body, "code") != "TERMS_NOT_ACCEPTED" || !strings.Contains(answerField(t, r.body, "message"), "innsenderen har ikke godtatt") {
		t.Errorf("unknown organisation, default nb: %d %s", r.status, r.body)
	}
	en, _ := setup(t, Config{DefaultLanguage: lessee.English})
	if r := do(t, en, http.MethodPost, "/api/v1/changes", stranger, body); r.status != 422 ||
		!strings.Contains(answerField(t, r.body, "message"), "the submitter has not accepted") {
		t.Errorf("unknown organisation, default en: %d %s", r.status, r.body)
	}
	// Before a token names anyone: the default language.
	if r := do(t, srv, http.MethodPost, "/api/v1/changes", "", body); r.status != 401 ||
		!strings.Contains(answerField(t, r.body, "message"), "ikke autentisert") {
		t.Errorf("no token: %d %s", r.status, r.body)
	}
}

// reasonAuth refuses every token with err, as an authenticator does.
type reasonAuth struct{ err error }

func (a reasonAuth) Authenticate(context.Context, string) (string, error) { return "", a.err }

// TestAuthAnswersInDefaultLanguage: before a token names an organisation,
// 401 and 403 answers are in --default-language, the authenticator's
// reason too when it is a message of the catalogue; any other error text
// of the authenticator is not passed on.
func TestAuthAnswersInDefaultLanguage(t *testing.T) {
	t.Parallel()
	store := sqlstoretest.SQLite(t)
	lacksScope := fmt.Errorf("%w: %w", ErrForbidden, message.Errorf(message.TokenLacksScope, "lessee:write"))
	expired := fmt.Errorf("%w: %w", ErrUnauthenticated, message.Errorf(message.TokenExpired))
	library := fmt.Errorf("%w: jwt.Parse: failed to parse token: some library's words", ErrUnauthenticated)
	for _, tc := range []struct {
		name   string
		err    error
		lang   lessee.Language
		status int
		want   string
	}{
		{"ForbiddenNB", lacksScope, lessee.Norwegian, 403, "ingen tilgang (tokenet mangler scopet lessee:write)"},
		{"ForbiddenEN", lacksScope, lessee.English, 403, "forbidden: token lacks scope lessee:write"},
		{"ExpiredNB", expired, lessee.Norwegian, 401, "ikke autentisert (tokenet ble avvist: tokenet er utløpt)"},
		{"ExpiredEN", expired, lessee.English, 401, "unauthenticated: token expired"},
		{"LibraryTextNB", library, lessee.Norwegian, 401, "ikke autentisert: tokenet mangler, er ugyldig eller er utløpt"},
		{"LibraryTextEN", library, lessee.English, 401, "unauthenticated"},
	} {
		s := New(store, reasonAuth{tc.err}, Config{DefaultLanguage: tc.lang}, slog.New(slog.DiscardHandler))
		mux := http.NewServeMux()
		s.Routes(mux)
		srv := httptest.NewServer(mux)
		r := do(t, srv, http.MethodPost, "/api/v1/changes", "x", `{}`)
		srv.Close()
		if msg := answerField(t, r.body, "message"); r.status != tc.status || msg != tc.want {
			t.Errorf("%s: %d %q, want %d %q", tc.name, r.status, msg, tc.status, tc.want)
		}
	}
}

// TestUnencodableAnswer: an answer that cannot be encoded is a technical
// fault in the caller's language, not the encoder's English.
func TestUnencodableAnswer(t *testing.T) {
	t.Parallel()
	for lang, want := range map[lessee.Language]string{
		lessee.Norwegian: "en teknisk feil; prøv igjen",
		lessee.English:   "a technical fault; try again",
	} {
		rec := httptest.NewRecorder()
		writeJSON(rec, lang, http.StatusOK, map[string]any{"x": math.Inf(1)})
		if msg := answerField(t, rec.Body.Bytes(), "message"); rec.Code != http.StatusInternalServerError ||
			answerField(t, rec.Body.Bytes(), "code") != CodeInternal || msg != want {
			t.Errorf("%s: %d %s, want 500 %q", lang, rec.Code, rec.Body, want)
		}
	}
}
