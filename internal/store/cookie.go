package store

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gorilla/securecookie"
	gsessions "github.com/gorilla/sessions"
)

// payload is what the cookie store puts in the cookie, signed and encrypted.
type payload struct {
	SeenMs int64 // unix milliseconds of the save, checked against Config.TTL with Config.Now;
	// milliseconds, not seconds, so a short TTL (the lab tries 2s) is not cut by up to 1s
	Values map[any]any
}

// Cookie is the stateless session store: the session's values live in the cookie,
// gob-encoded, encrypted (AES-256) and signed (HMAC-SHA256) by gorilla/securecookie
// with keys derived from the secret, so any replica holding the same secret can serve
// any request and the store itself keeps nothing. Build it with NewCookie; it is safe
// for concurrent use.
//
// The value changes on every save, so Set-Cookie is sent on every request. Parallel
// requests carrying the same cookie each read the same count and the last answer's
// cookie wins: without server state they cannot all be counted (Lock is a no-op).
// A cookie older than Config.TTL (measured from its last save) starts a new session.
type Cookie struct {
	codec *securecookie.SecureCookie
	now   func() time.Time
	ttl   time.Duration
	log   *slog.Logger

	mu      sync.Mutex // guards options
	options sessions.Options
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
	// securecookie also checks its own timestamp against the real clock; give it the
	// TTL rounded up, so it agrees with the check on SeenMs (which uses Config.Now).
	maxAge := int(math.Ceil(cfg.TTL.Seconds()))
	codec := securecookie.New(keys.Hash, keys.Block).MaxAge(maxAge)
	return &Cookie{codec: codec, now: cfg.clock(), ttl: cfg.TTL, log: cfg.logger(), options: cfg.Cookie}, nil
}

// Kind returns "cookie".
func (c *Cookie) Kind() string { return "cookie" }

// Len returns -1: the cookie store keeps no sessions.
func (c *Cookie) Len() int { return -1 }

// Lock does nothing (see the type's comment) and returns a no-op.
func (c *Cookie) Lock(*http.Request, string) func() { return func() {} }

// Options sets the attributes of the cookies the store sends.
func (c *Cookie) Options(o sessions.Options) {
	c.mu.Lock()
	c.options = o
	c.mu.Unlock()
}

// Get returns the session of the request, cached for the request (gorilla registry).
func (c *Cookie) Get(r *http.Request, name string) (*gsessions.Session, error) {
	return gsessions.GetRegistry(r).Get(c, name)
}

// New decodes the session from the first valid cookie called name, or starts a new
// one (IsNew). It never returns an error: a tampered, truncated, garbage or expired
// cookie starts a new session.
func (c *Cookie) New(r *http.Request, name string) (*gsessions.Session, error) {
	s := gsessions.NewSession(c, name)
	c.mu.Lock()
	s.Options = c.options.ToGorillaOptions()
	c.mu.Unlock()
	s.IsNew = true
	for _, ck := range r.CookiesNamed(name) {
		if values, ok := c.decode(name, ck.Value); ok {
			s.Values = values
			s.IsNew = false
			break
		}
	}
	return s, nil
}

// decode returns the values a cookie value carries, or false when it is not ours,
// damaged or expired.
func (c *Cookie) decode(name, value string) (map[any]any, bool) {
	var p payload
	if err := c.codec.Decode(name, value, &p); err != nil {
		c.log.Debug("session cookie rejected", "store", "cookie", "err", err)
		return nil, false
	}
	age := c.now().Sub(time.UnixMilli(p.SeenMs))
	if age >= c.ttl || age < -time.Minute {
		c.log.Debug("session cookie expired", "store", "cookie")
		return nil, false
	}
	if p.Values == nil {
		p.Values = make(map[any]any)
	}
	return p.Values, true
}

// encode returns the cookie value for values, stamped with the current time.
func (c *Cookie) encode(name string, values map[any]any) (string, error) {
	return c.codec.Encode(name, payload{SeenMs: c.now().UnixMilli(), Values: values})
}

// Save sends the session's values in a fresh cookie (on every request).
// Options.MaxAge < 0 deletes the cookie.
func (c *Cookie) Save(_ *http.Request, w http.ResponseWriter, s *gsessions.Session) error {
	if s.Options == nil {
		c.mu.Lock()
		s.Options = c.options.ToGorillaOptions()
		c.mu.Unlock()
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
