// Package datapassop plays DataPass for the sandbox: the API Passerelle's
// resync reads (OAuth2 client credentials, /api/v1/habilitations, a
// webhook's attempts) and the webhooks DataPass sends, signed as DataPass
// signs them, which a person triggers by hand:
//
//	POST /sandbox/datapass/requests/{id}/revoke
//	POST /sandbox/datapass/requests/{id}/approve   [{"scopes": [...]}]
//	POST /sandbox/datapass/ping                    (DataPass's {"test": true})
//	GET  /sandbox/datapass/requests                (the state, to look at)
//
// Each action changes the request, delivers its webhook synchronously and
// answers what the receiver answered, so that its effect is seen at once.
//
// It backs the sandbox DataPass module and tests. Nothing here is meant for
// production: state lives in memory (a new configuration starts afresh),
// the actions take no credentials, and the applicant is a fixed fake.
package datapassop

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/passerelle-gw/passerelle/config/datapass"
)

// Routes.
const (
	PathToken        = "/api/v1/oauth/token"
	PathTokenLegacy  = "/api/oauth/token"
	PathHabilitation = "/api/v1/habilitations"
	PathWebhooks     = "/api/v1/webhooks/"  // + {id}/attempts
	PathSandbox      = "/sandbox/datapass/" // the actions
)

// Bounds and lifetimes, as DataPass's (Doorkeeper's default token lifetime;
// the API's maxima) where it has them.
const (
	TokenTTL          = 2 * time.Hour
	maxTokens         = 1000
	maxAttempts       = 1000
	maxHabilitations  = 1000
	defaultLimit      = 10
	maxAttemptsLimit  = 100
	defaultWebhookID  = "1"
	defaultEnv        = "sandbox"
	deliveryTimeout   = 10 * time.Second
	maxActionBody     = 64 << 10
	maxKeptAnswerBody = 256
	// maxAuthorizations bounds a request's authorizations: each approval
	// adds one, and anyone who reaches the actions may approve; past it
	// the oldest (never the active one) are forgotten.
	maxAuthorizations = 100
)

// Scopes DataPass's OAuth applications may be granted; a token asked
// without a scope gets DataPass's default ones.
var (
	knownScopes   = []string{"public", datapass.ScopeReadAuthorizations, "write_authorizations", datapass.ScopeReadWebhooks}
	defaultScopes = []string{"public", datapass.ScopeReadAuthorizations}
)

// Request is one DataPass authorization request of API Particulier, with
// its first authorization.
type Request struct {
	// ID is the request number (datapass_id in Passerelle's file).
	ID    string
	SIRET string
	// AuthorizationID is the first authorization's number (default: ID).
	AuthorizationID string
	// State is the first authorization's: active (default) or revoked.
	State string
	// Scopes are the authorization's scopes.
	Scopes []string
	// Modalities default to france_connect.
	Modalities []string
}

// Config configures a Server.
type Config struct {
	// WebhookURL receives the webhooks (http or https).
	WebhookURL string
	// Secret signs them (X-Hub-Signature-256).
	Secret string
	// Environment is sent as X-App-Environment (default sandbox).
	Environment string
	// ClientID and ClientSecret are the one OAuth2 client of the API.
	ClientID, ClientSecret string
	// WebhookID is the webhook's number in /api/v1/webhooks/{id}/attempts
	// (default 1).
	WebhookID string
	Requests  []Request
	// RetryAfter, when positive, delivers a failed webhook once more after
	// it (DataPass retries without limit; once is enough to see it).
	RetryAfter time.Duration
	// HTTPClient delivers the webhooks (default: a 10 s timeout, no
	// redirects).
	HTTPClient *http.Client
	// Now defaults to time.Now.
	Now func() time.Time
}

// Attempt is one webhook delivery.
type Attempt struct {
	ID        int
	Event     string
	RequestID string
	// StatusCode is the receiver's answer; 0 when there was none.
	StatusCode int
	CreatedAt  time.Time
}

