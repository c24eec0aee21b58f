package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/berth-platform/berth/internal/model"
)

// sealSpec seals the secrets of a component's spec: the values of secret
// envs, the source's password and SSH key, and the keys berth hands out for
// it (webhook secret, endpoint key). It copies what it changes, so the
// caller's component keeps its plaintext.
func (k *keyring) sealSpec(sp *componentSpec) error {
	return k.mapSpec(sp, k.seal)
}

// openSpec is sealSpec's inverse.
func (k *keyring) openSpec(sp *componentSpec) error {
	return k.mapSpec(sp, k.open)
}

func (k *keyring) mapSpec(sp *componentSpec, fn func(string) (string, error)) error {
	if len(sp.Envs) > 0 {
		envs := make([]model.Env, len(sp.Envs))
		for i, e := range sp.Envs {
			if e.Secret {
				v, err := fn(e.Value)
				if err != nil {
					return fmt.Errorf("env %s: %w", e.Name, err)
				}
				e.Value = v
			}
			envs[i] = e
		}
		sp.Envs = envs
	}
	if sp.Source != nil {
		src := *sp.Source
		var err error
		if src.Password, err = fn(src.Password); err != nil {
			return fmt.Errorf("source password: %w", err)
		}
		if src.SSHKey, err = fn(src.SSHKey); err != nil {
			return fmt.Errorf("source ssh key: %w", err)
		}
		if strings.HasPrefix(src.URL, sealedPrefix) || urlHasUser(src.URL) {
			if src.URL, err = fn(src.URL); err != nil {
				return fmt.Errorf("source url: %w", err)
			}
		}
		sp.Source = &src
	}
	var err error
	if sp.WebhookSecret, err = fn(sp.WebhookSecret); err != nil {
		return fmt.Errorf("webhook secret: %w", err)
	}
	if sp.EndpointKey, err = fn(sp.EndpointKey); err != nil {
		return fmt.Errorf("endpoint key: %w", err)
	}
	return nil
}

// specCurrent reports whether every secret of sp is sealed with the current
// key (nothing to rewrite).
func (k *keyring) specCurrent(sp *componentSpec) bool {
	for _, e := range sp.Envs {
		if e.Secret && !k.sealedWithCurrent(e.Value) {
			return false
		}
	}
	if !k.sealedWithCurrent(sp.WebhookSecret) || !k.sealedWithCurrent(sp.EndpointKey) {
		return false
	}
	if sp.Source == nil {
		return true
	}
	urlCurrent := !urlHasUser(sp.Source.URL)
	if strings.HasPrefix(sp.Source.URL, sealedPrefix) {
		urlCurrent = k.sealedWithCurrent(sp.Source.URL)
	}
	return urlCurrent && k.sealedWithCurrent(sp.Source.Password) && k.sealedWithCurrent(sp.Source.SSHKey)
}

// urlHasUser reports whether a repository URL carries credentials
// (https://user:token@host/...; a user name alone is often a token too),
// which makes the whole URL a secret.
func urlHasUser(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User != nil && u.Scheme != "ssh"
}

// useSecretKey loads the keyring of dir into s and seals with its current
// key whatever is not yet: plaintext rows of older servers, rows of the old
// key when a rotation was interrupted (which it then finishes).
func (s *sqlStore) useSecretKey(ctx context.Context, dir string) error {
	k, err := openKeyring(dir)
	if err != nil {
		return err
	}
	s.keys = k
	n, err := s.reseal(ctx)
	if err != nil {
		return fmt.Errorf("seal stored secrets: %w", err)
	}
	if k.pending() {
		if err := k.finishRotation(); err != nil {
			return err
		}
	}
	if n > 0 {
		slog.Info("sealed stored secrets with the secret key", "rows", n, "key", k.current.id)
		return s.purgeOldPages(ctx)
	}
	return nil
}

// RotateSecretKey seals every stored secret with a new key: the new key is
// written to DATA/secret.key.new first, then every secret is resealed in
// one transaction, then the file replaces DATA/secret.key. A crash at any
// point leaves a database that the next start opens (and finishes the
// rotation of). It is for stores opened from a data directory, before they
// serve anyone: the swap of keys is not synchronized with readers.
func RotateSecretKey(ctx context.Context, st Store) error {
	s, ok := st.(*sqlStore)
	if !ok || s.keys == nil {
		return errors.New("this store has no secret key to rotate (it was not opened from a data directory)")
	}
	next, err := createKeyFile(filepath.Join(s.keys.dir, pendingKeyFile))
	if err != nil {
		return err
	}
	old := s.keys
	k := &keyring{dir: old.dir, current: next, all: map[string]*secretKey{next.id: next}}
	for id, key := range old.all {
		k.all[id] = key
	}
	s.keys = k
	n, err := s.reseal(ctx)
	if err != nil {
		// The new key file stays: whether or not the commit landed, the
		// next start holds both keys and finishes the rotation.
		s.keys = old
		return fmt.Errorf("rotate the secret key (the next start finishes it with %s): %w", pendingKeyFile, err)
	}
	// Committed: from here on only the new key opens the database, so an
	// error must not bring the old one back.
	if err := k.finishRotation(); err != nil {
		return err
	}
	slog.Info("rotated the secret key", "rows", n, "from", old.current.id, "to", next.id)
	return s.purgeOldPages(ctx)
}

