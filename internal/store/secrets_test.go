package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// The secrets a team stores, each in a form easy to grep for.
const (
	envSecret  = "env-secret-value-7f3a"
	gitSecret  = "git-password-value-7f3a"
	sshSecret  = "ssh-key-value-7f3a"
	regSecret  = "registry-password-7f3a"
	certSecret = "-----BEGIN PRIVATE KEY-----cert-key-7f3a"
	hookSecret = "webhook-secret-7f3a"
	epSecret   = "endpoint-key-7f3a"
	urlSecret  = "url-token-7f3a"
	secretURL  = "https://ci:" + urlSecret + "@git.example.com/y.git"
)

var allSecrets = []string{envSecret, gitSecret, sshSecret, regSecret, certSecret, hookSecret, epSecret, urlSecret}

// writeSecrets stores one secret of each kind in team t.
func writeSecrets(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	must(t, s.CreateTeam(ctx, &model.Team{Name: "t"}))
	must(t, s.CreateApp(ctx, &model.App{Team: "t", Name: "a"}))
	c := &model.Component{Team: "t", App: "a", Alias: "web", Kind: model.KindSource,
		Source:        &model.Source{Type: "git", URL: "https://git.example.com/x.git", Username: "ci", Password: gitSecret, SSHKey: sshSecret},
		Envs:          []model.Env{{Name: "TOKEN", Value: envSecret, Secret: true}, {Name: "PLAIN", Value: "visible"}},
		WebhookSecret: hookSecret, EndpointKey: epSecret}
	must(t, s.CreateComponent(ctx, c))
	if c.Envs[0].Value != envSecret || c.Source.Password != gitSecret {
		t.Fatalf("CreateComponent changed the caller's component: %+v %+v", c.Envs, c.Source)
	}
	must(t, s.CreateComponent(ctx, &model.Component{Team: "t", App: "a", Alias: "inline", Kind: model.KindSource,
		Source: &model.Source{Type: "git", URL: secretURL}}))
	must(t, s.PutRegistry(ctx, &model.Registry{Team: "t", Host: "reg.example.com", Username: "u", Password: regSecret}))
	must(t, s.CreateCertificate(ctx, &model.Certificate{Team: "t", Name: "c", CertPEM: "CERT", KeyPEM: certSecret,
		Domains: []string{"x.example.com"}, NotAfter: time.Now().Add(time.Hour)}))
}

// checkSecrets reads every secret back in clear through the store.
func checkSecrets(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	c, err := s.GetComponentByAlias(ctx, "t", "web")
	must(t, err)
	if c.Envs[0].Value != envSecret || c.Envs[1].Value != "visible" || c.Source.Password != gitSecret || c.Source.SSHKey != sshSecret {
		t.Errorf("component reads back envs %+v source %+v", c.Envs, c.Source)
	}
	if c.WebhookSecret != hookSecret || c.EndpointKey != epSecret {
		t.Errorf("component reads back webhook secret %q endpoint key %q", c.WebhookSecret, c.EndpointKey)
	}
	inline, err := s.GetComponentByAlias(ctx, "t", "inline")
	must(t, err)
	if inline.Source.URL != secretURL {
		t.Errorf("a URL with credentials reads back %q", inline.Source.URL)
	}
	all, err := s.ListAllComponents(ctx)
	must(t, err)
	if len(all) != 2 || all[1].Envs[0].Value != envSecret {
		t.Errorf("ListAllComponents reads back %+v", all)
	}
	r, err := s.GetRegistry(ctx, "t", "reg.example.com")
	must(t, err)
	if r.Password != regSecret {
		t.Errorf("registry password reads back %q", r.Password)
	}
	certs, err := s.ListAllCertificates(ctx)
	must(t, err)
	if len(certs) != 1 || certs[0].KeyPEM != certSecret {
		t.Errorf("certificate key reads back %+v", certs)
	}
}

