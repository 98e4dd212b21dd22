package tpmkey

import (
	"bytes"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// PEMType is the PEM block type of a TPM 2.0 key file.
const PEMType = "TSS2 PRIVATE KEY"

// MaxKeyFile bounds a key file: a TPM key blob is a few hundred bytes.
const MaxKeyFile = 64 << 10

var (
	oidLoadableKey   = asn1.ObjectIdentifier{2, 23, 133, 10, 1, 3}
	oidImportableKey = asn1.ObjectIdentifier{2, 23, 133, 10, 1, 4}
	oidSealedData    = asn1.ObjectIdentifier{2, 23, 133, 10, 1, 5}
)

// keyFileASN1 is TPMKey of the TPM 2.0 key files format.
type keyFileASN1 struct {
	Type      asn1.ObjectIdentifier
	EmptyAuth asn1.RawValue `asn1:"optional,explicit,tag:0"` // a BOOLEAN, read leniently

	Policy      asn1.RawValue `asn1:"optional,explicit,tag:1"`
	Secret      []byte        `asn1:"optional,explicit,tag:2"`
	AuthPolicy  asn1.RawValue `asn1:"optional,explicit,tag:3"`
	Description string        `asn1:"optional,explicit,tag:4,utf8"`
	RSAParent   asn1.RawValue `asn1:"optional,explicit,tag:5"`
	Parent      int64
	PubKey      []byte
	PrivKey     []byte
}

// KeyFile is a parsed TPM 2.0 key file: a loadable key wrapped by its
// parent.
type KeyFile struct {
	// EmptyAuth is the file's word that the key has no password. Some
	// writers record it reversed, so it is only a default.
	EmptyAuth bool
	// Parent is the parent's handle: persistent (0x81......) or a
	// hierarchy (0x40000001 owner, 0x4000000B endorsement, ...).
	Parent tpm2.TPMHandle
	// RSAParent asks for the RSA storage template when Parent is a
	// hierarchy.
	RSAParent   bool
	Description string

	public  tpm2.TPM2BPublic
	private tpm2.TPM2BPrivate
	pub     *tpm2.TPMTPublic
}

// IsKeyFile reports whether data looks like a TPM 2.0 key file in PEM.
func IsKeyFile(data []byte) bool {
	return bytes.Contains(data, []byte("-----BEGIN "+PEMType+"-----"))
}

// ErrMalformed is the cause for a key file that cannot be parsed.
var ErrMalformed = errors.New("malformed TPM key file")

// ParseKeyFile parses a TPM 2.0 key file, PEM or DER. It refuses key
// files that need what this package does not do: importable keys, sealed
// data, and keys bound to a policy.
func ParseKeyFile(data []byte) (*KeyFile, error) {
	if len(data) > MaxKeyFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxKeyFile)
	}
	der := data
	if IsKeyFile(data) {
		b, _ := pem.Decode(data[bytes.Index(data, []byte("-----BEGIN "+PEMType)):])
		if b == nil || b.Type != PEMType {
			return nil, fmt.Errorf("%w: bad PEM", ErrMalformed)
		}
		der = b.Bytes
	}
	var k keyFileASN1
	rest, err := asn1.Unmarshal(der, &k)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	switch {
	case k.Type.Equal(oidLoadableKey):
	case k.Type.Equal(oidImportableKey):
		return nil, fmt.Errorf("%w: importable keys are not supported; load it once with tpm2_import and use the loadable key", ErrUnsupported)
	case k.Type.Equal(oidSealedData):
		return nil, fmt.Errorf("%w: the file holds sealed data, not a key", ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: unknown key type %s", ErrUnsupported, k.Type)
	}
	if len(k.Policy.FullBytes) != 0 || len(k.AuthPolicy.FullBytes) != 0 || len(k.Secret) != 0 {
		return nil, fmt.Errorf("%w: keys bound to a policy are not supported", ErrUnsupported)
	}
	if k.Parent < 0 || k.Parent > 0xFFFFFFFF {
		return nil, fmt.Errorf("%w: parent handle out of range", ErrMalformed)
	}
	emptyAuth, err := lenientBool(k.EmptyAuth)
	if err != nil {
		return nil, fmt.Errorf("%w: emptyAuth: %v", ErrMalformed, err)
	}
	rsaParent, err := lenientBool(k.RSAParent)
	if err != nil {
		return nil, fmt.Errorf("%w: rsaParent: %v", ErrMalformed, err)
	}
	kf := &KeyFile{EmptyAuth: emptyAuth, Parent: tpm2.TPMHandle(k.Parent), RSAParent: rsaParent, Description: k.Description}
	if !persistent(kf.Parent) && !hierarchy(kf.Parent) {
		return nil, fmt.Errorf("%w: parent 0x%08x is neither a persistent handle nor a hierarchy", ErrUnsupported, uint32(kf.Parent))
	}
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](k.PubKey)
	if err != nil {
		return nil, fmt.Errorf("%w: public part: %v", ErrMalformed, err)
	}
	priv, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](k.PrivKey)
	if err != nil {
		return nil, fmt.Errorf("%w: private part: %v", ErrMalformed, err)
	}
	kf.public, kf.private = *pub, *priv
	if kf.pub, err = kf.public.Contents(); err != nil {
		return nil, fmt.Errorf("%w: public part: %v", ErrMalformed, err)
	}
	return kf, nil
}

func persistent(h tpm2.TPMHandle) bool { return h>>24 == 0x81 }

func hierarchy(h tpm2.TPMHandle) bool {
	switch h {
	case tpm2.TPMRHOwner, tpm2.TPMRHEndorsement, tpm2.TPMRHPlatform, tpm2.TPMRHNull:
		return true
	}
	return false
}

// lenientBool reads an optional BOOLEAN. DER wants 0xFF for TRUE, but
// tpm2-tools writes 0x01: any non-zero byte is TRUE.
func lenientBool(v asn1.RawValue) (bool, error) {
	if len(v.FullBytes) == 0 {
		return false, nil
	}
	if v.Class == asn1.ClassContextSpecific {
		var inner asn1.RawValue
		if rest, err := asn1.Unmarshal(v.Bytes, &inner); err != nil || len(rest) != 0 {
			return false, errors.New("not a BOOLEAN")
		}
		v = inner
	}
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagBoolean || len(v.Bytes) != 1 {
		return false, errors.New("not a BOOLEAN")
	}
	return v.Bytes[0] != 0, nil
}
