package backend

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// IDLen is the length of a server id: 10 base32 characters, 50 bits.
const IDLen = 10

// DefaultIDKey is used when no SERVER_ID_KEY is set, so that every replica of
// the proxy still gives a server the same id. With a public key the ids can
// be linked to addresses by whoever can guess or enumerate the addresses;
// set SERVER_ID_KEY to prevent that.
const DefaultIDKey = "swarm-affinity default server id key; set SERVER_ID_KEY"

// idEncoding is lower-case base32 without padding: letters and digits only,
// so an id is a valid cookie value and never holds the '~' delimiter.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// IDs names servers: ID(addr) is HMAC-SHA256(key, addr) cut to IDLen
// characters, the same for the same address on every proxy replica and after
// every restart, and it reveals nothing of the address without the key (as
// Caddy's cookie policy). The zero value uses no key; use NewIDs.
type IDs struct {
	key []byte
}

// NewIDs makes an id generator keyed with key.
func NewIDs(key []byte) IDs { return IDs{key: append([]byte(nil), key...)} }

// ID returns the id of the server at addr (host:port).
func (s IDs) ID(addr string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(addr))
	return strings.ToLower(idEncoding.EncodeToString(m.Sum(nil)))[:IDLen]
}
