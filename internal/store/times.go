package store

import (
	"fmt"
	"time"
)

// sqliteTimeLayout is how SQLite keeps times: fixed-width UTC text, so that
// comparing the text (lease expiry, ordering) compares the times.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// storeTime is t as the database keeps it: UTC at microsecond resolution
// (PostgreSQL's), without a monotonic reading. Methods put the result back
// into the caller's struct, so what the caller holds equals what a later
// read returns.
func storeTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nowOr is storeTime(t), or the current time when t is zero: the store fills
// in creation times the caller left out.
func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		return storeTime(time.Now())
	}
	return storeTime(t)
}

// storeTimePtr normalizes an optional time into a fresh pointer, leaving the
// caller's original value alone.
func storeTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := storeTime(*t)
	return &v
}

// timeCol scans a time column of either engine into dst.
type timeCol struct{ dst *time.Time }

func (c timeCol) Scan(src any) error {
	if src == nil {
		return fmt.Errorf("scan time: unexpected NULL")
	}
	t, err := parseTimeValue(src)
	if err != nil {
		return err
	}
	*c.dst = t
	return nil
}

// nullTimeCol scans a nullable time column into dst, nil for NULL.
type nullTimeCol struct{ dst **time.Time }

func (c nullTimeCol) Scan(src any) error {
	if src == nil {
		*c.dst = nil
		return nil
	}
	t, err := parseTimeValue(src)
	if err != nil {
		return err
	}
	*c.dst = &t
	return nil
}

func parseTimeValue(src any) (time.Time, error) {
	var s string
	switch v := src.(type) {
	case time.Time:
		return v.UTC(), nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return time.Time{}, fmt.Errorf("scan time: unsupported value of type %T", src)
	}
	t, err := time.Parse(sqliteTimeLayout, s)
	if err != nil {
		// Accept any RFC 3339 text too, e.g. a row someone fixed by hand.
		var err2 error
		if t, err2 = time.Parse(time.RFC3339Nano, s); err2 != nil {
			return time.Time{}, fmt.Errorf("scan time %q: %w", s, err)
		}
	}
	return t.UTC(), nil
}