// Delivered reports whether DataPass counts the attempt as delivered.
func (a Attempt) Delivered() bool { return datapass.Delivered(a.StatusCode) }

// Server is the stand-in. Its zero value is not usable: see New.
type Server struct {
	cfg Config
	hc  *http.Client
	now func() time.Time
	mux *http.ServeMux

	mu       sync.Mutex
	requests map[string]*request
	seq      int   // orders authorizations by creation
	nextAuth int64 // next authorization number
	tokens   map[string]token
	attempts []Attempt
	attempt  int
	closed   bool
	timers   map[*time.Timer]struct{}
}

type request struct {
	id, siret string
	state     string // the request's: validated or revoked
	scopes    []string
	modal     []string
	created   time.Time
	lastFired int64 // the last event's fired_at (Unix seconds)
	auths     []*authorization
}

type authorization struct {
	id      int64
	seq     int
	state   string // active, obsolete or revoked
	revoked bool
	scopes  []string
	modal   []string
	created time.Time
}

type token struct {
	scopes  []string
	expires time.Time
}

var (
	idRe    = regexp.MustCompile(`^[1-9][0-9]{0,17}$`)
	siretRe = regexp.MustCompile(`^[0-9]{14}$`)
)

// New checks cfg and returns a Server holding its requests.
func New(cfg Config) (*Server, error) {
	u, err := url.Parse(cfg.WebhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("datapassop: webhook: an http(s) URL is required")
	}
	if cfg.Secret == "" || cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("datapassop: secret, client_id and client_secret are required")
	}
	if cfg.Environment == "" {
		cfg.Environment = defaultEnv
	}
	if cfg.WebhookID == "" {
		cfg.WebhookID = defaultWebhookID
	}
	if !idRe.MatchString(cfg.WebhookID) {
		return nil, errors.New("datapassop: webhook_id: a number is required")
	}
	s := &Server{cfg: cfg, hc: cfg.HTTPClient, now: cfg.Now, requests: map[string]*request{},
		tokens: map[string]token{}, timers: map[*time.Timer]struct{}{}}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: deliveryTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if s.now == nil {
		s.now = time.Now
	}
	created := s.now()
	for _, rq := range cfg.Requests {
		if err := s.add(rq, created); err != nil {
			return nil, err
		}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST "+PathToken, s.token)
	s.mux.HandleFunc("POST "+PathTokenLegacy, s.token)
	s.mux.HandleFunc("GET "+PathHabilitation, s.habilitations)
	s.mux.HandleFunc("GET "+PathWebhooks+"{id}/attempts", s.webhookAttempts)
	s.mux.HandleFunc("GET "+PathSandbox+"requests", s.list)
	s.mux.HandleFunc("POST "+PathSandbox+"requests/{id}/{action}", s.action)
	s.mux.HandleFunc("POST "+PathSandbox+"ping", s.ping)
	return s, nil
}

