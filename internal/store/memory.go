package store

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-contrib/sessions"
	gsessions "github.com/gorilla/sessions"
)

// idLen is the length of a session id in bytes: 128 bits from crypto/rand, so ids
// cannot be guessed; the cookie also carries an HMAC over the id, so an id the store
// did not hand out is rejected before it is even looked up.
const idLen = 16

type sessionID [idLen]byte

func (id sessionID) String() string {
	var b [22]byte // base64 of 16 bytes, on the stack: one allocation, the string's
	return string(base64.RawURLEncoding.AppendEncode(b[:0], id[:]))
}

func parseID(s string) (sessionID, bool) {
	var id sessionID
	n, err := base64.RawURLEncoding.Decode(id[:], []byte(s))
	return id, err == nil && n == idLen && len(s) == base64.RawURLEncoding.EncodedLen(idLen)
}

// lockStripes is the number of mutexes Memory.Lock spreads session ids over. A fixed
// array keeps the locks' memory bounded whatever the number of sessions; two sessions
// sharing a stripe only wait for each other, they never mix.
const lockStripes = 1024

// Memory is the bounded in-memory session store. The zero value is not usable; build
// it with NewMemory. It is safe for concurrent use.
//
// Bounds: at most Config.Max sessions (the least recently used goes first) and a
// session not saved for Config.TTL is gone (checked when it is read, and expired
// sessions are swept from the old end of the LRU list on every save and on Len).
// Memory therefore stays bounded under any flood of cookie-less requests.
//
// Like express's MemoryStore it sends Set-Cookie only when it starts a session: the
// cookie holds the signed id, which never changes for the life of the session.
// Sessions hold string keys with int values, encoded as the cookie store encodes them
// (payload.go) in at most maxValuesLen bytes: {"page_views": N} takes 13 to 22. Save
// fails on anything else. Nothing the store keeps is a pointer (table.go).
type Memory struct {
	seal   *sealer
	now    func() time.Time
	epoch  time.Time
	ttl    time.Duration
	max    int
	log    *slog.Logger
	stripe [lockStripes]sync.Mutex
	unlock [lockStripes]func() // stripe[i].Unlock, made once: Lock allocates nothing

	mu       sync.Mutex // guards sessions
	sessions *table

	options atomic.Pointer[gsessions.Options] // copied into every session
}

var _ Store = (*Memory)(nil)

// NewMemory returns a memory store. It fails when the secret is shorter than
// MinSecretLen, Max < 1 or TTL <= 0.
func NewMemory(cfg Config) (*Memory, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Max < 1 {
		return nil, fmt.Errorf("session max is %d; need at least 1", cfg.Max)
	}
	keys, err := DeriveKeys(cfg.Secret)
	if err != nil {
		return nil, err
	}
	// Only signed: the id is random and says nothing, encrypting it would add nothing.
	// The cookie carries no time: the session's idle TTL is kept here.
	seal, err := newSealer(kindSessionID, keys.Hash, nil)
	if err != nil {
		return nil, err
	}
	now := cfg.clock()
	m := &Memory{
		seal:     seal,
		now:      now,
		epoch:    now(),
		ttl:      cfg.TTL,
		max:      cfg.Max,
		log:      cfg.logger(),
		sessions: newTable(cfg.Max),
	}
	for i := range m.stripe {
		m.unlock[i] = m.stripe[i].Unlock
	}
	m.Options(cfg.Cookie)
	return m, nil
}

// Kind returns "memory".
func (m *Memory) Kind() string { return "memory" }

// Max returns the bound on live sessions.
func (m *Memory) Max() int { return m.max }

// Len returns the number of live sessions, after dropping the expired ones.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(m.since())
	return m.sessions.Len()
}

// Options sets the attributes of the cookies of new sessions.
func (m *Memory) Options(o sessions.Options) { m.options.Store(o.ToGorillaOptions()) }

// Lock takes the lock of the session the request names (the one New will load), so
// that parallel requests of one visitor run load, increment and save one after the
// other and none of their counts is lost. A request without a session cookie needs no
// lock: it starts a session of its own, with an id nobody else has.
//
// The stripe is picked by a hash of the cookie values as sent, not of the decoded id:
// a session's cookie never changes (it is set once, at the start), so the requests of
// one session always meet on the same stripe, and the signature is checked once per
// request, by New, instead of twice (it was a seventh of the handler's time).
func (m *Memory) Lock(r *http.Request, name string) func() {
	var h maphash.Hash
	h.SetSeed(lockSeed)
	found := false
	for v := range cookieValues(r, name) {
		h.WriteString(v)
		h.WriteByte(0)
		found = true
	}
	if !found {
		return func() {}
	}
	i := h.Sum64() % lockStripes
	m.stripe[i].Lock()
	return m.unlock[i]
}

