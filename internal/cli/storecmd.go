package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/ordokafka/ordo/pkg/store/pgstore"
	"github.com/ordokafka/ordo/processors/postgres"
)

// StoreMigrateCmd is `ordo store migrate`: it creates the PostgreSQL
// store's tables (pgstore's schema: the inbox and the fences) and the
// postgres processor's table, or prints their SQL.
type StoreMigrateCmd struct {
	PostgresDSN string
	Table       string
	Inbox       string
	Fences      string
	Print       bool
	Timeout     time.Duration
	Out         io.Writer

	spec *storeSpec
}

func newStoreCmd(out io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Manage the idempotency stores (PostgreSQL's tables)",
		Example: `  ordo store migrate --postgres-dsn postgres://ordo@127.0.0.1:5432/ordo
  ordo store migrate --print`,
	}
	m := &StoreMigrateCmd{Out: out}
	migrate := &cobra.Command{
		Use:   "migrate --postgres-dsn DSN [--table T]",
		Short: "Create the PostgreSQL store's tables and the postgres processor's table (idempotent)",
		Long: `Create, if they do not exist, the tables of the PostgreSQL idempotency store
(the inbox and the fences: pkg/store/pgstore/schema.sql) and the table the postgres
processor upserts into. Safe to run again and from several places at once. With
--print, print the SQL instead, for teams that run migrations with their own tool.`,
		Example: `  ordo store migrate --postgres-dsn postgres://ordo@127.0.0.1:5432/ordo
  ordo store migrate --print --table orders_latest`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(m.Validate()); err != nil {
				return err
			}
			return m.Run(cmd.Context())
		},
	}
	f := migrate.Flags()
	f.StringVar(&m.PostgresDSN, "postgres-dsn", "", "PostgreSQL connection string (postgres://user[:password]@host:port/db); its password is never printed")
	f.StringVar(&m.Table, "table", defaultPostgresTable, "the postgres processor's table")
	f.StringVar(&m.Inbox, "inbox", pgstore.DefaultInbox, "the inbox table")
	f.StringVar(&m.Fences, "fences", pgstore.DefaultFences, "the fence table")
	f.BoolVar(&m.Print, "print", false, "print the SQL, connect to nothing")
	f.DurationVar(&m.Timeout, "timeout", 30*time.Second, "time allowed to connect and migrate")
	cmd.AddCommand(migrate)
	return cmd
}

// Validate checks the flags, connecting to nothing.
func (m *StoreMigrateCmd) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) { errs = append(errs, fmt.Errorf("--"+flag+" "+format, args...)) }
	for _, t := range []struct{ flag, name string }{{"table", m.Table}, {"inbox", m.Inbox}, {"fences", m.Fences}} {
		if err := pgstore.CheckTableName(t.name); err != nil {
			bad(t.flag, "%v", err)
		}
	}
	if m.Timeout <= 0 {
		bad("timeout", "must be > 0, got %s", m.Timeout)
	}
	if !m.Print {
		fc := &FileConfig{Processor: "postgres", PostgresDSN: m.PostgresDSN, PostgresTable: m.Table}
		m.spec = fc.checkStore(func(_, format string, args ...any) { bad("postgres-dsn", format, args...) })
	}
	return errors.Join(errs...)
}

// Run migrates, or prints the SQL.
func (m *StoreMigrateCmd) Run(ctx context.Context) error {
	opts := pgstore.Options{Inbox: m.Inbox, Fences: m.Fences}
	if m.Print {
		sql, err := pgstore.Schema(opts)
		if err != nil {
			return err
		}
		table, err := postgres.Schema(m.Table)
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Out, "%s\n-- The postgres processor's table.\n%s;\n", sql, table)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, m.spec.pg)
	if err != nil {
		return m.spec.scrubError(fmt.Errorf("postgres at %s: %w", m.spec.redacted, err))
	}
	defer pool.Close()
	if err := pgstore.Migrate(ctx, pool, opts); err != nil {
		return m.spec.scrubError(fmt.Errorf("postgres at %s: %w", m.spec.redacted, err))
	}
	if err := postgres.Migrate(ctx, pool, m.Table); err != nil {
		return m.spec.scrubError(fmt.Errorf("postgres at %s: %w", m.spec.redacted, err))
	}
	fmt.Fprintf(m.Out, "ordo store migrate: tables %s, %s and %s ready on %s\n", m.Inbox, m.Fences, m.Table, m.spec.redacted)
	return nil
}