// add checks and holds one configured request.
func (s *Server) add(rq Request, created time.Time) error {
	if !idRe.MatchString(rq.ID) || s.requests[rq.ID] != nil {
		return fmt.Errorf("datapassop: request %q: a number, once", rq.ID)
	}
	if !siretRe.MatchString(rq.SIRET) {
		return fmt.Errorf("datapassop: request %s: siret: 14 digits required", rq.ID)
	}
	if rq.AuthorizationID == "" {
		rq.AuthorizationID = rq.ID
	}
	authID, err := strconv.ParseInt(rq.AuthorizationID, 10, 64)
	if err != nil || !idRe.MatchString(rq.AuthorizationID) {
		return fmt.Errorf("datapassop: request %s: authorization: a number is required", rq.ID)
	}
	for _, r := range s.requests {
		if r.auths[0].id == authID {
			return fmt.Errorf("datapassop: request %s: authorization %d is another request's", rq.ID, authID)
		}
	}
	if rq.State == "" {
		rq.State = datapass.StateActive
	}
	if rq.State != datapass.StateActive && rq.State != "revoked" {
		return fmt.Errorf("datapassop: request %s: state: active or revoked", rq.ID)
	}
	if len(rq.Scopes) == 0 || slices.ContainsFunc(rq.Scopes, func(sc string) bool { return !datapass.ValidScopeName(sc) }) {
		return fmt.Errorf("datapassop: request %s: scopes: plain names required", rq.ID)
	}
	if len(rq.Modalities) == 0 {
		rq.Modalities = []string{datapass.ModalityFranceConnect}
	}
	r := &request{id: rq.ID, siret: rq.SIRET, state: "validated", scopes: slices.Clone(rq.Scopes),
		modal: slices.Clone(rq.Modalities), created: created}
	if rq.State == "revoked" {
		r.state = "revoked"
	}
	s.seq++
	r.auths = []*authorization{{id: authID, seq: s.seq, state: rq.State, revoked: rq.State == "revoked",
		scopes: r.scopes, modal: r.modal, created: created}}
	s.nextAuth = max(s.nextAuth, authID+1)
	s.requests[rq.ID] = r
	return nil
}

// Handles reports whether the stand-in serves the request's path.
func (s *Server) Handles(r *http.Request) bool {
	p := r.URL.Path
	return p == PathToken || p == PathTokenLegacy || p == PathHabilitation ||
		strings.HasPrefix(p, PathWebhooks) || strings.HasPrefix(p, PathSandbox)
}

// ServeHTTP serves the stand-in's routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// Close stops the pending retries.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for t := range s.timers {
		t.Stop()
	}
	clear(s.timers)
}

// Attempts returns the deliveries made, oldest first.
func (s *Server) Attempts() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attempts)
}

// token serves the client credentials grant (Doorkeeper: client
// authentication by HTTP Basic or in the form).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.cfg.ClientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.ClientSecret)) == 1
	if !idOK || !secretOK {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if len(scopes) == 0 {
		scopes = defaultScopes
	}
	for _, sc := range scopes {
		if !slices.Contains(knownScopes, sc) {
			oauthError(w, http.StatusBadRequest, "invalid_scope")
			return
		}
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := s.now()
	s.mu.Lock()
	if len(s.tokens) >= maxTokens {
		for k, t := range s.tokens {
			if !now.Before(t.expires) || len(s.tokens) >= maxTokens {
				delete(s.tokens, k)
			}
		}
	}
	s.tokens[tok] = token{scopes: slices.Clone(scopes), expires: now.Add(TokenTTL)}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer",
		"expires_in": int(TokenTTL / time.Second), "scope": strings.Join(scopes, " "), "created_at": now.Unix()})
}

// authorized checks the bearer token and its scope, and answers a refusal
// as DataPass does (a JSON:API error list).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, scope string) bool {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	t, known := s.tokens[raw]
	s.mu.Unlock()
	switch {
	case !ok || !known || !s.now().Before(t.expires):
		apiError(w, http.StatusUnauthorized, "Non autorisé", "Jeton d'accès absent, invalide ou expiré")
	case !slices.Contains(t.scopes, scope):
		apiError(w, http.StatusForbidden, "Accès interdit", "Le jeton n'a pas le scope "+scope)
	default:
		return true
	}
	return false
}

