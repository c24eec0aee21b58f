package store

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// dialect is what differs between the engines. The SQL text is shared and
// written for both: upserts use ON CONFLICT ... DO UPDATE and results come
// back through RETURNING, which SQLite (3.24 and 3.35 on) and PostgreSQL
// spell the same way, so only the points below need an engine switch.
type dialect struct {
	name string
	// numbered is set when the driver wants $1, $2, ... instead of ?.
	numbered bool
	// timeType is the column type of schema_migrations.applied_at, the one
	// table created outside the migration files.
	timeType string
	// timeArg turns a time already normalized by storeTime into the value its
	// column type takes: PostgreSQL has TIMESTAMPTZ, SQLite gets text that
	// sorts in time order.
	timeArg func(time.Time) any
	// skipLocked ends ClaimTask's candidate query, so that concurrent
	// claimers pass over a row another transaction is claiming instead of
	// queueing behind it.
	skipLocked string
	// xactLock holds a lock named key until the transaction ends. It is nil
	// on SQLite, where transactions begin IMMEDIATE and so already exclude
	// each other.
	xactLock func(ctx context.Context, h handle, key string) error
}

// rebind rewrites the ? placeholders of q for the engine. Queries must not
// hold a literal question mark, which no query of this package does.
func (d *dialect) rebind(q string) string {
	if !d.numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// nullTimeArg is timeArg for an optional time.
func (d *dialect) nullTimeArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.timeArg(*t)
}
