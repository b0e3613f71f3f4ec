package main

import (
	"context"
	"errors"
	"flag"
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
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lessee export --as ORGNR | --all\n\nWrites exports/<orgnr>/fleet.csv now for the fleet owner ORGNR, or for every fleet owner,\nfrom the database (--database-url, or SQLite under --data) to the service's S3 endpoint.\nPrints one line per fleet, tab-separated: orgnr, vehicles, key.")
		fs.PrintDefaults()
	}
	var db databaseFlags
	db.register(fs)
	var c clientFlags // the S3 side of a client; no --server
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "http://127.0.0.1:9000", "S3 endpoint of the service")
	fs.StringVar(&c.AccessKey, "s3-access-key", defaultAccessKey, "S3 access key")
	fs.StringVar(&c.SecretKey, "s3-secret-key", defaultSecretKey, "S3 secret key")
	fs.StringVar(&c.Region, "s3-region", "us-east-1", "S3 region")
	fs.StringVar(&c.Bucket, "bucket", "lessee", "S3 bucket")
	as := fs.String("as", "", "organisation number of the fleet owner to export")
	all := fs.Bool("all", false, "export every fleet owner's fleet")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() != 0 || (*as == "") == !*all {
		fs.Usage()
		if *as != "" && *all {
			return errors.New("give --as ORGNR or --all, not both")
		}
		return flag.ErrHelp
	}
	if *as != "" {
		if err := ident.OrgNr(*as); err != nil {
			return fmt.Errorf("--as %q: %w", *as, err)
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
