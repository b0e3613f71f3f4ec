// Package corpus holds no code, only tests: it runs every file of the
// real-world input corpus in testdata/corpus (at the module root) through
// the path an upload takes — ingest, validate, sqlstore on SQLite loaded with
// the demo registry, receipt — and compares the receipt and a summary of
// what ingest learnt with golden files kept next to each input.
//
//	go test ./internal/corpus                      compare with the goldens
//	go test ./internal/corpus -update              rewrite the goldens
//	go test ./internal/corpus -run Generate -generate
//	                                               rewrite the crafted inputs
//
// testdata/corpus/README.md lists the files and how each was made.
package corpus
