package source

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Signer signs a commit: it receives the commit object's bytes without a
// signature and returns an ASCII-armored detached signature, which becomes
// the commit's gpgsig header. OpenPGPSigner makes one from a key.
type Signer func(payload []byte) (armoredSignature []byte, err error)

// OpenPGPSigner returns a Signer that signs with the first private key in
// an ASCII-armored OpenPGP key (the content of a key file, as `gpg
// --export-secret-keys --armor` writes it). passphrase decrypts an
// encrypted key; it is ignored for a key that is not encrypted.
func OpenPGPSigner(armoredPrivateKey, passphrase []byte) (Signer, error) {
	list, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armoredPrivateKey))
	if err != nil {
		return nil, fmt.Errorf("read OpenPGP key: %w", err)
	}
	var entity *openpgp.Entity
	for _, e := range list {
		if e.PrivateKey != nil {
			entity = e
			break
		}
	}
	if entity == nil {
		return nil, errors.New("read OpenPGP key: it holds no private key (export it with --export-secret-keys)")
	}
	if entity.PrivateKey.Encrypted {
		if len(passphrase) == 0 {
			return nil, errors.New("read OpenPGP key: the key is encrypted and no passphrase was given")
		}
		if err := entity.DecryptPrivateKeys(passphrase); err != nil {
			return nil, fmt.Errorf("read OpenPGP key: decrypt with the passphrase: %w", err)
		}
	}
	return func(payload []byte) ([]byte, error) {
		var sig bytes.Buffer
		if err := openpgp.ArmoredDetachSign(&sig, entity, bytes.NewReader(payload), nil); err != nil {
			return nil, fmt.Errorf("OpenPGP sign: %w", err)
		}
		return sig.Bytes(), nil
	}, nil
}

// signCommit sets c's signature: sign signs the commit as encoded without
// one, which is what git verifies the signature against.
func signCommit(c *object.Commit, sign Signer) error {
	unsigned := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(unsigned); err != nil {
		return err
	}
	rd, err := unsigned.Reader()
	if err != nil {
		return err
	}
	payload, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	sig, err := sign(payload)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if len(sig) == 0 {
		return errors.New("sign: the signer returned an empty signature")
	}
	c.PGPSignature = string(sig)
	return nil
}
