// Package ingest turns the bytes of an uploaded file, already spooled to a
// local file, into lessee.RawRow records. It knows nothing of the registry:
// what a cell means is validate's business; ingest only says where a record
// came from and whether the file can be read as a table at all.
//
// # Pipeline
//
// The worker reads a file twice, and neither pass holds the file in memory:
//
//  1. Scan is the first pass. It detects the format, decodes, maps the header
//     and reads every record to check every limit and count the data rows.
//     A file that breaks a rule is refused here, before any row is applied,
//     so a refusal never leaves a file half done.
//  2. Open is the second pass. It repeats detection and the header and
//     returns a Table whose Next yields the records in file order. Scan is
//     Open plus a loop over Next, so the two passes agree by construction:
//     after a successful Scan, Next yields exactly Info.Rows records.
//
// ScanSpooled is Scan that also writes an XLSX file's records to a record
// spool, which OpenSpool reads back as the same Table for the later passes:
// parsing a workbook costs tens of times what reading the spool does.
//
// # Format
//
// The format comes from the bytes, never the name: a ZIP signature means
// XLSX; an OLE2 compound file is either an encrypted workbook (it holds an
// EncryptionInfo or EncryptedPackage stream) or a legacy .xls; PDF, images,
// archives and anything else with NUL bytes (other than UTF-16 with a BOM)
// are not tables; the rest is CSV text.
//
// CSV text is UTF-8 (a BOM is stripped), UTF-16 with a BOM, or, when the
// whole file is not valid UTF-8, Windows-1252 as Norwegian Excel writes it.
// The delimiter (';', ',' or tab) is sniffed from the header line, line ends
// may be CRLF, LF or a lone CR, and quoted fields may hold delimiters, quotes
// and line breaks. A quote inside a field that does not start with one is
// text (17" wheels), as Excel and LibreOffice read it. A cell is read as the
// file holds it, decoded to UTF-8: a line break inside a quoted field stays
// the LF, CRLF or lone CR it was (encoding/csv alone would make a CRLF LF),
// so that a receipt echoes a multi-line reference byte for byte; cell values
// are then trimmed (see Rows). Line numbers are those a spreadsheet shows:
// the header is row 1, a blank line is a row, and a line break inside a
// quoted cell is not.
//
// XLSX is read with excelize's streaming row iterator from the sheet named
// "lessees" (any case) or else the first sheet. Row numbers are the sheet's.
// Date-formatted cells become lessee.CellDate in YYYY-MM-DD (1900 and 1904
// date systems), other numbers lessee.CellNumber with their raw value, so
// that validate can refuse an identity number Excel has turned into a number
// instead of guessing its lost leading zeros.
//
// # Rows
//
// The header is the first non-blank row. Names match case-, accent- and
// separator-insensitively against English and Norwegian aliases; unknown
// columns are ignored and reported. Blank rows are skipped. Trailing empty
// cells are ignored; a record with more non-empty cells than the header still
// becomes a RawRow, with a RAGGED_ROW Problem, so that one bad line rejects
// only itself. Cell values are trimmed of surrounding spaces.
//
// Info.Header keeps the header row as written, and both readers implement
// OriginalTable, whose Original gives the record Next last returned as the
// file holds it, ignored columns included, so that an XLSX receipt can
// repeat the user's rows beside their outcomes.
//
// # Refusals
//
// A file-level failure is a *lessee.Error with a lessee code, a row or line where
// it applies, and a message for the person who uploaded the file:
//
//   - UNSUPPORTED_FORMAT: not CSV or XLSX (legacy .xls, PDF, images, other
//     binaries), a ZIP that is no workbook or whose entries inflate past
//     their declared sizes, or CSV quoting so broken that the rows cannot be
//     told apart (a quoted field never closed, or text after its closing
//     quote).
//   - ENCRYPTED_WORKBOOK: a password-protected workbook.
//   - ENCODING_ERROR: bytes that decode in none of the accepted encodings, or
//     a mix of UTF-8 and Windows-1252.
//   - MISSING_HEADER: an empty file, or a first row that names no known column.
//   - MISSING_COLUMN: no operation column, or neither registration_number nor
//     vin. DUPLICATE_COLUMN: two columns that mean the same thing.
//   - FILE_TOO_LARGE, TOO_MANY_ROWS, TOO_MANY_COLUMNS, CELL_TOO_LARGE: past a
//     Limits bound. EXPANDS_TOO_LARGE: an XLSX that unzips past its bound.
//
// Messages name rows and header names, never cell values, and mask anything
// in a header that looks like an identity number: a file without a header row
// puts data where the names belong.
package ingest
