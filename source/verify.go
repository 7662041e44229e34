package source

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// readKeyring reads the armored keyring of trusted signers. It is read at
// every verification, so that a rotated Secret takes effect at once.
func readKeyring(path string) (string, openpgp.EntityList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("signatures.keyringFile: %w", err)
	}
	list, err := openpgp.ReadArmoredKeyRing(strings.NewReader(string(b)))
	if err != nil {
		return "", nil, fmt.Errorf("signatures.keyringFile %s: %w", path, err)
	}
	return string(b), list, nil
}

// verifyCommit checks the commit's OpenPGP signature against the keyring and
// returns who signed it. SSH signatures (gpg.format=ssh) are reported as
// unsupported: go-git v5 verifies OpenPGP signatures only.
func verifyCommit(c *object.Commit, armored string, keyring openpgp.EntityList) (string, error) {
	sig := c.PGPSignature
	switch {
	case sig == "":
		return "", &SignatureError{Commit: c.Hash.String(), Reason: "unsigned"}
	case strings.Contains(sig, "BEGIN SSH SIGNATURE"):
		return "", &SignatureError{Commit: c.Hash.String(), Signer: "an SSH key",
			Reason: "SSH signatures are not supported; sign with OpenPGP"}
	}
	entity, err := c.Verify(armored)
	if err == nil {
		return describeEntity(entity), nil
	}
	signer := signatureIssuer(sig, keyring)
	reason := "bad signature: " + err.Error()
	if errors.Is(err, pgperrors.ErrUnknownIssuer) {
		reason = "key not in the keyring"
	}
	return "", &SignatureError{Commit: c.Hash.String(), Signer: signer, Reason: reason}
}

// describeEntity names a key by its first user identity and fingerprint.
func describeEntity(e *openpgp.Entity) string {
	fp := strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
	names := make([]string, 0, len(e.Identities))
	for n := range e.Identities {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fp
	}
	return names[0] + " [" + fp + "]"
}

// signatureIssuer reads which key made an armored signature: the issuer
// fingerprint (or key ID) from the signature packet, with the identity when
// the keyring knows the key.
func signatureIssuer(armored string, keyring openpgp.EntityList) string {
	block, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return "an unreadable signature"
	}
	p, err := packet.Read(block.Body)
	if err != nil {
		return "an unreadable signature"
	}
	s, ok := p.(*packet.Signature)
	if !ok {
		return "an unreadable signature"
	}
	var id string
	switch {
	case len(s.IssuerFingerprint) > 0:
		id = strings.ToUpper(hex.EncodeToString(s.IssuerFingerprint))
	case s.IssuerKeyId != nil:
		id = fmt.Sprintf("%016X", *s.IssuerKeyId)
	default:
		return "an unknown key"
	}
	if s.IssuerKeyId != nil {
		for _, k := range keyring.KeysById(*s.IssuerKeyId) {
			if k.Entity != nil {
				return describeEntity(k.Entity)
			}
		}
	}
	return "key " + id
}