// reseal rewrites, in one transaction, every stored secret not sealed with
// the current key, and returns how many rows it rewrote.
func (s *sqlStore) reseal(ctx context.Context) (int, error) {
	n := 0
	err := s.tx(ctx, func(h handle) error {
		steps := []func(context.Context, handle) (int, error){s.resealComponents, s.resealRegistries, s.resealCertificates}
		for _, step := range steps {
			m, err := step(ctx, h)
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	return n, err
}

// purgeOldPages drops the copies of rewritten values that SQLite keeps in
// free pages and in the WAL (the plaintext of older servers, values of a
// rotated-out key): VACUUM rebuilds the file, the checkpoint empties the
// WAL. PostgreSQL reclaims dead rows on its own (VACUUM is the operator's).
func (s *sqlStore) purgeOldPages(ctx context.Context) error {
	if s.d.name != "sqlite" {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("vacuum after sealing secrets: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("checkpoint after sealing secrets: %w", err)
	}
	return nil
}

// resealColumn reseals one text column of table, each row addressed by
// the columns of its primary key.
func (s *sqlStore) resealColumn(ctx context.Context, h handle, table, column string, keyCols ...string) (int, error) {
	rows, err := h.query(ctx, `SELECT `+strings.Join(append(keyCols, column), ", ")+` FROM `+table)
	all, err := collect(rows, err, func(r rowScanner) ([]any, error) {
		vals := make([]string, len(keyCols)+1)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		err := r.Scan(ptrs...)
		out := make([]any, len(vals))
		for i, v := range vals {
			out[i] = v
		}
		return out, err
	})
	if err != nil {
		return 0, fmt.Errorf("read %s.%s: %w", table, column, err)
	}
	where := strings.Join(keyCols, " = ? AND ") + " = ?"
	n := 0
	for _, r := range all {
		keys, value := r[:len(keyCols)], r[len(keyCols)].(string)
		if s.keys.sealedWithCurrent(value) {
			continue
		}
		plain, err := s.keys.open(value)
		if err != nil {
			return 0, fmt.Errorf("%s %v: %w", table, keys, err)
		}
		sealed, err := s.keys.seal(plain)
		if err != nil {
			return 0, err
		}
		if _, err := h.exec(ctx, `UPDATE `+table+` SET `+column+` = ? WHERE `+where, append([]any{sealed}, keys...)...); err != nil {
			return 0, fmt.Errorf("write %s %v: %w", table, keys, err)
		}
		n++
	}
	return n, nil
}

func (s *sqlStore) resealCertificates(ctx context.Context, h handle) (int, error) {
	return s.resealColumn(ctx, h, "certificates", "key_pem", "id")
}

func (s *sqlStore) resealRegistries(ctx context.Context, h handle) (int, error) {
	return s.resealColumn(ctx, h, "registries", "password", "team", "host")
}

// resealComponents rewrites the spec of components whose secrets are not
// sealed with the current key. The revision stays: the component's content
// is the same.
func (s *sqlStore) resealComponents(ctx context.Context, h handle) (int, error) {
	type row struct {
		id string
		sp componentSpec
	}
	rows, err := h.query(ctx, `SELECT id, spec FROM components`)
	all, err := collect(rows, err, func(r rowScanner) (row, error) {
		var x row
		return x, r.Scan(&x.id, jsonCol{&x.sp})
	})
	if err != nil {
		return 0, fmt.Errorf("read components: %w", err)
	}
	n := 0
	for _, r := range all {
		if s.keys.specCurrent(&r.sp) {
			continue
		}
		if err := s.keys.openSpec(&r.sp); err != nil {
			return 0, fmt.Errorf("component %s: %w", r.id, err)
		}
		if err := s.keys.sealSpec(&r.sp); err != nil {
			return 0, fmt.Errorf("component %s: %w", r.id, err)
		}
		spec, err := jsonText(r.sp)
		if err != nil {
			return 0, fmt.Errorf("component %s: %w", r.id, err)
		}
		if _, err := h.exec(ctx, `UPDATE components SET spec = ? WHERE id = ?`, spec, r.id); err != nil {
			return 0, fmt.Errorf("write component %s: %w", r.id, err)
		}
		n++
	}
	return n, nil
}
