#!/bin/sh
# Writes the corpus inputs made by LibreOffice Calc (Debian's
# libreoffice-calc-nogui, headless) from CSV inputs the generator wrote:
#   go test ./internal/corpus -run Generate -generate && sh testdata/corpus/libreoffice.sh
# CSV import filter options: separator, quote, charset (76 UTF-8,
# 1 windows-1252), first line, column formats (col/format; 2 = text),
# language (1044 = Norwegian Bokmål, so dd.mm.yyyy reads as a date).
set -eu
cd "$(dirname "$0")/inbox/912345602"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lo() { # lo INPUT FILTER_OPTIONS TARGET OUTPUT
	cp "$1" "$tmp/in.csv"
	soffice -env:UserInstallation="file://$tmp/profile" --headless --infilter="CSV:$2" \
		--convert-to "$3" --outdir "$tmp/out" "$tmp/in.csv" >/dev/null
	mv "$tmp/out/in.${3%%:*}" "$4"
}
# Types as LibreOffice guesses them: identity numbers become numbers (a
# leading zero lost), dates become date cells.
lo en-utf8-comma-lf.csv 44,34,76,1,,1044 xlsx libreoffice-guessed-types.xlsx
# The fix a user applies: the lessee_id column imported as text.
lo en-utf8-comma-lf.csv 44,34,76,1,4/2,1044 xlsx libreoffice-ids-as-text.xlsx
lo no-windows1252-semicolon-crlf.csv 59,34,1,1,4/2,1044 xlsx libreoffice-from-windows1252.xlsx
lo quoted-multiline.csv 44,34,76,1,4/2,1044 xlsx libreoffice-multiline.xlsx
lo all-outcomes.csv 44,34,76,1,4/2/8/2,1044 xlsx libreoffice-all-outcomes.xlsx
# Not tables we read: legacy Excel 97 and a PDF, whatever they are named.
lo en-utf8-comma-lf.csv 44,34,76,1,,1044 'xls:MS Excel 97' libreoffice-excel97.xls
cp libreoffice-excel97.xls excel97-named-csv.csv
lo en-utf8-comma-lf.csv 44,34,76,1,,1044 pdf libreoffice-export-pdf.csv.pdf
mv libreoffice-export-pdf.csv.pdf pdf-named-csv.csv
