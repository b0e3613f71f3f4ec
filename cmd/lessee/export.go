package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/export"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/worker"
)

// The adapters satisfy what fleet exports need of them.
var (
	_ worker.ExportStore  = (*sqlstore.Store)(nil)
	_ export.ObjectWriter = (*s3store.Client)(nil)
)

// exportProgressMin is how many fleets `export --all` needs before it
// shows a progress bar.
const exportProgressMin = 20

func runExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := newCommand("export", "lessee export (--as ORGNR | --all) [flags]", `Writes exports/<orgnr>/fleet.csv now for the fleet owner ORGNR, or for every
fleet owner, from the database (--database-url, or SQLite under --data) to the
service's S3 endpoint (--s3-listen, or --s3-endpoint). Prints one line per
fleet, tab-separated: orgnr, vehicles, key.

Examples:
  lessee export --as 912345602
  lessee export --all --database-url postgres://lessee@db/lessee --s3-endpoint https://s3.example.com`, stdout)
	var db databaseFlags
	db.register(cmd.fs)
	var c clientFlags
	c.registerS3(cmd.fs)
	as := cmd.fs.String("as", "", "organisation number of the fleet owner to export")
	all := cmd.fs.Bool("all", false, "export every fleet owner's fleet")
	if err := cmd.parse(args, getenv); err != nil {
		return err
	}
	if _, err := cmd.args(); err != nil {
		return err
	}
	if err := cmd.checkFlags(checkDatabaseURL(db.DatabaseURL)); err != nil {
		return err
	}
	switch {
	case *as != "" && *all:
		return cmd.usageErr("give --as ORGNR or --all, not both")
	case *as == "" && !*all:
		return cmd.usageErr("missing --as ORGNR or --all: which fleet owner to export, or every one")
	}
	if *as != "" {
		if err := ident.OrgNr(*as); err != nil {
			return cmd.usageErr("--as %q: %v", *as, err)
		}
	}

	store, err := db.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	orgnrs := []string{*as}
	if *all {
		if orgnrs, err = store.FleetOwners(ctx); err != nil {
			return err
		}
	} else {
		e, err := store.Enterprise(ctx, *as)
		switch {
		case lessee.ErrorCode(err) == lessee.ENOTFOUND:
			return fmt.Errorf("--as %s: no such enterprise in the registry", *as)
		case err != nil:
			return err
		case !e.FleetOwner:
			return fmt.Errorf("--as %s: %s is not a fleet owner, so it has no fleet to export", *as, *as)
		}
	}
	objects, err := c.objects(ctx)
	if err != nil {
		return err
	}
	w := export.New(store, objects, export.Config{})

	var bar *progressbar.ProgressBar
	if len(orgnrs) >= exportProgressMin {
		bar = progressbar.NewOptions(len(orgnrs),
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("fleets"),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		defer bar.Finish()
	}
	failed := 0
	for _, orgnr := range orgnrs {
		rows, err := w.Write(ctx, orgnr)
		if bar != nil {
			_ = bar.Clear() // the line below goes where the bar was; Add draws it again
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed++
			fmt.Fprintf(stderr, "lessee: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "%s\t%d\t%s\n", orgnr, rows, objectkey.Export(orgnr))
		}
		if bar != nil {
			_ = bar.Add(1)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d fleet exports failed", failed, len(orgnrs))
	}
	return nil
}
