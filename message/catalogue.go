package message

import "github.com/fleetreg/lessee"

// The keys of the catalogue, grouped by where the message arises. A key's
// value is stable: a row's Text is spooled under it between the passes of
// a file.
const (
	// A row's own fields (validate.ParseRow, validate.ParseSnapshotRow).
	ExcelNumber        Key = "excel_number"
	OperationEmpty     Key = "operation_empty"
	OperationUnknown   Key = "operation_unknown"
	LesseeIDEmpty      Key = "lessee_id_empty"
	StartDateEmpty     Key = "start_date_empty"
	EndBeforeStartDate Key = "end_before_start_date"
	EndOnStartDate     Key = "end_on_start_date"
	VehicleEmpty       Key = "vehicle_empty"
	OnBehalfOfNotOrgNr Key = "on_behalf_of_not_orgnr"
	FieldTooLong       Key = "field_too_long"
	ExcelDate          Key = "excel_date"
	DateFormat         Key = "date_format"
	DateYear           Key = "date_year"
	DateMonth          Key = "date_month"
	DateDay            Key = "date_day"
	RaggedRow          Key = "ragged_row"

	// Identifiers (package ident; see Ident).
	IdentEmpty             Key = "ident.empty"
	IdentScientific        Key = "ident.scientific"
	IdentNotDigits         Key = "ident.not_digits"
	IdentNotDigitsSpace    Key = "ident.not_digits_space"
	IdentOrgNrLength       Key = "ident.orgnr_length"
	IdentOrgNrCheck        Key = "ident.orgnr_check"
	IdentLesseeLeadingZero Key = "ident.lessee_leading_zero"
	IdentLesseeLength      Key = "ident.lessee_length"
	IdentPersonLeadingZero Key = "ident.person_leading_zero"
	IdentPersonLength      Key = "ident.person_length"
	IdentPersonCheck       Key = "ident.person_check"
	IdentSynthetic         Key = "ident.synthetic"
	IdentCentury           Key = "ident.century"
	IdentDate              Key = "ident.date"
	IdentRegCharacter      Key = "ident.reg_character"
	IdentRegLength         Key = "ident.reg_length"
	IdentVINLetter         Key = "ident.vin_letter"
	IdentVINCharacter      Key = "ident.vin_character"
	IdentVINLength         Key = "ident.vin_length"

	// Authority, vehicle and lessee state (validate.Decide).
	OperationNotKnown      Key = "operation_not_known"
	TermsOwn               Key = "terms_own"
	TermsOwnOrThirdParty   Key = "terms_own_or_third_party"
	NotFleetOwnerSelf      Key = "not_fleet_owner_self"
	TermsThirdParty        Key = "terms_third_party"
	NotFleetOwner          Key = "not_fleet_owner"
	FleetOwnerTerms        Key = "fleet_owner_terms"
	NoDelegation           Key = "no_delegation"
	DelegationRevoked      Key = "delegation_revoked"
	DelegationRevokedFrom  Key = "delegation_revoked_from"
	DelegationNotYetValid  Key = "delegation_not_yet_valid"
	DelegationExpired      Key = "delegation_expired"
	VehicleNotFoundBoth    Key = "vehicle_not_found_both"
	VehicleNotFoundVIN     Key = "vehicle_not_found_vin"
	VehicleNotFoundReg     Key = "vehicle_not_found_reg"
	RegVINMismatch         Key = "reg_vin_mismatch"
	NotOwner               Key = "not_owner"
	NotOwnerYet            Key = "not_owner_yet"
	ConflictOverlapOpen    Key = "conflict_overlap_open"
	ConflictOverlapTo      Key = "conflict_overlap_to"
	OverlapEndBy           Key = "overlap_end_by"
	OverlapRemoveFirst     Key = "overlap_remove_first"
	OverlapStartFrom       Key = "overlap_start_from"
	OverlapSnapshotNoEnd   Key = "overlap_snapshot_no_end"
	OverlapOneLessee       Key = "overlap_one_lessee"
	ConflictOverlapMany    Key = "conflict_overlap_many"
	PeriodFromTo           Key = "period_from_to"
	PeriodFromOpen         Key = "period_from_open"
	OverlapMore            Key = "overlap_more"
	ConflictEndOpen        Key = "conflict_end_open"
	ConflictEndTo          Key = "conflict_end_to"
	AddUnchanged           Key = "add_unchanged"
	AddedOpen              Key = "added_open"
	AddedTo                Key = "added_to"
	RemoveUnchanged        Key = "remove_unchanged"
	RemoveEndBeforeStart   Key = "remove_end_before_start"
	LesseeMismatch         Key = "lessee_mismatch"
	NoActiveLessee         Key = "no_active_lessee"
	Removed                Key = "removed"
	SubmitterNoTerms       Key = "submitter_no_terms"
	DuplicateVehicle       Key = "duplicate_vehicle"
	SnapshotStartEmpty     Key = "snapshot_start_empty"
	KeepNoLessee           Key = "keep_no_lessee"
	KeepLessee             Key = "keep_lessee"
	SnapshotRemoveSameDay  Key = "snapshot_remove_same_day"
	SnapshotOperation      Key = "snapshot_operation"
	SnapshotEndedConflict  Key = "snapshot_ended_conflict"
	ReplaceEndBeforeStart  Key = "replace_end_before_start"
	ReplaceOverlap         Key = "replace_overlap"
	Replaced               Key = "replaced"
	MixedFleetOwners       Key = "mixed_fleet_owners"
	TooManyRemovals        Key = "too_many_removals"
	AbsentFromSnapshot     Key = "absent_from_snapshot"
	InvalidKey             Key = "invalid_key"
	FileLargerThanLimit    Key = "file_larger_than_limit"
	ProcessingStopped      Key = "processing_stopped"
	ProcessingFailed       Key = "processing_failed"
	SourceGone             Key = "source_gone"
	RowPrefix              Key = "row_prefix"
	NoHeaderRow            Key = "no_header_row"
	TooManyRowsFile        Key = "too_many_rows_file"
	TooManyRowsSheet       Key = "too_many_rows_sheet"
	CSVBroken              Key = "csv_broken"
	CSVBrokenInColumn      Key = "csv_broken_in_column"
	CSVQuotingBroken       Key = "csv_quoting_broken"
	CSVBareQuote           Key = "csv_bare_quote"
	CSVQuoteNotClosed      Key = "csv_quote_not_closed"
	CSVTextAfterQuote      Key = "csv_text_after_quote"
	CSVQuoteNeverClosed    Key = "csv_quote_never_closed"
	UTF16HalfCharacter     Key = "utf16_half_character"
	UTF16Surrogate         Key = "utf16_surrogate"
	MixedEncodings         Key = "mixed_encodings"
	UndefinedBytes         Key = "undefined_bytes"
	RowMoreColumnsThan     Key = "row_more_columns_than"
	RowColumns             Key = "row_columns"
	HeaderColumns          Key = "header_columns"
	CellLongerThan         Key = "cell_longer_than"
	CellLongerThanOpen     Key = "cell_longer_than_open_quote"
	CellBytes              Key = "cell_bytes"
	NotATable              Key = "not_a_table"
	NotText                Key = "not_text"
	PasswordProtected      Key = "password_protected"
	LegacyXLS              Key = "legacy_xls"
	DuplicateColumn        Key = "duplicate_column"
	NotAHeader             Key = "not_a_header"
	HeaderLacks            Key = "header_lacks"
	MissingOperationColumn Key = "missing_operation_column"
	MissingVehicleColumn   Key = "missing_vehicle_column"
	MissingLesseeIDColumn  Key = "missing_lessee_id_column"
	FileBytes              Key = "file_bytes"
	FileEmpty              Key = "file_empty"
	NotWorkbook            Key = "not_workbook"
	ExpandsTooLarge        Key = "expands_too_large"
	NoSheets               Key = "no_sheets"
	SheetNotTable          Key = "sheet_not_table"
	SheetNoHeader          Key = "sheet_no_header"
	WorksheetDamaged       Key = "worksheet_damaged"
	WorksheetDamagedAfter  Key = "worksheet_damaged_after"
	RowUnreadable          Key = "row_unreadable"

	// What a file is when it is not a table (NotATable's argument).
	KindPDF      Key = "kind.pdf"
	KindPNG      Key = "kind.png"
	KindJPEG     Key = "kind.jpeg"
	KindGIF      Key = "kind.gif"
	KindGzip     Key = "kind.gzip"
	Kind7Zip     Key = "kind.7zip"
	KindRAR      Key = "kind.rar"
	KindEmptyZIP Key = "kind.empty_zip"
	KindRTF      Key = "kind.rtf"
	KindXML      Key = "kind.xml"

	// The single-change API's answers that are not a row's outcome.
	BodyTooLarge         Key = "api.body_too_large"
	BodyNotJSON          Key = "api.body_not_json"
	BodyNotObject        Key = "api.body_not_object"
	JSONInvalidAt        Key = "api.json_invalid_at"
	JSONEndsEarly        Key = "api.json_ends_early"
	JSONInvalid          Key = "api.json_invalid"
	BodyFieldTwice       Key = "api.body_field_twice"
	BodyMoreThanOne      Key = "api.body_more_than_one"
	BodyNoField          Key = "api.body_no_field"
	BodyUnknownField     Key = "api.body_unknown_field"
	BodyNotString        Key = "api.body_not_string"
	BodyLesseeNotObject  Key = "api.body_lessee_not_object"
	BodyLesseeUnknown    Key = "api.body_lessee_unknown"
	BodyLesseeTwoIDs     Key = "api.body_lessee_two_ids"
	BodyUnreadable       Key = "api.body_unreadable"
	IdempotencyKeyLong   Key = "api.idempotency_key_long"
	IdempotencyKeyReused Key = "api.idempotency_key_reused"
	RateLimited          Key = "api.rate_limited"
	TokenKeysUnavailable Key = "api.token_keys_unavailable"
	Unauthenticated      Key = "api.unauthenticated"
	UnauthenticatedWhy   Key = "api.unauthenticated_why"
	Forbidden            Key = "api.forbidden"
	ForbiddenWhy         Key = "api.forbidden_why"
	TechnicalFault       Key = "api.technical_fault"
	VehicleNotVisible    Key = "api.vehicle_not_visible"

	// Why a token was refused (package apiauth), written into
	// UnauthenticatedWhy or ForbiddenWhy.
	TokenExpired           Key = "auth.expired"
	TokenMissing           Key = "auth.missing"
	TokenNotBearer         Key = "auth.not_bearer"
	TokenTooLong           Key = "auth.too_long"
	TokenMalformed         Key = "auth.malformed"
	TokenAlgorithm         Key = "auth.algorithm"
	TokenNoKeyID           Key = "auth.no_key_id"
	TokenKeyNotForSigning  Key = "auth.key_not_for_signing"
	TokenKeyUnusable       Key = "auth.key_unusable"
	TokenAlgorithmMismatch Key = "auth.algorithm_mismatch"
	TokenUnknownKey        Key = "auth.unknown_key"
	TokenNotYetValid       Key = "auth.not_yet_valid"
	TokenIssuedInFuture    Key = "auth.issued_in_future"
	TokenWrongIssuer       Key = "auth.wrong_issuer"
	TokenWrongAudience     Key = "auth.wrong_audience"
	TokenNoExpiry          Key = "auth.no_expiry"
	TokenBadSignature      Key = "auth.bad_signature"
	TokenNoConsumer        Key = "auth.no_consumer"
	TokenBadConsumer       Key = "auth.bad_consumer"
	TokenLacksScope        Key = "auth.lacks_scope"
)

