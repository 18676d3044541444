// Package testenv connects tests to the real Redis and PostgreSQL they
// need: ORDO_TEST_REDIS_ADDR (host:port) and ORDO_TEST_POSTGRES_DSN (a pgx
// connection string). A test whose variable is unset is skipped, naming it;
// a test whose service is set but unreachable fails.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Variable names.
const (
	RedisVar    = "ORDO_TEST_REDIS_ADDR"
	PostgresVar = "ORDO_TEST_POSTGRES_DSN"
)

// RedisAddr returns the test Redis's host:port, or skips t.
func RedisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(RedisVar)
	if addr == "" {
		t.Skipf("%s is not set: set it to a Redis host:port (e.g. 127.0.0.1:6379) to run this test", RedisVar)
	}
	return addr
}

// Redis returns a client of the test Redis, closed when t ends, or skips t.
// It fails t if the server does not answer.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	return RedisAt(t, RedisAddr(t))
}

// RedisAt returns a client of the Redis at addr, closed when t ends, after
// checking that it answers.
func RedisAt(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 32})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("%s=%s is set but Redis does not answer: %v", RedisVar, addr, err)
	}
	return c
}

// PostgresDSN returns the test database's connection string, or skips t.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresVar)
	if dsn == "" {
		t.Skipf("%s is not set: set it to a PostgreSQL connection string (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run this test", PostgresVar)
	}
	return dsn
}

// Postgres returns a pool on the test database, closed when t ends, or
// skips t. It fails t if the database does not answer.
func Postgres(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("%s: %v", PostgresVar, err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("%s is set but PostgreSQL cannot be reached: %v", PostgresVar, err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("%s is set but PostgreSQL does not answer: %v", PostgresVar, err)
	}
	return pool
}

// Name returns a name unique to this run of t, usable as a Redis key
// prefix or a table name: "t_" and 12 hex digits.
func Name(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t_" + strings.ToLower(hex.EncodeToString(b[:]))
}