// fileBytes is the database with its WAL and shared memory, as someone who
// copied the files would have them.
func fileBytes(t *testing.T, db string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func noSecretInFiles(t *testing.T, db string) {
	t.Helper()
	b := fileBytes(t, db)
	for _, sec := range allSecrets {
		if bytes.Contains(b, []byte(sec)) {
			t.Errorf("the database files hold %q in clear", sec)
		}
	}
}

func openIn(t *testing.T, dir string) Store {
	t.Helper()
	return openDSNIn(t, "", dir)
}

// openDSNIn opens dsn with its secret key in dir.
func openDSNIn(t *testing.T, dsn, dir string) Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// eachEngineIn runs fn on both engines with a fresh database whose DSN
// reopens it and a data directory for the key.
func eachEngineIn(t *testing.T, fn func(t *testing.T, dsn, dir string)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dsn := newTestDSN(t, engine)
			if engine == "sqlite" {
				dsn = filepath.Join(dir, "berth.db")
			}
			fn(t, dsn, dir)
		})
	}
}

// rawSecrets are the stored forms of every secret column, as SQL reads them.
func rawSecrets(t *testing.T, st Store) []string {
	t.Helper()
	s := st.(*sqlStore)
	ctx := context.Background()
	var out []string
	for _, q := range []string{`SELECT spec FROM components`, `SELECT password FROM registries`, `SELECT key_pem FROM certificates`} {
		rows, err := s.r().query(ctx, q)
		vals, err := collect(rows, err, func(r rowScanner) (string, error) {
			var v string
			return v, r.Scan(&v)
		})
		must(t, err)
		out = append(out, vals...)
	}
	return out
}

// noSecretInColumns checks what a database dump would show: no secret in
// clear, each sealed with key id.
func noSecretInColumns(t *testing.T, st Store, id string) {
	t.Helper()
	for _, v := range rawSecrets(t, st) {
		for _, sec := range allSecrets {
			if strings.Contains(v, sec) {
				t.Errorf("a stored column holds %q in clear: %s", sec, v)
			}
		}
		if !strings.Contains(v, sealedPrefix+id+":") {
			t.Errorf("a stored column is not sealed with key %s: %s", id, v)
		}
	}
}

func keyID(t *testing.T, dir string) string {
	t.Helper()
	k, err := readKeyFile(filepath.Join(dir, secretKeyFile))
	must(t, err)
	return k.id
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	must(t, err)
	return fi.Mode().Perm()
}

func TestSecretsSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	s := openIn(t, dir)
	writeSecrets(t, s)
	checkSecrets(t, s)
	db := filepath.Join(dir, "berth.db")
	noSecretInFiles(t, db)
	for _, f := range []string{"berth.db", "berth.db-wal", "secret.key"} {
		if m := fileMode(t, filepath.Join(dir, f)); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", f, m)
		}
	}
	must(t, s.Close())

	s = openIn(t, dir)
	defer s.Close()
	checkSecrets(t, s)
}

// TestPlaintextRowsSealedAtStart opens a database written before secrets
// were sealed and checks that the next start seals them and leaves no
// copy of the plaintext in the files.
func TestPlaintextRowsSealedAtStart(t *testing.T) {
	eachEngineIn(t, func(t *testing.T, dsn, dir string) {
		old, err := Open(context.Background(), dsn, "")
		must(t, err)
		writeSecrets(t, old)
		must(t, old.Close())
		if old.Dialect() == "sqlite" && !bytes.Contains(fileBytes(t, dsn), []byte(envSecret)) {
			t.Fatal("the store without a key should have written plaintext (test premise)")
		}

		s := openDSNIn(t, dsn, dir)
		defer s.Close()
		checkSecrets(t, s)
		noSecretInColumns(t, s, keyID(t, dir))
		if s.Dialect() == "sqlite" {
			noSecretInFiles(t, dsn)
		}
	})
}