// lockSeed makes Lock's stripe choice the same for every request of a process.
var lockSeed = maphash.MakeSeed()

// Get returns the session of the request, as New. It does not go through gorilla's
// request registry: its caller (the page view, or gin-contrib/sessions' middleware)
// keeps the session for the request, and the registry cost a copy of the request on
// every page view.
func (m *Memory) Get(r *http.Request, name string) (*gsessions.Session, error) {
	return m.New(r, name)
}

// New loads the session the request's cookie names, or starts a new one (IsNew) when
// there is no cookie, or it is not ours, or its session has expired or been evicted.
// It never returns an error: a bad cookie is not the visitor's problem.
func (m *Memory) New(r *http.Request, name string) (*gsessions.Session, error) {
	s := gsessions.NewSession(m, name)
	*s.Options = *m.options.Load()
	s.IsNew = true
	id, rec, ok := m.pick(r, name)
	if !ok {
		return s, nil
	}
	if !readValues(rec.values[:rec.len], s.Values) {
		clear(s.Values) // cannot happen: Save stored what appendValues wrote
		return s, nil
	}
	s.ID = id.String()
	s.IsNew = false
	return s, nil
}

// pick returns the id of the first cookie called name that carries our signature and
// names a live (not expired) session. Browsers send the cookie with the longest path
// first. An expired session found here is dropped at once.
func (m *Memory) pick(r *http.Request, name string) (sessionID, record, bool) {
	for v := range cookieValues(r, name) {
		raw, ok := m.seal.open(name, v)
		if !ok || len(raw) != idLen {
			m.log.Debug("session cookie rejected", "store", "memory")
			continue
		}
		id := sessionID(raw)
		now := m.since()
		m.mu.Lock()
		rec, ok := m.sessions.Get(id)
		if ok && m.expired(rec, now) {
			m.sessions.Remove(id)
			ok = false
		}
		m.mu.Unlock()
		if ok {
			return id, rec, true
		}
		m.log.Debug("session cookie names no live session", "store", "memory")
	}
	return sessionID{}, record{}, false
}

// Save stores the session's values and, for a new session, gives it a fresh random id
// and sends the cookie. An existing session's cookie is not sent again (as express).
// Options.MaxAge < 0 deletes the session and its cookie.
func (m *Memory) Save(_ *http.Request, w http.ResponseWriter, s *gsessions.Session) error {
	if s.Options == nil {
		o := *m.options.Load()
		s.Options = &o
	}
	if s.Options.MaxAge < 0 {
		if id, ok := parseID(s.ID); ok && !s.IsNew {
			m.mu.Lock()
			m.sessions.Remove(id)
			m.mu.Unlock()
		}
		http.SetCookie(w, gsessions.NewCookie(s.Name(), "", s.Options))
		return nil
	}
	rec := record{}
	values, err := appendValues(rec.values[:0], s.Values)
	if err != nil {
		return fmt.Errorf("saving session: %w", err)
	}
	if len(values) > maxValuesLen {
		return fmt.Errorf("saving session: its values take %d bytes; the memory store keeps %d", len(values), maxValuesLen)
	}
	rec.len = uint8(len(values))
	id, ok := parseID(s.ID)
	isNew := s.IsNew || !ok
	if isNew {
		rand.Read(id[:]) // never fails (crypto/rand, Go 1.24+)
	}
	rec.seen = m.since()
	m.mu.Lock()
	m.sweep(rec.seen)
	m.sessions.Put(id, rec)
	m.mu.Unlock()
	if !isNew {
		return nil
	}
	http.SetCookie(w, gsessions.NewCookie(s.Name(), m.seal.seal(s.Name(), id[:]), s.Options))
	s.ID = id.String()
	s.IsNew = false
	return nil
}

// since is the store's clock as a duration since its epoch: monotonic with time.Now.
func (m *Memory) since() time.Duration { return m.now().Sub(m.epoch) }

func (m *Memory) expired(rec record, now time.Duration) bool { return now-rec.seen >= m.ttl }

// sweep drops expired sessions from the old end of the LRU list. The list is ordered
// by last save, so it stops at the first live one; each session is dropped once, so
// the cost is constant per save on average. m.mu must be held.
func (m *Memory) sweep(now time.Duration) {
	for {
		id, rec, ok := m.sessions.Oldest()
		if !ok || !m.expired(rec, now) {
			return
		}
		m.sessions.Remove(id)
	}
}
