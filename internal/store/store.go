// Package store holds the two session stores the page-view counter runs on, both
// written as stores that github.com/gin-contrib/sessions accepts:
//
//   - Memory keeps sessions in process memory, like express's MemoryStore, but bounded:
//     at most Max live sessions, each forgotten after TTL without a request. The
//     cookie carries only a random, signed session id.
//   - Cookie keeps no server state: the values live in the cookie itself, encrypted
//     and signed (seal.go), so any replica can serve any request.
//
// Neither store ever reports a bad cookie as an error: a tampered, truncated, garbage,
// expired or unknown cookie simply starts a new session (and is logged at debug).
package store

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-contrib/sessions"
)

// MinSecretLen is the shortest SESSION_SECRET accepted, in bytes.
const MinSecretLen = 32

// Store is a gin-contrib/sessions store plus what the counter needs besides.
type Store interface {
	sessions.Store

	// Lock serialises the requests of one visitor: it blocks until no other request
	// of the same session (in the cookie called name) holds it, and returns the function that releases
	// it. Call it before the session is first read and release it after it is saved,
	// so that load, increment and save happen as one step. It never returns nil.
	Lock(r *http.Request, name string) (unlock func())

	// Len returns the number of live sessions, or -1 when the store cannot know
	// (the cookie store keeps none).
	Len() int

	// Kind is "memory" or "cookie".
	Kind() string
}

// Config is what both stores are built from.
type Config struct {
	// Secret is the server secret (at least MinSecretLen bytes); the stores derive
	// separate signing and encryption keys from it with DeriveKeys.
	Secret []byte

	// Cookie holds the attributes of the session cookie. MaxAge 0 (the usual value)
	// makes a browser-session cookie, as the original's.
	Cookie sessions.Options

	// Max bounds the number of live sessions of the memory store. It must be > 0.
	Max int

	// TTL is the idle expiry: a session not used for TTL is gone. It must be > 0.
	TTL time.Duration

	// Now is the clock; nil means time.Now. Tests inject one to expire sessions
	// without sleeping.
	Now func() time.Time

	// Logger receives debug lines about rejected cookies; nil discards them.
	// Cookie values are never logged.
	Logger *slog.Logger
}

func (c Config) check() error {
	if len(c.Secret) < MinSecretLen {
		return fmt.Errorf("session secret is %d bytes; need at least %d", len(c.Secret), MinSecretLen)
	}
	if c.TTL <= 0 {
		return fmt.Errorf("session TTL is %v; need more than 0", c.TTL)
	}
	return nil
}

func (c Config) clock() func() time.Time {
	if c.Now == nil {
		return time.Now
	}
	return c.Now
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Keys are the two keys derived from the secret: one never serves as the other.
type Keys struct {
	Hash  []byte // 64 bytes, HMAC-SHA256 signing key
	Block []byte // 32 bytes, AES-256 encryption key
}

// DeriveKeys derives the signing and the encryption key from one secret with HKDF-SHA256
// and two distinct labels, so that one secret value is never used for both purposes
// and the secret's length or alphabet does not decide the AES key size.
func DeriveKeys(secret []byte) (Keys, error) {
	hash, err := hkdf.Key(sha256.New, secret, nil, "swarm-affinity session hash key v1", 64)
	if err != nil {
		return Keys{}, fmt.Errorf("deriving hash key: %w", err)
	}
	block, err := hkdf.Key(sha256.New, secret, nil, "swarm-affinity session block key v1", 32)
	if err != nil {
		return Keys{}, fmt.Errorf("deriving block key: %w", err)
	}
	return Keys{Hash: hash, Block: block}, nil
}