// catalogue holds every message in both languages. It is read, never
// written: a table of constants that Go cannot declare constant.
var catalogue = map[Key]entry{
	// A row's own fields. The column name is written before each (Field).
	ExcelNumber: {"",
		"Excel stored the value as a number, which loses leading zeros and long digits; format the column as text and enter the value again",
		"Excel lagret verdien som et tall, og da forsvinner nuller foran og sifre i lange tall; formater kolonnen som tekst og skriv inn verdien på nytt"},
	OperationEmpty: {lessee.CodeMissingField,
		"is empty; write add or remove",
		"er tom; skriv add eller remove"},
	OperationUnknown: {lessee.CodeInvalidOperation,
		"is not a known operation; write add (legg_til, opprette) or remove (fjerne, avslutte)",
		"er ikke en kjent operasjon; skriv add (legg_til, opprette) eller remove (fjerne, avslutte)"},
	LesseeIDEmpty: {lessee.CodeMissingField,
		"is empty; add needs the lessee's national identity number, D-number or organisation number",
		"er tom; add krever leasingtakerens fødselsnummer, D-nummer eller organisasjonsnummer"},
	StartDateEmpty: {lessee.CodeMissingField,
		"is empty; add needs the date the lease starts",
		"er tom; add krever datoen leieforholdet starter"},
	EndBeforeStartDate: {lessee.CodeEndBeforeStart,
		"%s is before start_date %s; correct one of the dates",
		"%s er før start_date %s; rett en av datoene"},
	EndOnStartDate: {lessee.CodeEndBeforeStart,
		"%s is the same day as start_date; a lease runs up to, not including, its end date, so the end date must be after the start date: give the day after the lease's last day",
		"%s er samme dag som start_date; et leieforhold varer fram til, men ikke med, sluttdatoen, så sluttdatoen må være etter startdatoen: oppgi dagen etter leieforholdets siste dag"},
	VehicleEmpty: {lessee.CodeMissingField,
		"both vin and registration_number are empty; give at least one to name the vehicle",
		"både vin og registration_number er tomme; fyll ut minst én av dem, så vi vet hvilket kjøretøy det gjelder"},
	OnBehalfOfNotOrgNr: {lessee.CodeInvalidOnBehalfOf,
		"must be the fleet owner's organisation number: %s",
		"må være flåteeierens organisasjonsnummer: %s"},
	FieldTooLong: {lessee.CodeFieldTooLong,
		"has %s characters; shorten it to at most %s",
		"har %s tegn; kort den ned til høyst %s"},
	ExcelDate: {lessee.CodeInvalidDate,
		"Excel stored the date as a plain number; format the column as a date, or as text written YYYY-MM-DD",
		"Excel lagret datoen som et vanlig tall; formater kolonnen som dato, eller som tekst skrevet ÅÅÅÅ-MM-DD"},
	DateFormat: {lessee.CodeInvalidDate,
		"is not a date; write YYYY-MM-DD (2026-01-31) or DD.MM.YYYY (31.01.2026)",
		"er ikke en dato; skriv ÅÅÅÅ-MM-DD (2026-01-31) eller DD.MM.ÅÅÅÅ (31.01.2026)"},
	DateYear: {lessee.CodeInvalidDate,
		"year %s is out of range; write a year from %s to %s",
		"året %s er utenfor det tillatte; skriv et år fra %s til %s"},
	DateMonth: {lessee.CodeInvalidDate,
		"month %s does not exist; months run from 1 to 12",
		"måned %s finnes ikke; månedene går fra 1 til 12"},
	DateDay: {lessee.CodeInvalidDate,
		"day %s does not exist in %s",
		"dag %s finnes ikke i %s"},
	RaggedRow: {lessee.CodeRaggedRow,
		"row has %s fields, header has %s",
		"raden har %s felt, overskriftsraden har %s"},

	// Identifiers: package ident's rules, in its own English words.
	IdentEmpty: {"",
		"is empty",
		"er tom"},
	IdentScientific: {"",
		"Excel turned the number into scientific notation; format the column as text",
		"Excel gjorde tallet om til vitenskapelig notasjon (E+); formater kolonnen som tekst"},
	IdentNotDigits: {"",
		"must contain digits only, found %s at position %s",
		"kan bare inneholde sifre, men har %s i posisjon %s"},
	IdentNotDigitsSpace: {"",
		"must contain digits only, found a space at position %s",
		"kan bare inneholde sifre, men har et mellomrom i posisjon %s"},
	IdentOrgNrLength: {"",
		"must be 9 digits, got %s",
		"må ha 9 sifre, men har %s"},
	IdentOrgNrCheck: {"",
		"check digit does not match; check the organisation number for typing errors",
		"kontrollsifferet stemmer ikke; se etter skrivefeil i organisasjonsnummeret"},
	IdentLesseeLeadingZero: {lessee.CodeInvalidLesseeID,
		"has %s digits; looks like a leading zero was lost; format the column as text",
		"har %s sifre; det ser ut til at en null foran har falt bort; formater kolonnen som tekst"},
	IdentLesseeLength: {lessee.CodeInvalidLesseeID,
		"must be 9 digits (organisation number) or 11 digits (national identity number or D-number), got %s",
		"må ha 9 sifre (organisasjonsnummer) eller 11 sifre (fødselsnummer eller D-nummer), men har %s"},
	IdentPersonLeadingZero: {lessee.CodeInvalidLesseeID,
		"must be 11 digits, got 10; looks like a leading zero was lost; format the column as text",
		"må ha 11 sifre, men har 10; det ser ut til at en null foran har falt bort; formater kolonnen som tekst"},
	IdentPersonLength: {lessee.CodeInvalidLesseeID,
		"must be 11 digits, got %s",
		"må ha 11 sifre, men har %s"},
	IdentPersonCheck: {lessee.CodeInvalidLesseeID,
		"check digits do not match; check the national identity number for typing errors",
		"kontrollsifrene stemmer ikke; se etter skrivefeil i fødselsnummeret"},
	IdentSynthetic: {lessee.CodeInvalidLesseeID,
		"is a synthetic test number, which this registry does not accept",
		"er et syntetisk testnummer, som dette registeret ikke godtar"},
	IdentCentury: {lessee.CodeInvalidLesseeID,
		"individual number does not fit the birth year; check the number for typing errors",
		"individnummeret passer ikke med fødselsåret; se etter skrivefeil i nummeret"},
	IdentDate: {lessee.CodeInvalidLesseeID,
		"the date part is not a real calendar date; check the number for typing errors",
		"datodelen er ikke en gyldig dato; se etter skrivefeil i nummeret"},
	IdentRegCharacter: {lessee.CodeInvalidRegNumber,
		"character %s at position %s is not allowed; use letters A–Z, Æ, Ø, Å and digits",
		"tegnet %s i posisjon %s er ikke tillatt; bruk bokstavene A–Z, Æ, Ø, Å og sifre"},
	IdentRegLength: {lessee.CodeInvalidRegNumber,
		"must be 2 to 7 letters and digits, got %s",
		"må ha 2 til 7 bokstaver og sifre, men har %s"},
	IdentVINLetter: {lessee.CodeInvalidVIN,
		"letter %s at position %s is never used in a VIN (no I, O or Q); did you mean %s?",
		"bokstaven %s i posisjon %s brukes aldri i et understellsnummer (ingen I, O eller Q); mente du %s?"},
	IdentVINCharacter: {lessee.CodeInvalidVIN,
		"character %s at position %s is not allowed in a VIN; use digits and letters A–Z",
		"tegnet %s i posisjon %s er ikke tillatt i et understellsnummer; bruk sifre og bokstavene A–Z"},
	IdentVINLength: {lessee.CodeInvalidVIN,
		"must be 17 characters, got %s",
		"må ha 17 tegn, men har %s"},

	// Authority.
	OperationNotKnown: {lessee.CodeInvalidOperation,
		"is not a known operation; write add or remove",
		"er ikke en kjent operasjon; skriv add eller remove"},
	TermsOwn: {lessee.CodeTermsNotAccepted,
		"the submitter has not accepted the lessee API agreement; accept it before changing lessees of your own vehicles",
		"innsenderen har ikke godtatt avtalen om leasingtaker-API; godta den før dere endrer leasingtakere på egne kjøretøy"},
	TermsOwnOrThirdParty: {lessee.CodeTermsNotAccepted,
		"the submitter has not accepted the lessee API agreement; accept it before changing lessees of your own vehicles, or fill on_behalf_of to act for a fleet owner",
		"innsenderen har ikke godtatt avtalen om leasingtaker-API; godta den før dere endrer leasingtakere på egne kjøretøy, eller fyll ut on_behalf_of for å handle på vegne av en flåteeier"},
	NotFleetOwnerSelf: {lessee.CodeNotFleetOwner,
		"the submitter does not hold the fleet-owner role, which changing lessees needs; to act for a fleet owner, fill on_behalf_of",
		"innsenderen har ikke rollen flåteeier, som trengs for å endre leasingtakere; fyll ut on_behalf_of for å handle på vegne av en flåteeier"},
	TermsThirdParty: {lessee.CodeTermsNotAccepted,
		"the submitter has not accepted the third-party agreement, which acting for a fleet owner needs; accept it first",
		"innsenderen har ikke godtatt tredjepartsavtalen, som trengs for å handle på vegne av en flåteeier; godta den først"},
	NotFleetOwner: {lessee.CodeNotFleetOwner,
		"%s does not hold the fleet-owner role; check the organisation number",
		"%s har ikke rollen flåteeier; kontroller organisasjonsnummeret"},
	FleetOwnerTerms: {lessee.CodeTermsNotAccepted,
		"the fleet owner %s has not accepted the lessee API agreement; ask them to accept it",
		"flåteeieren %s har ikke godtatt avtalen om leasingtaker-API; be flåteeieren godta den"},
	NoDelegation: {lessee.CodeNoDelegation,
		"the fleet owner %s has not delegated the lessee right to the submitter; ask them to delegate it",
		"flåteeieren %s har ikke delegert retten til å endre leasingtaker til innsenderen; be flåteeieren delegere den"},
	DelegationRevoked: {lessee.CodeDelegationExpired,
		"the delegation from fleet owner %s was revoked on %s; ask the fleet owner to delegate again",
		"delegeringen fra flåteeier %s ble trukket tilbake %s; be flåteeieren delegere på nytt"},
	DelegationRevokedFrom: {lessee.CodeDelegationExpired,
		"the delegation from fleet owner %s is revoked from %s, before the effective date %s",
		"delegeringen fra flåteeier %s er trukket tilbake fra %s, før virkningsdatoen %s"},
	DelegationNotYetValid: {lessee.CodeDelegationExpired,
		"the delegation from fleet owner %s is not yet valid on the effective date %s; it starts on %s",
		"delegeringen fra flåteeier %s gjelder ennå ikke på virkningsdatoen %s; den gjelder fra %s"},
	DelegationExpired: {lessee.CodeDelegationExpired,
		"the delegation from fleet owner %s has expired: it ended on %s, before the effective date %s",
		"delegeringen fra flåteeier %s er utløpt: den gjaldt til og med %s, før virkningsdatoen %s"},

	// The vehicle.
	VehicleNotFoundBoth: {lessee.CodeVehicleNotFound,
		"no vehicle with this vin or registration_number is registered; check both",
		"det er ikke registrert noe kjøretøy med denne vin eller dette registration_number; kontroller begge"},
	VehicleNotFoundVIN: {lessee.CodeVehicleNotFound,
		"no vehicle with this vin is registered; check it",
		"ingen kjøretøy med dette understellsnummeret er registrert; kontroller det"},
	VehicleNotFoundReg: {lessee.CodeVehicleNotFound,
		"no vehicle with this registration number is registered; check it, or give the vin",
		"ingen kjøretøy med dette registreringsnummeret er registrert; kontroller det, eller oppgi vin"},
	RegVINMismatch: {lessee.CodeRegVINMismatch,
		"does not belong to the vehicle with this vin; check both, or leave one empty",
		"hører ikke til kjøretøyet med denne vin; kontroller begge, eller la en av dem stå tom"},
	NotOwner: {lessee.CodeNotOwner,
		"the vehicle is not registered to fleet owner %s; check the vehicle and on_behalf_of",
		"kjøretøyet er ikke registrert på flåteeier %s; kontroller kjøretøyet og on_behalf_of"},
	NotOwnerYet: {lessee.CodeNotOwner,
		"fleet owner %s owns the vehicle only from %s, after the effective date %s",
		"flåteeier %s eier kjøretøyet først fra %s, som er etter virkningsdatoen %s"},

	// The lessee state.
	// An overlap names the other period's dates, never its lessee; the
	// second argument is one of the Overlap hints below, which says what
	// would fix the row.
	ConflictOverlapOpen: {lessee.CodeLesseeConflict,
		"overlaps the lessee registered from %s with no end date; %s",
		"overlapper med leasingtakeren som er registrert fra %s uten sluttdato; %s"},
	ConflictOverlapTo: {lessee.CodeLesseeConflict,
		"overlaps the lessee registered from %s to %s; %s",
		"overlapper med leasingtakeren som er registrert fra %s til %s; %s"},
	OverlapEndBy: {"",
		"give an end_date no later than %s, the day that period begins",
		"oppgi en end_date som ikke er senere enn %s, dagen den perioden begynner"},
	OverlapRemoveFirst: {"",
		"end that period first with a remove on %s (a remove row earlier in the file works)",
		"avslutt den perioden først med en remove per %s (en remove-rad tidligere i filen holder)"},
	OverlapStartFrom: {"",
		"give a start_date no earlier than %s, the day that period ends",
		"oppgi en start_date som ikke er tidligere enn %s, dagen den perioden slutter"},
	OverlapSnapshotNoEnd: {"",
		"a snapshot row's lease has no end date, so it would run into that period; record a lease that ends before it with a change file",
		"et leieforhold i en snapshot-rad har ingen sluttdato og ville derfor gått inn i den perioden; registrer et leieforhold som slutter før den, med en endringsfil"},
	OverlapOneLessee: {"",
		"a vehicle has one lessee on any day; correct the dates",
		"et kjøretøy har bare én leasingtaker på en gitt dag; rett datoene"},
	// A row over two or more periods: their dates (a List of PeriodFromTo,
	// PeriodFromOpen and OverlapMore), never a remove, which would end
	// only the one in force.
	ConflictOverlapMany: {lessee.CodeLesseeConflict,
		"overlaps %s lessee periods registered %s; a vehicle has one lessee on any day, so give dates that overlap none of them",
		"overlapper med %s leasingperioder som er registrert %s; et kjøretøy har bare én leasingtaker på en gitt dag, så oppgi datoer som ikke overlapper noen av dem"},
	PeriodFromTo: {"",
		"from %s to %s",
		"fra %s til %s"},
	PeriodFromOpen: {"",
		"from %s with no end date",
		"fra %s uten sluttdato"},
	OverlapMore: {"",
		"%s more",
		"%s til"},
	ConflictEndOpen: {lessee.CodeLesseeConflict,
		"this lessee is registered from %s with no end date; to end the period, use remove",
		"denne leasingtakeren er registrert fra %s uten sluttdato; bruk remove for å avslutte perioden"},
	ConflictEndTo: {lessee.CodeLesseeConflict,
		"this lessee is registered from %s to %s; to end the period, use remove",
		"denne leasingtakeren er registrert fra %s til %s; bruk remove for å avslutte perioden"},
	AddUnchanged: {"",
		"the registry already has this lessee from %s; nothing changed",
		"registeret har allerede denne leasingtakeren fra %s; ingenting er endret"},
	AddedOpen: {"",
		"lessee added from %s with no end date",
		"leasingtaker lagt til fra %s uten sluttdato"},
	AddedTo: {"",
		"lessee added from %s to %s",
		"leasingtaker lagt til fra %s til %s"},
	RemoveUnchanged: {"",
		"the lessee period already ends on %s; nothing changed",
		"leasingperioden slutter allerede %s; ingenting er endret"},
	RemoveEndBeforeStart: {lessee.CodeEndBeforeStart,
		"%s is not after the start of the open lessee period (%s); correct end_date",
		"%s er ikke etter starten på den åpne leasingperioden (%s); rett end_date"},
	LesseeMismatch: {lessee.CodeLesseeMismatch,
		"does not match the vehicle's active lessee; give the active lessee's id, or leave lessee_id empty",
		"stemmer ikke med kjøretøyets aktive leasingtaker; oppgi den aktive leasingtakerens id, eller la lessee_id stå tom"},
	NoActiveLessee: {lessee.CodeNoActiveLessee,
		"the vehicle has no active lessee on %s; there is nothing to remove",
		"kjøretøyet har ingen aktiv leasingtaker per %s; det er ingenting å fjerne"},
	Removed: {"",
		"lessee removed with end date %s",
		"leasingtaker fjernet med sluttdato %s"},
	SubmitterNoTerms: {lessee.CodeTermsNotAccepted,
		"organisation %s has not accepted the lessee API agreement or the third-party agreement",
		"organisasjon %s har verken godtatt avtalen om leasingtaker-API eller tredjepartsavtalen"},

	// Snapshots.
	DuplicateVehicle: {lessee.CodeDuplicateVehicle,
		"an earlier row of the file names this vehicle; a snapshot gives each vehicle once, so keep one of the rows",
		"en tidligere rad i filen gjelder samme kjøretøy; en snapshot-fil skal ha hvert kjøretøy bare én gang, så behold én av radene"},
	SnapshotStartEmpty: {lessee.CodeMissingField,
		"is empty; a snapshot row needs the date the lease starts where its lessee is not the vehicle's lessee in the registry on %s",
		"er tom; en snapshot-rad trenger datoen leieforholdet starter når leasingtakeren ikke er kjøretøyets leasingtaker i registeret per %s"},
	KeepNoLessee: {"",
		"the vehicle has no lessee on %s, as the snapshot says; nothing changed",
		"kjøretøyet har ingen leasingtaker per %s, slik snapshot-filen sier; ingenting er endret"},
	KeepLessee: {"",
		"the registry already has this lessee, from %s; nothing changed",
		"registeret har allerede denne leasingtakeren, fra %s; ingenting er endret"},
	SnapshotRemoveSameDay: {lessee.CodeEndBeforeStart,
		"is empty, but the vehicle's lessee period starts on %s, the processing date, and cannot end the day it starts; give that lessee, or end the period later with a change file",
		"er tom, men kjøretøyets leasingperiode starter %s, som er behandlingsdatoen, og kan ikke slutte samme dag som den starter; oppgi den leasingtakeren, eller avslutt perioden senere med en endringsfil"},
	SnapshotOperation: {lessee.CodeInvalidOperation,
		"%s is not an operation a snapshot derives",
		"%s er ikke en operasjon som en snapshot-fil gir"},
	SnapshotEndedConflict: {lessee.CodeLesseeConflict,
		"the vehicle has a lessee period that runs past %s and ended on %s; give a start_date on or after %s",
		"kjøretøyet har en leasingperiode som varte forbi %s og sluttet %s; oppgi en start_date som er %s eller senere"},
	ReplaceEndBeforeStart: {lessee.CodeEndBeforeStart,
		"%s is not after the start of the vehicle's current lessee period (%s); correct start_date",
		"%s er ikke etter starten på kjøretøyets nåværende leasingperiode (%s); rett start_date"},
	ReplaceOverlap: {lessee.CodeLesseeConflict,
		"the registry already has this lessee from %s while another lessee's period runs past that date; contact the registry to correct the periods",
		"registeret har allerede denne leasingtakeren fra %s, mens en annen leasingtakers periode varer forbi den datoen; kontakt registeret for å få rettet periodene"},
	Replaced: {"",
		"lessee replaced from %[1]s: the previous lessee's period ends on %[1]s and this lessee's begins, with no end date",
		"leasingtaker byttet fra %[1]s: den forrige leasingtakerens periode slutter %[1]s, og denne leasingtakerens periode begynner, uten sluttdato"},
	MixedFleetOwners: {lessee.CodeMixedFleetOwners,
		"row %s: on_behalf_of names fleet owner %s, while row %s is for fleet owner %s; a snapshot states the whole fleet of one fleet owner: make one file per fleet owner",
		"rad %s: on_behalf_of gjelder flåteeier %s, mens rad %s gjelder flåteeier %s; en snapshot-fil beskriver hele flåten til én flåteeier: lag én fil per flåteeier"},
	TooManyRemovals: {lessee.CodeTooManyRemovals,
		"the snapshot leaves out %s of the %s vehicles of fleet owner %s that have a lessee (%s%%), more than the limit of %s%%; nothing was applied. The vehicles whose lessee it would remove are listed below: add the ones it missed to the snapshot, or remove their lessees with a change file first",
		"snapshot-filen utelater %s av de %s kjøretøyene til flåteeier %s som har leasingtaker (%s %%), mer enn grensen på %s %%; ingenting er endret. Kjøretøyene som ville fått leasingtakeren fjernet, står nedenfor: legg de som mangler inn i snapshot-filen, eller fjern leasingtakerne deres med en endringsfil først"},
	AbsentFromSnapshot: {lessee.CodeTooManyRemovals,
		"absent from the snapshot: its lessee would be removed; nothing was applied",
		"mangler i snapshot-filen: leasingtakeren ville blitt fjernet; ingenting er endret"},

	// The file as a whole.
	InvalidKey: {lessee.CodeInvalidKey,
		"invalid object key: %s",
		"ugyldig plassering av filen (objektnøkkel): %s"},
	FileLargerThanLimit: {lessee.CodeFileTooLarge,
		"the file is larger than the limit of %s bytes; split it into smaller files",
		"filen er større enn grensen på %s byte; del den opp i mindre filer"},
	ProcessingStopped: {lessee.CodeProcessingFailed,
		"processing stopped after %s of %s rows because of a technical fault; the rows above were processed as shown; upload the file again to process the rest",
		"behandlingen stoppet etter %s av %s rader på grunn av en teknisk feil; radene over er behandlet som vist; last opp filen på nytt for å behandle resten"},
	ProcessingFailed: {lessee.CodeProcessingFailed,
		"the file could not be processed because of a technical fault; upload it again",
		"filen kunne ikke behandles på grunn av en teknisk feil; last den opp på nytt"},
	SourceGone: {lessee.CodeProcessingFailed,
		"the file was deleted or replaced before it could be read, so nothing was applied; a newer upload under the same name gets a receipt of its own",
		"filen ble slettet eller erstattet før den kunne leses, så ingenting er endret; en nyere opplasting med samme navn får sin egen kvittering"},
	RowPrefix: {"",
		"row %s: %s",
		"rad %s: %s"},
	NoHeaderRow: {lessee.CodeMissingHeader,
		"the file has no header row; the first row must name the columns",
		"filen har ingen overskriftsrad; den første raden må inneholde kolonnenavnene"},
	TooManyRowsFile: {lessee.CodeTooManyRows,
		"the file has more than %s data rows; split it into smaller files",
		"filen har mer enn %s datarader; del den opp i mindre filer"},
	TooManyRowsSheet: {lessee.CodeTooManyRows,
		"the sheet has more than %s data rows; split it into smaller files",
		"arket har mer enn %s datarader; del det opp i mindre filer"},
	CSVBroken: {lessee.CodeUnsupportedFormat,
		`row %s: the file cannot be read as CSV: %s; a field that holds the delimiter, a quote or a line break must be in quotes, with quotes inside doubled ("")`,
		`rad %s: filen kan ikke leses som CSV: %s; et felt som inneholder skilletegnet, et anførselstegn eller et linjeskift, må stå i anførselstegn, og anførselstegn inne i feltet må dobles ("")`},
	CSVBrokenInColumn: {lessee.CodeUnsupportedFormat,
		`row %s, column %s: the file cannot be read as CSV: %s; a field that holds the delimiter, a quote or a line break must be in quotes, with quotes inside doubled ("")`,
		`rad %s, kolonne %s: filen kan ikke leses som CSV: %s; et felt som inneholder skilletegnet, et anførselstegn eller et linjeskift, må stå i anførselstegn, og anførselstegn inne i feltet må dobles ("")`},
	CSVQuotingBroken: {"",
		"the quoting is broken",
		"anførselstegnene er feil satt"},
	CSVBareQuote: {"",
		`a quote (") appears inside a field that does not start with one`,
		`et anførselstegn (") står inne i et felt som ikke begynner med et`},
	CSVQuoteNotClosed: {"",
		`a quoted field is not closed properly (a missing or extra ")`,
		`et felt i anførselstegn er ikke riktig avsluttet (en " mangler eller er til overs)`},
	CSVTextAfterQuote: {"",
		`a quoted field has text after its closing quote (a missing or extra ")`,
		`et felt i anførselstegn har tekst etter det avsluttende anførselstegnet (en " mangler eller er til overs)`},
	CSVQuoteNeverClosed: {"",
		`a quoted field is never closed (a missing ")`,
		`et felt i anførselstegn blir aldri avsluttet (en " mangler)`},
	UTF16HalfCharacter: {lessee.CodeEncodingError,
		"line %s: the UTF-16 text ends in half a character; save the file again as CSV UTF-8",
		"linje %s: UTF-16-teksten slutter med et halvt tegn; lagre filen på nytt som CSV UTF-8"},
	UTF16Surrogate: {lessee.CodeEncodingError,
		"line %s: the UTF-16 text holds a broken character (unpaired surrogate); save the file again as CSV UTF-8",
		"linje %s: UTF-16-teksten inneholder et ødelagt tegn (surrogat uten par); lagre filen på nytt som CSV UTF-8"},
	MixedEncodings: {lessee.CodeEncodingError,
		"line %s: the text is neither valid UTF-8 nor Windows-1252 (mixed encodings); save the file again as CSV UTF-8",
		"linje %s: teksten er verken gyldig UTF-8 eller Windows-1252 (blandet tegnkoding); lagre filen på nytt som CSV UTF-8"},
	UndefinedBytes: {lessee.CodeEncodingError,
		"line %s: bytes that are neither UTF-8 nor Windows-1252; save the file again as CSV UTF-8",
		"linje %s: byte som verken er UTF-8 eller Windows-1252; lagre filen på nytt som CSV UTF-8"},
	RowMoreColumnsThan: {lessee.CodeTooManyColumns,
		"row %s has more columns than the limit of %s",
		"rad %s har flere kolonner enn grensen på %s"},
	RowColumns: {lessee.CodeTooManyColumns,
		"row %s has %s columns; the limit is %s",
		"rad %s har %s kolonner; grensen er %s"},
	HeaderColumns: {lessee.CodeTooManyColumns,
		"row %s: the header has %s columns; the limit is %s",
		"rad %s: overskriftsraden har %s kolonner; grensen er %s"},
	CellLongerThan: {lessee.CodeCellTooLarge,
		"row %s, column %s: the cell is longer than the limit of %s bytes",
		"rad %s, kolonne %s: cellen er lengre enn grensen på %s byte"},
	CellLongerThanOpen: {lessee.CodeCellTooLarge,
		`row %s, column %s: the cell is longer than the limit of %s bytes (is a quote (") left open?)`,
		`rad %s, kolonne %s: cellen er lengre enn grensen på %s byte (står et anførselstegn (") åpent?)`},
	CellBytes: {lessee.CodeCellTooLarge,
		"row %s, column %s: the cell has %s bytes; the limit is %s",
		"rad %s, kolonne %s: cellen har %s byte; grensen er %s"},
	NotATable: {lessee.CodeUnsupportedFormat,
		"the file is %s, not a table; upload .xlsx or CSV",
		"filen er %s, ikke en tabell; last opp .xlsx eller CSV"},
	NotText: {lessee.CodeUnsupportedFormat,
		"the file is not text (it holds NUL bytes) and not an .xlsx workbook; upload .xlsx or CSV",
		"filen er verken tekst (den inneholder NUL-byte) eller en .xlsx-arbeidsbok; last opp .xlsx eller CSV"},
	PasswordProtected: {lessee.CodeEncryptedWorkbook,
		"the workbook is password protected; save it without a password",
		"arbeidsboken er passordbeskyttet; lagre den uten passord"},
	LegacyXLS: {lessee.CodeUnsupportedFormat,
		"legacy .xls; save as .xlsx or CSV",
		"gammelt .xls-format; lagre som .xlsx eller CSV"},
	DuplicateColumn: {lessee.CodeDuplicateColumn,
		"row %s: columns %s and %s both mean %s; keep one of them",
		"rad %s: kolonnene %s og %s betyr begge %s; behold én av dem"},
	NotAHeader: {lessee.CodeMissingHeader,
		"row %s is not a header: no column name is recognised; the first row must name the columns, for example %s",
		"rad %s er ingen overskriftsrad: ingen kolonnenavn er gjenkjent; den første raden må inneholde kolonnenavnene, for eksempel %s"},
	HeaderLacks: {lessee.CodeMissingColumn,
		"row %s: the header lacks %s",
		"rad %s: overskriftsraden mangler %s"},
	MissingOperationColumn: {"",
		"column %s (accepted names: %s)",
		"kolonnen %s (godtatte navn: %s)"},
	MissingVehicleColumn: {"",
		"column %s or %s (accepted names: %s; or %s)",
		"kolonnen %s eller %s (godtatte navn: %s; eller %s)"},
	MissingLesseeIDColumn: {"",
		"column %s (accepted names: %s), which a snapshot needs even where it is empty",
		"kolonnen %s (godtatte navn: %s), som en snapshot-fil trenger også der den er tom"},
	FileBytes: {lessee.CodeFileTooLarge,
		"the file is %s bytes; the limit is %s bytes",
		"filen er på %s byte; grensen er %s byte"},
	FileEmpty: {lessee.CodeMissingHeader,
		"the file is empty; the first row must be a header",
		"filen er tom; den første raden må være en overskriftsrad"},
	NotWorkbook: {lessee.CodeUnsupportedFormat,
		"the file is a ZIP archive but not a readable .xlsx workbook; save it as .xlsx or CSV",
		"filen er et ZIP-arkiv, men ikke en lesbar .xlsx-arbeidsbok; lagre den som .xlsx eller CSV"},
	ExpandsTooLarge: {lessee.CodeExpandsTooLarge,
		"the workbook expands to more than %s bytes when unzipped; remove unused sheets, images and formatting or split the file",
		"arbeidsboken blir større enn %s byte når den pakkes ut; fjern ubrukte ark, bilder og formatering, eller del opp filen"},
	NoSheets: {lessee.CodeMissingHeader,
		"the workbook has no sheets",
		"arbeidsboken har ingen ark"},
	SheetNotTable: {lessee.CodeUnsupportedFormat,
		"sheet %s cannot be read as a table (is it a chart sheet?)",
		"arket %s kan ikke leses som en tabell (er det et diagramark?)"},
	SheetNoHeader: {lessee.CodeMissingHeader,
		"sheet %s has no header row; the first row must name the columns",
		"arket %s har ingen overskriftsrad; den første raden må inneholde kolonnenavnene"},
	WorksheetDamaged: {lessee.CodeUnsupportedFormat,
		"the worksheet is damaged; open and save it again in Excel",
		"regnearket er skadet; åpne det og lagre det på nytt i Excel"},
	WorksheetDamagedAfter: {lessee.CodeUnsupportedFormat,
		"the worksheet is damaged after row %s; open and save it again in Excel",
		"regnearket er skadet etter rad %s; åpne det og lagre det på nytt i Excel"},
	RowUnreadable: {lessee.CodeUnsupportedFormat,
		"row %s cannot be read: %s",
		"rad %s kan ikke leses: %s"},

	KindPDF:      {"", "a PDF document", "et PDF-dokument"},
	KindPNG:      {"", "a PNG image", "et PNG-bilde"},
	KindJPEG:     {"", "a JPEG image", "et JPEG-bilde"},
	KindGIF:      {"", "a GIF image", "et GIF-bilde"},
	KindGzip:     {"", "a gzip archive", "et gzip-arkiv"},
	Kind7Zip:     {"", "a 7-Zip archive", "et 7-Zip-arkiv"},
	KindRAR:      {"", "a RAR archive", "et RAR-arkiv"},
	KindEmptyZIP: {"", "an empty ZIP archive", "et tomt ZIP-arkiv"},
	KindRTF:      {"", "an RTF document", "et RTF-dokument"},
	KindXML:      {"", "an XML document", "et XML-dokument"},

	// The single-change API.
	BodyTooLarge: {"",
		"the body is larger than %s bytes",
		"innholdet i forespørselen er større enn %s byte"},
	BodyNotJSON: {"",
		"the body is not JSON: %s",
		"innholdet i forespørselen er ikke JSON: %s"},
	// Where a body stops being JSON, written into BodyNotJSON.
	JSONInvalidAt: {"",
		"an unexpected character at byte %s",
		"et uventet tegn ved byte %s"},
	JSONEndsEarly: {"",
		"it ends before the JSON value is complete",
		"det slutter før JSON-verdien er fullstendig"},
	JSONInvalid: {"",
		"it cannot be read as JSON",
		"det kan ikke leses som JSON"},
	BodyNotObject: {"",
		"the body must be a JSON object with the change's fields",
		"innholdet i forespørselen må være et JSON-objekt med feltene til endringen"},
	BodyFieldTwice: {"",
		"%s and %s both give %s; give it once",
		"%s og %s angir begge %s; angi den bare én gang"},
	BodyMoreThanOne: {"",
		"the body holds more than one JSON value",
		"innholdet i forespørselen har mer enn én JSON-verdi"},
	BodyNoField: {"",
		"the object names no field of a change; give operation and registration_number or vin",
		"objektet har ingen av feltene til en endring; oppgi operation og registration_number eller vin"},
	BodyUnknownField: {"",
		"unknown field %s; the fields are those of a change file's columns",
		"ukjent felt %s; feltene er de samme som kolonnene i en endringsfil"},
	BodyNotString: {"",
		"%s must be a string",
		"%s må være en tekststreng"},
	BodyLesseeNotObject: {"",
		"%s must be an object of strings",
		"%s må være et objekt med tekststrenger"},
	BodyLesseeUnknown: {"",
		"%s holds unknown field %s; give fodselsnummer or organisasjonsnummer",
		"%s har det ukjente feltet %s; oppgi fodselsnummer eller organisasjonsnummer"},
	BodyLesseeTwoIDs: {"",
		"%s gives more than one identifier; give one",
		"%s angir mer enn én identifikator; angi bare én"},
	BodyUnreadable: {"",
		"the body could not be read",
		"innholdet i forespørselen kunne ikke leses"},
	IdempotencyKeyLong: {"",
		"Idempotency-Key is longer than %s bytes",
		"Idempotency-Key er lengre enn %s byte"},
	IdempotencyKeyReused: {"",
		"Idempotency-Key was used within the last 24 hours for another request; use a new key for a new change",
		"Idempotency-Key er brukt til en annen forespørsel i løpet av de siste 24 timene; bruk en ny nøkkel for en ny endring"},
	RateLimited: {"",
		"more than %s requests per second from organisation %s; try again later",
		"mer enn %s forespørsler per sekund fra organisasjon %s; prøv igjen senere"},
	TokenKeysUnavailable: {"",
		"the token issuer's keys cannot be fetched now; try again shortly",
		"nøklene til den som utsteder tokenet, kan ikke hentes nå; prøv igjen om litt"},
	// The token's fault: the Token messages below, in the caller's
	// language, or nothing more when the authenticator gives no message.
	Unauthenticated: {"",
		"unauthenticated",
		"ikke autentisert: tokenet mangler, er ugyldig eller er utløpt"},
	UnauthenticatedWhy: {"",
		"unauthenticated: %s",
		"ikke autentisert (tokenet ble avvist: %s)"},
	Forbidden: {"",
		"forbidden",
		"ingen tilgang: tokenet mangler scopet som kreves"},
	ForbiddenWhy: {"",
		"forbidden: %s",
		"ingen tilgang (%s)"},
	TechnicalFault: {"",
		"a technical fault; try again",
		"en teknisk feil; prøv igjen"},
	VehicleNotVisible: {"",
		"no vehicle with this registration number or vin that you may see",
		"ingen kjøretøy med dette registreringsnummeret eller denne vin som du har tilgang til"},

	TokenExpired: {"",
		"token expired",
		"tokenet er utløpt"},
	TokenMissing: {"",
		"missing bearer token",
		"tokenet mangler: send Authorization: Bearer <token>"},
	TokenNotBearer: {"",
		"authorization scheme must be Bearer",
		"Authorization må bruke ordningen Bearer"},
	TokenTooLong: {"",
		"token too long",
		"tokenet er for langt"},
	TokenMalformed: {"",
		"malformed token",
		"tokenet har feil format"},
	TokenAlgorithm: {"",
		"token algorithm not allowed",
		"tokenets algoritme er ikke tillatt"},
	TokenNoKeyID: {"",
		"token has no key id",
		"tokenet har ingen nøkkel-id (kid)"},
	TokenKeyNotForSigning: {"",
		"signing key not for signatures",
		"signeringsnøkkelen er ikke for signaturer"},
	TokenKeyUnusable: {"",
		"signing key not usable",
		"signeringsnøkkelen kan ikke brukes"},
	TokenAlgorithmMismatch: {"",
		"token algorithm does not match its key",
		"tokenets algoritme passer ikke til nøkkelen"},
	TokenUnknownKey: {"",
		"unknown signing key",
		"ukjent signeringsnøkkel"},
	TokenNotYetValid: {"",
		"token not yet valid",
		"tokenet er ikke gyldig ennå"},
	TokenIssuedInFuture: {"",
		"token issued in the future",
		"tokenet er utstedt fram i tid"},
	TokenWrongIssuer: {"",
		"wrong token issuer",
		"tokenet er fra feil utsteder"},
	TokenWrongAudience: {"",
		"wrong token audience",
		"tokenet har feil mottaker (audience)"},
	TokenNoExpiry: {"",
		"token has no expiry",
		"tokenet har ingen utløpstid"},
	TokenBadSignature: {"",
		"bad token signature",
		"tokenets signatur er ugyldig"},
	TokenNoConsumer: {"",
		"token has no consumer",
		"tokenet har ingen consumer"},
	TokenBadConsumer: {"",
		"bad consumer in token",
		"tokenets consumer er ugyldig"},
	TokenLacksScope: {"",
		"token lacks scope %s",
		"tokenet mangler scopet %s"},
}
