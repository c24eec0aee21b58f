package store

import (
	"encoding/json"
	"fmt"
)

// jsonText encodes v for a JSON column. Nil slices and maps encode as null
// and empty ones as [] or {}, so each reads back as it was written.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode JSON column: %w", err)
	}
	return string(b), nil
}

// jsonCol scans a JSON column (TEXT on SQLite, JSONB on PostgreSQL) into dst,
// a pointer.
type jsonCol struct{ dst any }

func (c jsonCol) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan JSON column: unsupported value of type %T", src)
	}
	if err := json.Unmarshal(b, c.dst); err != nil {
		return fmt.Errorf("decode JSON column: %w", err)
	}
	return nil
}