// habilitations serves GET /api/v1/habilitations: siret, state (or
// state[]), limit (default 10, at most 1000) and offset; newest first.
func (s *Server) habilitations(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r, datapass.ScopeReadAuthorizations) {
		return
	}
	q := r.URL.Query()
	states := append(q["state[]"], q["state"]...)
	limit, offset := intParam(q, "limit", defaultLimit, maxHabilitations), intParam(q, "offset", 0, -1)
	type item struct {
		r *request
		a *authorization
	}
	var items []item
	s.mu.Lock()
	for _, rq := range s.requests {
		if q.Get("siret") != "" && q.Get("siret") != rq.siret {
			continue
		}
		for _, a := range rq.auths {
			if len(states) == 0 || slices.Contains(states, a.state) {
				items = append(items, item{rq, a})
			}
		}
	}
	slices.SortFunc(items, func(x, y item) int { return y.a.seq - x.a.seq })
	items = items[min(offset, len(items)):min(offset+limit, len(items))]
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		h := authorizationJSON(it.a)
		h["request_id"] = number(it.r.id)
		h["organisation"] = map[string]any{"id": 1, "siret": it.r.siret, "insee_payload": map[string]any{}}
		out = append(out, h)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// webhookAttempts serves GET /api/v1/webhooks/{id}/attempts: start_time,
// end_time (ISO 8601), limit (at most 100); newest first.
func (s *Server) webhookAttempts(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r, datapass.ScopeReadWebhooks) {
		return
	}
	if r.PathValue("id") != s.cfg.WebhookID {
		apiError(w, http.StatusNotFound, "Non trouvé", "Aucun webhook n'a été trouvé")
		return
	}
	q := r.URL.Query()
	from, to := time.Time{}, s.now()
	for name, dst := range map[string]*time.Time{"start_time": &from, "end_time": &to} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				apiError(w, http.StatusBadRequest, "Paramètre invalide", name+" n'est pas une date ISO 8601")
				return
			}
			*dst = t
		}
	}
	limit := intParam(q, "limit", maxAttemptsLimit, maxAttemptsLimit)
	out := []map[string]any{}
	s.mu.Lock()
	for i := len(s.attempts) - 1; i >= 0 && len(out) < limit; i-- {
		a := s.attempts[i]
		if a.CreatedAt.Before(from) || a.CreatedAt.After(to) {
			continue
		}
		var status any
		if a.StatusCode != 0 {
			status = a.StatusCode
		}
		out = append(out, map[string]any{"id": a.ID, "event": a.Event, "status_code": status, "response_body": nil,
			"created_at": railsTime(a.CreatedAt), "authorization_request_id": number(a.RequestID), "abandoned_at": nil})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// list serves the requests' state, for a person to look at.
func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := make([]map[string]any, 0, len(s.requests))
	for _, id := range s.sortedIDs() {
		rq := s.requests[id]
		auths := make([]map[string]any, 0, len(rq.auths))
		for _, a := range rq.auths {
			auths = append(auths, map[string]any{"id": a.id, "state": a.state, "revoked": a.revoked, "scopes": a.scopes})
		}
		out = append(out, map[string]any{"id": number(rq.id), "siret": rq.siret, "state": rq.state,
			"last_fired_at": rq.lastFired, "authorizations": auths})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) sortedIDs() []string {
	ids := make([]string, 0, len(s.requests))
	for id := range s.requests {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return int(number(a) - number(b)) })
	return ids
}

// intParam reads a non-negative integer parameter; too large is capped at
// max (max < 0: no cap), unreadable is def, as DataPass's maxed_limit does.
func intParam(q url.Values, name string, def, max int) int {
	n, err := strconv.Atoi(q.Get(name))
	if err != nil || n < 0 || name == "limit" && n == 0 {
		return def
	}
	if max >= 0 && n > max {
		return max
	}
	return n
}

// number returns a checked request or authorization number as DataPass
// serialises it (a JSON number).
func number(id string) int64 {
	n, _ := strconv.ParseInt(id, 10, 64)
	return n
}

func oauthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

func apiError(w http.ResponseWriter, status int, title, detail string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]string{
		{"status": strconv.Itoa(status), "title": title, "detail": detail}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// railsTime formats a time as Rails' JSON does.
func railsTime(t time.Time) string { return t.Format("2006-01-02T15:04:05.000Z07:00") }
