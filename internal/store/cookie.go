package store

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-contrib/sessions"
	gsessions "github.com/gorilla/sessions"
)

// Cookie is the stateless session store: the session's values live in the cookie,
// in a compact payload (payload.go) encrypted with AES-256 and signed with
// HMAC-SHA256 (seal.go), with keys derived from the secret, so any replica holding
// the same secret can serve any request and the store itself keeps nothing. Build it
// with NewCookie; it is safe for concurrent use.
//
// The value changes on every save, so Set-Cookie is sent on every request. Parallel
// requests carrying the same cookie each read the same count and the last answer's
// cookie wins: without server state they cannot all be counted (Lock is a no-op).
// A cookie older than Config.TTL (measured from its last save) starts a new session.
// Sessions hold string keys with int values (all a page-view session needs); Save
// fails on anything else.
//
// Cookies of the earlier gob/securecookie format do not open (their first byte is no
// kind of ours): they start a new session, as any cookie that is not ours does.
type Cookie struct {
	seal *sealer
	now  func() time.Time
	ttl  time.Duration
	log  *slog.Logger

	options atomic.Pointer[gsessions.Options] // copied into every session
}

var _ Store = (*Cookie)(nil)

// NewCookie returns a cookie store. It fails when the secret is shorter than
// MinSecretLen or TTL <= 0.
func NewCookie(cfg Config) (*Cookie, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	keys, err := DeriveKeys(cfg.Secret)
	if err != nil {
		return nil, err
	}
	seal, err := newSealer(kindPayload, keys.Hash, keys.Block)
	if err != nil {
		return nil, err
	}
	c := &Cookie{seal: seal, now: cfg.clock(), ttl: cfg.TTL, log: cfg.logger()}
	c.Options(cfg.Cookie)
	return c, nil
}

// Kind returns "cookie".
func (c *Cookie) Kind() string { return "cookie" }

// Len returns -1: the cookie store keeps no sessions.
func (c *Cookie) Len() int { return -1 }

// Lock does nothing (see the type's comment) and returns a no-op.
func (c *Cookie) Lock(*http.Request, string) func() { return func() {} }

// Options sets the attributes of the cookies the store sends.
func (c *Cookie) Options(o sessions.Options) { c.options.Store(o.ToGorillaOptions()) }

// Get returns the session of the request, as New. It does not go through gorilla's
// request registry: its caller (the page view, or gin-contrib/sessions' middleware)
// keeps the session for the request, and the registry cost a copy of the request on
// every page view.
func (c *Cookie) Get(r *http.Request, name string) (*gsessions.Session, error) {
	return c.New(r, name)
}

// New decodes the session from the first valid cookie called name, or starts a new
// one (IsNew). It never returns an error: a tampered, truncated, garbage or expired
// cookie starts a new session.
func (c *Cookie) New(r *http.Request, name string) (*gsessions.Session, error) {
	s := gsessions.NewSession(c, name)
	*s.Options = *c.options.Load()
	s.IsNew = true
	for v := range cookieValues(r, name) {
		if c.decode(name, v, s.Values) {
			s.IsNew = false
			break
		}
	}
	return s, nil
}

// decode fills values from a cookie value and reports whether it was ours, intact
// and not expired; on false values is left empty.
func (c *Cookie) decode(name, value string, values map[any]any) bool {
	data, ok := c.seal.open(name, value)
	if !ok {
		c.log.Debug("session cookie rejected", "store", "cookie")
		return false
	}
	seenMs, ok := readPayload(data, values)
	if !ok {
		// Sealed with our key but not a payload: only a holder of the secret can
		// make one. Treated as any bad cookie.
		clear(values)
		c.log.Debug("session cookie holds no payload", "store", "cookie")
		return false
	}
	age := c.now().Sub(time.UnixMilli(seenMs))
	if age >= c.ttl || age < -time.Minute {
		clear(values)
		c.log.Debug("session cookie expired", "store", "cookie")
		return false
	}
	return true
}

// encode returns the cookie value for values, stamped with the current time.
func (c *Cookie) encode(name string, values map[any]any) (string, error) {
	var buf [64]byte // a page-view session's payload is 19 bytes
	data, err := appendPayload(buf[:0], c.now().UnixMilli(), values)
	if err != nil {
		return "", err
	}
	return c.seal.seal(name, data), nil
}

// Save sends the session's values in a fresh cookie (on every request).
// Options.MaxAge < 0 deletes the cookie.
func (c *Cookie) Save(_ *http.Request, w http.ResponseWriter, s *gsessions.Session) error {
	if s.Options == nil {
		o := *c.options.Load()
		s.Options = &o
	}
	if s.Options.MaxAge < 0 {
		http.SetCookie(w, gsessions.NewCookie(s.Name(), "", s.Options))
		return nil
	}
	encoded, err := c.encode(s.Name(), s.Values)
	if err != nil {
		return fmt.Errorf("encoding session cookie: %w", err)
	}
	http.SetCookie(w, gsessions.NewCookie(s.Name(), encoded, s.Options))
	s.IsNew = false
	return nil
}
