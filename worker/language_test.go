package worker

import (
	"strings"
	"testing"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

// TestReceiptLanguage: two fleet owners of the demo registry, one whose
// language is en (Vestland Flåte) and one nb (Fjord Bilutleie), submit the
// same file through the whole worker path, each about its own vehicle,
// and each gets its receipt in its own language: the same rows, statuses
// and codes, the messages in English and in Norwegian. Refusals too, and
// a submitter the registry does not know gets the default language.
func TestReceiptLanguage(t *testing.T) {
	t.Parallel()
	sqlstoretest.Run(t, func(t *testing.T, store *sqlstore.Store) {
		b := setup(t, store)
		const file = "operation,registration_number,vin,lessee_id,start_date,end_date,reference\n" +
			"add,OWN,,15038512363,2026-01-01,,r1\n" +
			"add,OWN,,15038512363,2026-01-01,,r2\n" +
			"add,OTHER,,15038512363,2026-01-01,,r3\n" +
			"add,,WVWZZZ1KZAW00000I,15038512363,2026-01-01,,r4\n" +
			"add,ZZ99999,,15038512363,2026-01-01,,r5\n" +
			"add,OWN,,15038512363,,,r6\n" +
			"remove,OWN,,,,2026-02-30,r7\n" +
			"add,OWN,,15038512363,2026-01-01,,r8,surplus\n" +
			"remove,OWN,,,,2026-04-01,r9\n"
		// Per row: the status and code, then a phrase of the English and
		// of the Norwegian message.
		want := []struct{ status, code, en, nb string }{
			{"applied", "", "lessee added from 2026-01-01 with no end date", "leasingtaker lagt til fra 2026-01-01 uten sluttdato"},
			{"unchanged", "", "the registry already has this lessee from 2026-01-01; nothing changed", "registeret har allerede denne leasingtakeren fra 2026-01-01; ingenting er endret"},
			{"rejected", "NOT_OWNER", "the vehicle is not registered to fleet owner", "kjøretøyet er ikke registrert på flåteeier"},
			{"rejected", "INVALID_VIN", "vin: letter I at position 17 is never used in a VIN", "vin: bokstaven I i posisjon 17 brukes aldri i et understellsnummer"},
			{"rejected", "VEHICLE_NOT_FOUND", "registration_number: no vehicle with this registration number is registered", "registration_number: ingen kjøretøy med dette registreringsnummeret er registrert"},
			{"rejected", "MISSING_FIELD", "start_date: is empty; add needs the date the lease starts", "start_date: er tom; add krever datoen leieforholdet starter"},
			{"rejected", "INVALID_DATE", "end_date: day 30 does not exist in 2026-02", "end_date: dag 30 finnes ikke i 2026-02"},
			{"rejected", "RAGGED_ROW", "row has 8 fields, header has 7", "raden har 8 felt, overskriftsraden har 7"},
			{"applied", "", "lessee removed with end date 2026-04-01", "leasingtaker fjernet med sluttdato 2026-04-01"},
		}
		type submitter struct {
			org, own, other string
			lang            lessee.Language
		}
		var receipts [][][]string
		for _, s := range []submitter{
			{"912345637", "VF30001", "FJ20001", lessee.English},   // Vestland Flåte AS
			{"912345610", "FJ20001", "VF30001", lessee.Norwegian}, // Fjord Bilutleie AS
		} {
			data := strings.NewReplacer("OWN", s.own, "OTHER", s.other).Replace(file)
			job := b.process(t, "inbox/"+s.org+"/lang.csv", []byte(data))
			if job.State != lessee.JobCompleted {
				t.Fatalf("%s: job %s %s %q", s.org, job.State, job.Code, job.Message)
			}
			rows := receiptRows(t, b.get(t, "receipts/"+s.org+"/lang.csv.receipt.csv"))
			if len(rows) != len(want) {
				t.Fatalf("%s: %d receipt rows, want %d: %q", s.org, len(rows), len(want), rows)
			}
			for i, w := range want {
				r := rows[i]
				status, code, msg := r[6], r[7], r[8]
				phrase, other := w.en, w.nb
				if s.lang == lessee.Norwegian {
					phrase, other = w.nb, w.en
				}
				if status != w.status || code != w.code || !strings.Contains(msg, phrase) || strings.Contains(msg, other) {
					t.Errorf("%s (%s) row %s: %s %s %q; want %s %s with %q", s.org, s.lang, r[0], status, code, msg, w.status, w.code, phrase)
				}
			}
			receipts = append(receipts, rows)

			// A refused file: the refusal in the same language.
			job = b.process(t, "inbox/"+s.org+"/refused.csv", []byte("registration_number,lessee_id\n"+s.own+",15038512363\n"))
			refusal := receiptRows(t, b.get(t, "receipts/"+s.org+"/refused.csv.receipt.csv"))
			phrase := `row 1: the header lacks column "operation"`
			if s.lang == lessee.Norwegian {
				phrase = `rad 1: overskriftsraden mangler kolonnen "operation"`
			}
			if job.Code != lessee.CodeMissingColumn || !strings.Contains(job.Message, phrase) ||
				len(refusal) != 1 || refusal[0][7] != "MISSING_COLUMN" || !strings.Contains(refusal[0][8], phrase) {
				t.Errorf("%s (%s): refusal %s %q, receipt %q; want MISSING_COLUMN with %q", s.org, s.lang, job.Code, job.Message, refusal, phrase)
			}
			if summary := string(b.get(t, "receipts/"+s.org+"/refused.csv.summary.json")); !strings.Contains(summary, strings.ReplaceAll(phrase, `"`, `\"`)) {
				t.Errorf("%s (%s): summary %s lacks %q", s.org, s.lang, summary, phrase)
			}
		}
		// Codes, statuses and what the receipt echoes do not depend on
		// the language.
		for i := range receipts[0] {
			en, nb := receipts[0][i], receipts[1][i]
			if en[0] != nb[0] || en[2] != nb[2] || en[6] != nb[6] || en[7] != nb[7] {
				t.Errorf("row %d: en %q, nb %q differ beyond the message", i, en, nb)
			}
		}

		// A submitter the registry does not know: the default language,
		// nb.
		job := b.process(t, "inbox/974760673/stranger.csv", []byte("operation,registration_number,lessee_id,start_date\nadd,EL10001,15038512363,2026-01-01\n"))
		if job.Code != lessee.CodeTermsNotAccepted ||
			job.Message != "organisasjon 974760673 har verken godtatt avtalen om leasingtaker-API eller tredjepartsavtalen" {
			t.Errorf("unknown submitter: %s %q", job.Code, job.Message)
		}
		// A key that breaks the naming rule: the default language, even
		// under the folder of an en submitter.
		job = b.process(t, "inbox/912345637/sub/folder.csv", []byte("operation\n"))
		if job.Code != lessee.CodeInvalidKey || !strings.HasPrefix(job.Message, "ugyldig plassering av filen (objektnøkkel): ") {
			t.Errorf("invalid key: %s %q", job.Code, job.Message)
		}
	})
}
