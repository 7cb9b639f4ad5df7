// Package session keeps the front's server-side state: the citizens'
// sessions and the pending logins and logouts (state, nonce, browser
// binding), in Redis when the gateway has it, so that any instance behind a
// load balancer can serve any step, or in process otherwise.
//
// The browser holds only a random ticket (32 bytes, base64url) in a cookie.
// The store never sees a ticket: records live under HMAC(key, ticket), and
// their values are sealed (AES-256-GCM, the storage key as associated
// data), so a Redis dump reveals no identity and no usable ticket, and a
// record copied under another key does not open.
//
// Sessions expire after Idle without use (FranceConnect's own session
// lasts 30 minutes) and at Max after their creation, whatever the use.
package session

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/reconcile"
)

// Session is one citizen's session. It holds personal data: never log it.
type Session struct {
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	// Subject is FranceConnect's sub; "" for a session opened only to hold
	// the app's account before a Cas 2 login.
	Subject string `json:"sub,omitempty"`
	ACR     string `json:"acr,omitempty"`
	// IDToken is kept for session/end's id_token_hint; AccessToken, until
	// it expires, for its revocation at logout.
	IDToken      string    `json:"id_token,omitempty"`
	AccessToken  string    `json:"access_token,omitempty"`
	AccessExpiry time.Time `json:"access_expiry,omitzero"`
	// Moment is handoff.MomentLogin (Cas 1), MomentTransmit (Cas 2) or,
	// once a Cas 2 session is handed over, MomentTransmitted.
	Moment         string                     `json:"moment,omitempty"`
	Identity       *handoff.Identity          `json:"identity,omitempty"`
	Datasets       map[string]handoff.Dataset `json:"datasets,omitempty"`
	Reconciliation *reconcile.Result          `json:"reconciliation,omitempty"`
	// ReturnTo is the app page a Cas 2 hand-off goes to, once.
	ReturnTo string `json:"return_to,omitempty"`
	// ExternalID is the app's reference the login started with.
	ExternalID string `json:"external_id,omitempty"`
}

// LoggedIn reports whether FranceConnect identified the citizen.
func (s *Session) LoggedIn() bool { return s.Subject != "" }

// MomentTransmitted is the moment of a Cas 2 session once handed over
// (see Transmitted): it serves logout only, never a hand-off nor a
// protected path.
const MomentTransmitted = "transmitted"

// Transmitted returns what a Cas 2 session keeps once its data is handed
// over: what logout needs (the ID token for session/end's id_token_hint,
// the access token for its revocation), with the subject and ACR for the
// audit record; no identity, datasets, reconciliation nor return_to.
func (s *Session) Transmitted() *Session {
	return &Session{
		Created: s.Created, Subject: s.Subject, ACR: s.ACR, IDToken: s.IDToken,
		AccessToken: s.AccessToken, AccessExpiry: s.AccessExpiry, Moment: MomentTransmitted,
	}
}

// Pending is a login started and not yet back from FranceConnect, found by
// its state, used once.
type Pending struct {
	Nonce string `json:"nonce"`
	// Binding is the value of the browser's pending-login cookie: the
	// callback must come from the browser that started the login.
	Binding  string             `json:"binding"`
	Moment   string             `json:"moment"`
	ReturnTo string             `json:"return_to,omitempty"`
	Account  *reconcile.Account `json:"account,omitempty"`
	// ExternalID is the app's own reference the login started with (its
	// procedure, its form), handed back with the identity.
	ExternalID string    `json:"external_id,omitempty"`
	Created    time.Time `json:"created"`
}

// Logout is a logout sent to FranceConnect, found by its state, used once.
type Logout struct {
	Created time.Time `json:"created"`
}

// Config configures a Manager.
type Config struct {
	Store Store
	// Secret keys the HMAC of storage keys and the sealing (at least 32 bytes).
	Secret []byte
	// Prefix starts every storage key (default "passerelle:front:").
	Prefix string
	// Idle and Max are the session lifetimes (default 30 min and 12 h).
	Idle, Max time.Duration
	// PendingTTL bounds a login at FranceConnect (default 10 min).
	PendingTTL time.Duration
	// CacheTTL is how long an instance reuses a session it read (default
	// 1 s): a logout on another instance is seen within it.
	CacheTTL time.Duration
	Now      func() time.Time
}