func TestRotateSecretKey(t *testing.T) {
	eachEngineIn(t, func(t *testing.T, dsn, dir string) {
		s := openDSNIn(t, dsn, dir)
		writeSecrets(t, s)
		noSecretInColumns(t, s, keyID(t, dir))
		oldKey, err := os.ReadFile(filepath.Join(dir, secretKeyFile))
		must(t, err)

		must(t, RotateSecretKey(context.Background(), s))
		newKey, err := os.ReadFile(filepath.Join(dir, secretKeyFile))
		must(t, err)
		if bytes.Equal(oldKey, newKey) {
			t.Fatal("RotateSecretKey kept the key file")
		}
		if _, err := os.Stat(filepath.Join(dir, pendingKeyFile)); !os.IsNotExist(err) {
			t.Errorf("%s is left after a rotation: %v", pendingKeyFile, err)
		}
		checkSecrets(t, s)
		noSecretInColumns(t, s, keyID(t, dir))
		if s.Dialect() == "sqlite" {
			noSecretInFiles(t, dsn)
		}
		must(t, s.Close())

		// The old key opens nothing any more: a leaked copy of it is useless.
		must(t, os.WriteFile(filepath.Join(dir, secretKeyFile), oldKey, 0o600))
		if _, err := Open(context.Background(), dsn, dir); err == nil || !strings.Contains(err.Error(), "secret.key") {
			t.Errorf("Open with the rotated-out key: %v, want an error naming secret.key", err)
		}
		must(t, os.WriteFile(filepath.Join(dir, secretKeyFile), newKey, 0o600))
		s = openDSNIn(t, dsn, dir)
		defer s.Close()
		checkSecrets(t, s)
	})
}

// TestInterruptedRotationFinishesAtStart leaves the new key written but the
// database not yet resealed (a crash inside the rotation) and checks that
// the next start finishes it.
func TestInterruptedRotationFinishesAtStart(t *testing.T) {
	dir := t.TempDir()
	s := openIn(t, dir)
	writeSecrets(t, s)
	must(t, s.Close())
	pending, err := createKeyFile(filepath.Join(dir, pendingKeyFile))
	must(t, err)
	pendingBytes, err := os.ReadFile(filepath.Join(dir, pendingKeyFile))
	must(t, err)

	s = openIn(t, dir)
	defer s.Close()
	checkSecrets(t, s)
	got, err := os.ReadFile(filepath.Join(dir, secretKeyFile))
	must(t, err)
	if !bytes.Equal(got, pendingBytes) {
		t.Errorf("secret.key is not the pending key after the start that finished the rotation")
	}
	c, err := s.(*sqlStore).rawSpec("web")
	must(t, err)
	if !strings.Contains(c, sealedPrefix+pending.id+":") {
		t.Errorf("spec not sealed with the pending key %s: %s", pending.id, c)
	}
}

// TestSealedLookingValueIsATenantValue stores a secret env whose value
// looks sealed: it must read back as written, not break reading the
// component (and with it every listing the worker makes).
func TestSealedLookingValueIsATenantValue(t *testing.T) {
	s := openIn(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	must(t, s.CreateTeam(ctx, &model.Team{Name: "t"}))
	must(t, s.CreateApp(ctx, &model.App{Team: "t", Name: "a"}))
	v := sealedPrefix + "deadbeef:AAAA"
	must(t, s.CreateComponent(ctx, &model.Component{Team: "t", App: "a", Alias: "x", Kind: model.KindImage, Image: "nginx",
		Envs: []model.Env{{Name: "E", Value: v, Secret: true}}}))
	c, err := s.GetComponentByAlias(ctx, "t", "x")
	must(t, err)
	if c.Envs[0].Value != v {
		t.Errorf("value reads back %q, want %q", c.Envs[0].Value, v)
	}
}

// rawSpec is a component's spec column as stored.
func (s *sqlStore) rawSpec(alias string) (string, error) {
	var spec string
	err := s.r().queryRow(context.Background(), `SELECT spec FROM components WHERE alias = ?`, alias).Scan(&spec)
	return spec, err
}
