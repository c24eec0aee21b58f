package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Secrets at rest (secret env values, source passwords and SSH keys,
// registry passwords, certificate keys) are sealed with AES-256-GCM under a
// key kept beside the database, DATA/secret.key (0600): a copy of berth.db
// alone, or a look at its WAL, reveals none of them.
//
// A sealed value reads "enc:v1:<key id>:<base64 of nonce and ciphertext>".
// The key id (the first bytes of the key's SHA-256) says which key sealed
// it, so that a rotation interrupted between the database commit and the
// key file rename is finished at the next start instead of leaving values
// no key opens. Values without the prefix are plaintext from before
// encryption; they read as they are and are sealed at start.
const (
	sealedPrefix   = "enc:v1:"
	secretKeyFile  = "secret.key"
	pendingKeyFile = "secret.key.new"
	keySize        = 32
)

// secretKey is one AES-256-GCM key and its id.
type secretKey struct {
	id   string
	aead cipher.AEAD
}

func newSecretKey(raw []byte) (*secretKey, error) {
	if len(raw) != keySize {
		return nil, fmt.Errorf("a secret key is %d bytes, got %d", keySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	sum := sha256.Sum256(raw)
	return &secretKey{id: hex.EncodeToString(sum[:4]), aead: aead}, nil
}

// keyring seals with its current key and opens with any key it holds.
type keyring struct {
	dir     string // where the key files are
	current *secretKey
	all     map[string]*secretKey
}

// seal encrypts v with the current key; "" stays "" (nothing to hide, and
// an absent credential must read back as absent). A value that already
// looks sealed is sealed again: it is a tenant's text, not berth's.
func (k *keyring) seal(v string) (string, error) {
	if k == nil || v == "" {
		return v, nil
	}
	nonce := make([]byte, k.current.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	out := k.current.aead.Seal(nonce, nonce, []byte(v), []byte(k.current.id))
	return sealedPrefix + k.current.id + ":" + base64.RawStdEncoding.EncodeToString(out), nil
}

// open decrypts a sealed value; plaintext passes through.
func (k *keyring) open(v string) (string, error) {
	if !strings.HasPrefix(v, sealedPrefix) {
		return v, nil
	}
	id, body, ok := strings.Cut(strings.TrimPrefix(v, sealedPrefix), ":")
	if !ok {
		return "", errors.New("a stored secret is malformed (no key id)")
	}
	if k == nil {
		return "", fmt.Errorf("a stored secret is sealed with key %s, but this store has no secret key", id)
	}
	key, ok := k.all[id]
	if !ok {
		return "", fmt.Errorf("a stored secret is sealed with key %s, which is not %s (key %s); restore the %s this database was written with",
			id, filepath.Join(k.dir, secretKeyFile), k.current.id, secretKeyFile)
	}
	raw, err := base64.RawStdEncoding.DecodeString(body)
	n := key.aead.NonceSize()
	if err != nil || len(raw) < n {
		return "", fmt.Errorf("a stored secret sealed with key %s is malformed", id)
	}
	plain, err := key.aead.Open(nil, raw[:n], raw[n:], []byte(id))
	if err != nil {
		return "", fmt.Errorf("a stored secret sealed with key %s does not decrypt (altered in the database?): %w", id, err)
	}
	return string(plain), nil
}

// sealedWithCurrent reports whether v needs no resealing: empty, or sealed
// with the current key.
func (k *keyring) sealedWithCurrent(v string) bool {
	return v == "" || strings.HasPrefix(v, sealedPrefix+k.current.id+":")
}

// openKeyring reads DATA/secret.key, creating it on first start, and the
// key of a rotation that did not finish (DATA/secret.key.new), which then
// becomes the one to seal with.
func openKeyring(dir string) (*keyring, error) {
	cur, err := readKeyFile(filepath.Join(dir, secretKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		cur, err = createKeyFile(filepath.Join(dir, secretKeyFile))
	}
	if err != nil {
		return nil, err
	}
	k := &keyring{dir: dir, current: cur, all: map[string]*secretKey{cur.id: cur}}
	pending, err := readKeyFile(filepath.Join(dir, pendingKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return nil, err
	}
	k.all[pending.id], k.current = pending, pending
	return k, nil
}

// pending reports whether a rotation waits for its key file rename.
func (k *keyring) pending() bool {
	_, err := os.Stat(filepath.Join(k.dir, pendingKeyFile))
	return err == nil
}

// finishRotation makes the current key the one in DATA/secret.key, once
// every secret is sealed with it.
func (k *keyring) finishRotation() error {
	if err := os.Rename(filepath.Join(k.dir, pendingKeyFile), filepath.Join(k.dir, secretKeyFile)); err != nil {
		return fmt.Errorf("replace %s: %w", secretKeyFile, err)
	}
	if err := syncDir(k.dir); err != nil {
		return err
	}
	k.all = map[string]*secretKey{k.current.id: k.current}
	return nil
}

func readKeyFile(path string) (*secretKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != keySize {
		return nil, fmt.Errorf("%s must hold %d bytes in hex (64 characters); restore it from a backup", path, keySize)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("make %s private (0600): %w", path, err)
		}
	}
	return newSecretKey(raw)
}

// createKeyFile writes a new random key to path (0600) durably: the
// database will soon hold values only this key opens.
func createKeyFile(path string) (*secretKey, error) {
	raw := make([]byte, keySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("new secret key: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.WriteString(hex.EncodeToString(raw) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return newSecretKey(raw)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