// Manager reads and writes sessions and pending logins.
type Manager struct {
	cfg     Config
	keyMAC  []byte
	aead    cipher.AEAD
	cacheMu sync.Mutex
	cache   map[string]cached    // ticket → session, for CacheTTL
	gone    map[string]time.Time // ticket → when it was found gone (see Get)
}

// maxCached bounds the sessions and the gone tickets an instance keeps.
const maxCached = 10000

type cached struct {
	s  *Session
	at time.Time
}

// Errors.
var (
	ErrNotFound = errors.New("session: not found or expired")
	ErrSealed   = errors.New("session: record does not open")
)

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil || len(cfg.Secret) < 32 {
		return nil, errors.New("session: a store and a secret of at least 32 bytes are required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "passerelle:front:"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Idle, 30*time.Minute)
	def(&cfg.Max, 12*time.Hour)
	def(&cfg.PendingTTL, 10*time.Minute)
	def(&cfg.CacheTTL, time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	derive := func(purpose string) []byte {
		k, err := hkdf.Key(sha256.New, cfg.Secret, nil, "passerelle/front-"+purpose+"/v1", 32)
		if err != nil {
			panic(err) // fixed lengths
		}
		return k
	}
	block, err := aes.NewCipher(derive("seal"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, keyMAC: derive("key"), aead: aead, cache: map[string]cached{}}, nil
}

// Active counts the live sessions (pending logins and logouts apart), when
// the store can count; ok is false otherwise.
func (m *Manager) Active(ctx context.Context) (n int, ok bool, err error) {
	c, ok := m.cfg.Store.(Counter)
	if !ok {
		return 0, false, nil
	}
	n, err = c.Count(ctx, m.cfg.Prefix+"s:")
	return n, true, err
}

// Idle is the idle timeout of sessions.
func (m *Manager) Idle() time.Duration { return m.cfg.Idle }

// NewTicket returns 32 random bytes, base64url: a session ticket, a state,
// a nonce or a browser binding (43 characters).
func NewTicket() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// key is the storage key of a ticket of one kind: s (session), p (pending
// login), l (logout).
func (m *Manager) key(kind, ticket string) string {
	mac := hmac.New(sha256.New, m.keyMAC)
	mac.Write([]byte(kind))
	mac.Write([]byte{0})
	mac.Write([]byte(ticket))
	return m.cfg.Prefix + kind + ":" + hex.EncodeToString(mac.Sum(nil))
}

func (m *Manager) seal(key string, v any) ([]byte, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, m.aead.NonceSize(), m.aead.NonceSize()+len(plain)+m.aead.Overhead())
	_, _ = rand.Read(nonce)
	return m.aead.Seal(nonce, nonce, plain, []byte(key)), nil
}

func (m *Manager) open(key string, sealed []byte, v any) error {
	n := m.aead.NonceSize()
	if len(sealed) < n {
		return ErrSealed
	}
	plain, err := m.aead.Open(nil, sealed[:n], sealed[n:], []byte(key))
	if err != nil || json.Unmarshal(plain, v) != nil {
		return ErrSealed
	}
	return nil
}

// Create stores a new session under a new ticket and returns the ticket.
// Always a new ticket: a login never reuses the ticket the browser had (no
// session fixation).
func (m *Manager) Create(ctx context.Context, s *Session) (string, error) {
	now := m.cfg.Now()
	if s.Created.IsZero() || s.Created.After(now) {
		s.Created = now
	}
	s.LastSeen = now
	t := NewTicket()
	return t, m.write(ctx, t, s)
}

// Get returns the session of a ticket, ErrNotFound when there is none or
// it expired. Its idle deadline moves forward, written back at most once a
// minute. The session returned may be shared with other requests of the
// same ticket: read it; to change it, change a copy and Save it.
func (m *Manager) Get(ctx context.Context, ticket string) (*Session, error) {
	if ticket == "" {
		return nil, ErrNotFound
	}
	now := m.cfg.Now()
	m.cacheMu.Lock()
	c, ok := m.cache[ticket]
	goneAt, gone := m.gone[ticket]
	m.cacheMu.Unlock()
	if ok && now.Sub(c.at) < m.cfg.CacheTTL && m.alive(c.s, now) {
		return c.s, nil
	}
	// A ticket never comes back once its session is gone (expired, logged
	// out, handed off): a browser still sending it costs no store lookup.
	if gone && now.Sub(goneAt) < m.cfg.Max {
		return nil, ErrNotFound
	}
	key := m.key("s", ticket)
	raw, ok, err := m.cfg.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		m.markGone(ticket, now)
		return nil, ErrNotFound
	}
	s := new(Session)
	if err := m.open(key, raw, s); err != nil {
		return nil, err
	}
	if !m.alive(s, now) {
		_ = m.Delete(ctx, ticket)
		return nil, ErrNotFound
	}
	if now.Sub(s.LastSeen) > time.Minute {
		s.LastSeen = now
		if err := m.replace(ctx, ticket, s); err != nil {
			return nil, err
		}
	} else {
		m.remember(ticket, s, now)
	}
	return s, nil
}

// Take returns the session of a ticket and deletes it, atomically and
// past the in-process cache: of two requests with the same ticket, on one
// instance or two, one only gets it (a Cas 2 hand-off happens once).
func (m *Manager) Take(ctx context.Context, ticket string) (*Session, error) {
	m.forget(ticket)
	s := new(Session)
	if err := m.take(ctx, "s", ticket, s); err != nil {
		return nil, err
	}
	m.markGone(ticket, m.cfg.Now())
	if !m.alive(s, m.cfg.Now()) {
		return nil, ErrNotFound
	}
	return s, nil
}

func (m *Manager) alive(s *Session, now time.Time) bool {
	return now.Sub(s.LastSeen) < m.cfg.Idle && now.Sub(s.Created) < m.cfg.Max
}

// Save writes a changed session back, only if it still exists: a session
// deleted meanwhile (logout, hand-off) stays deleted (ErrNotFound).
func (m *Manager) Save(ctx context.Context, ticket string, s *Session) error {
	return m.replace(ctx, ticket, s)
}

// write creates a session record.
func (m *Manager) write(ctx context.Context, ticket string, s *Session) error {
	key, sealed, ttl, err := m.record(ticket, s)
	if err != nil {
		return err
	}
	if err := m.cfg.Store.Set(ctx, key, sealed, ttl); err != nil {
		return err
	}
	m.remember(ticket, s, m.cfg.Now())
	return nil
}

// replace rewrites an existing session record.
func (m *Manager) replace(ctx context.Context, ticket string, s *Session) error {
	key, sealed, ttl, err := m.record(ticket, s)
	if err != nil {
		return err
	}
	ok, err := m.cfg.Store.Replace(ctx, key, sealed, ttl)
	switch {
	case err != nil:
		return err
	case !ok:
		m.markGone(ticket, m.cfg.Now())
		return ErrNotFound
	}
	m.remember(ticket, s, m.cfg.Now())
	return nil
}

// record seals a session under its key, with the TTL left to it.
func (m *Manager) record(ticket string, s *Session) (key string, sealed []byte, ttl time.Duration, err error) {
	now := m.cfg.Now()
	ttl = min(m.cfg.Idle-now.Sub(s.LastSeen), m.cfg.Max-now.Sub(s.Created))
	if ttl <= 0 {
		return "", nil, 0, ErrNotFound
	}
	key = m.key("s", ticket)
	sealed, err = m.seal(key, s)
	return key, sealed, ttl, err
}

// sealedValue is a value sealed for the browser, with its expiry.
type sealedValue struct {
	Expires time.Time       `json:"exp"`
	Value   json.RawMessage `json:"v"`
}

// SealValue seals v for a cookie (base64url): AES-GCM with the purpose as
// associated data, valid for ttl. The browser keeps it; the server keeps
// nothing (no state an anonymous client can pile up).
func (m *Manager) SealValue(purpose string, v any, ttl time.Duration) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sealed, err := m.seal("cookie:"+purpose, sealedValue{Expires: m.cfg.Now().Add(ttl), Value: raw})
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// OpenValue opens a value SealValue sealed for the same purpose, unexpired.
func (m *Manager) OpenValue(purpose, cookie string, v any) error {
	sealed, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil {
		return ErrSealed
	}
	var sv sealedValue
	if err := m.open("cookie:"+purpose, sealed, &sv); err != nil {
		return err
	}
	if !m.cfg.Now().Before(sv.Expires) {
		return ErrNotFound
	}
	if json.Unmarshal(sv.Value, v) != nil {
		return ErrSealed
	}
	return nil
}

// Delete removes a session (logout, expiry, a new login).
func (m *Manager) Delete(ctx context.Context, ticket string) error {
	m.markGone(ticket, m.cfg.Now())
	return m.cfg.Store.Delete(ctx, m.key("s", ticket))
}

// markGone forgets a ticket's session and remembers that it is gone, for
// the session's longest life (Max); when full, the oldest half of the
// marks go (a forgotten mark costs one store lookup, nothing else).
func (m *Manager) markGone(ticket string, now time.Time) {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	delete(m.cache, ticket)
	if m.gone == nil {
		m.gone = map[string]time.Time{}
	}
	if len(m.gone) >= maxCached {
		for t, at := range m.gone {
			if now.Sub(at) >= m.cfg.Max || len(m.gone) >= maxCached/2 {
				delete(m.gone, t)
			}
		}
	}
	m.gone[ticket] = now
}

func (m *Manager) remember(ticket string, s *Session, now time.Time) {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	if len(m.cache) >= maxCached {
		for t, c := range m.cache {
			if now.Sub(c.at) >= m.cfg.CacheTTL {
				delete(m.cache, t)
			}
		}
		if len(m.cache) >= maxCached {
			return
		}
	}
	m.cache[ticket] = cached{s: s, at: now}
}

// Sweep drops what has expired by now: the sessions this instance keeps
// read beyond CacheTTL (they hold the citizen's identity, datasets and
// tokens), and the records of a store that keeps them in process (Memory).
// Without it they would stay in memory until the cache filled up, on a
// quiet instance until it stops.
func (m *Manager) Sweep(now time.Time) {
	m.cacheMu.Lock()
	for t, c := range m.cache {
		if now.Sub(c.at) >= m.cfg.CacheTTL {
			delete(m.cache, t)
		}
	}
	m.cacheMu.Unlock()
	if sw, ok := m.cfg.Store.(interface{ Sweep(time.Time) }); ok {
		sw.Sweep(now)
	}
}

func (m *Manager) forget(ticket string) {
	m.cacheMu.Lock()
	delete(m.cache, ticket)
	m.cacheMu.Unlock()
}

// PutPending stores a pending login under its state.
func (m *Manager) PutPending(ctx context.Context, state string, p *Pending) error {
	p.Created = m.cfg.Now()
	key := m.key("p", state)
	sealed, err := m.seal(key, p)
	if err != nil {
		return err
	}
	return m.cfg.Store.Set(ctx, key, sealed, m.cfg.PendingTTL)
}

// TakePending returns the pending login of a state and deletes it: a state
// is used once, on whichever instance the callback lands.
func (m *Manager) TakePending(ctx context.Context, state string) (*Pending, error) {
	p := new(Pending)
	if err := m.take(ctx, "p", state, p); err != nil {
		return nil, err
	}
	return p, nil
}

// PutLogout stores a logout sent to FranceConnect under its state.
func (m *Manager) PutLogout(ctx context.Context, state string) error {
	key := m.key("l", state)
	sealed, err := m.seal(key, &Logout{Created: m.cfg.Now()})
	if err != nil {
		return err
	}
	return m.cfg.Store.Set(ctx, key, sealed, m.cfg.PendingTTL)
}

// TakeLogout checks and consumes the state of a logout's return.
func (m *Manager) TakeLogout(ctx context.Context, state string) error {
	return m.take(ctx, "l", state, new(Logout))
}

func (m *Manager) take(ctx context.Context, kind, ticket string, v any) error {
	if ticket == "" {
		return ErrNotFound
	}
	key := m.key(kind, ticket)
	raw, ok, err := m.cfg.Store.Take(ctx, key)
	switch {
	case err != nil:
		return err
	case !ok:
		return ErrNotFound
	}
	return m.open(key, raw, v)
}
