package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// The pipeline's signing key is read from its file, decrypted with the
// passphrase file (its trailing newline dropped), and signs; a bad setting
// names its field.
func TestPipelineSigner(t *testing.T) {
	if s, err := signer(config.Pipeline{}); s != nil || err != nil {
		t.Fatalf("no key configured: %v %v", s != nil, err)
	}
	key := gitserver.NewSigningKey(t, "Baton", "baton@example.com")
	dir := t.TempDir()
	var raw bytes.Buffer
	if err := key.Entity.SerializePrivate(&raw, nil); err != nil {
		t.Fatal(err)
	}
	list, err := openpgp.ReadKeyRing(&raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := list[0].EncryptPrivateKeys([]byte("s3cret"), nil); err != nil {
		t.Fatal(err)
	}
	var armored bytes.Buffer
	w, err := armor.Encode(&armored, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := list[0].SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	keyFile, passFile := filepath.Join(dir, "key.asc"), filepath.Join(dir, "passphrase")
	if err := os.WriteFile(keyFile, armored.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(passFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	s, err := signer(config.Pipeline{SigningKeyFile: keyFile, SigningKeyPassphraseFile: passFile})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s([]byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	keyring, err := openpgp.ReadArmoredKeyRing(strings.NewReader(key.ArmoredPublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openpgp.CheckArmoredDetachedSignature(keyring, strings.NewReader("payload"), bytes.NewReader(sig), nil); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}

	for _, tc := range []struct {
		p    config.Pipeline
		want string
	}{
		{config.Pipeline{SigningKeyFile: filepath.Join(dir, "absent")}, "pipeline.signingKeyFile: "},
		{config.Pipeline{SigningKeyFile: keyFile}, "pipeline.signingKeyFile " + keyFile + ": read OpenPGP key: the key is encrypted"},
		{config.Pipeline{SigningKeyFile: keyFile, SigningKeyPassphraseFile: filepath.Join(dir, "absent")}, "pipeline.signingKeyPassphraseFile: "},
	} {
		if _, err := signer(tc.p); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q...", tc.p, err, tc.want)
		}
	}
}
