// Package examples holds the demo registry and sample change files, so
// that `lessee serve` can load the demo registry into an empty embedded
// registry and tests can use the same files the README talks about.
//
//	registry/   enterprises.csv, terms.csv, vehicles.csv, delegations.csv
//	changes/    change files; NAME.expected.csv gives each row's status and code
//	snapshot/   a snapshot of the demo fleet of 912345602, its dry-run
//	            receipt, and the fleet's export as the demo registry has it
package examples

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed registry/*.csv changes/*.csv snapshot/*.csv
var files embed.FS

// FS returns the example files.
func FS() fs.FS { return files }

// WriteRegistry writes the demo registry import files into dir.
func WriteRegistry(dir string) error {
	entries, err := fs.ReadDir(files, "registry")
	if err != nil {
		return fmt.Errorf("read demo registry: %w", err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(files, "registry/"+e.Name())
		if err != nil {
			return fmt.Errorf("read demo registry: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			return fmt.Errorf("write demo registry: %w", err)
		}
	}
	return nil
}
