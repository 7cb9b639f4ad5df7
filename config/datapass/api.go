package datapass

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/passerelle-gw/passerelle/config/habilitation"
	"github.com/passerelle-gw/passerelle/config/urlhost"
)

// Bounds of the API client.
const (
	// MaxAPIBody bounds one response of DataPass's API.
	MaxAPIBody = 8 << 20
	// PageLimit is the page size asked of /api/v1/habilitations: DataPass's
	// documented maximum (config/openapi/v1.yaml: limit ≤ 1000).
	PageLimit = 1000
	// MaxPages bounds the pages read for one organisation; more is an error
	// (a read that cannot finish is never taken as complete).
	MaxPages = 100
	// AttemptsLimit is the number of delivery attempts asked of
	// /api/v1/webhooks/{id}/attempts (DataPass's maximum).
	AttemptsLimit = 100
	// DefaultAPITimeout bounds one HTTP exchange when APIConfig.HTTPClient
	// sets no timeout.
	DefaultAPITimeout = 30 * time.Second
)

// The OAuth2 scopes of DataPass's API (Doorkeeper): read_authorizations for
// /habilitations (DataPass's default scope), read_webhooks for a webhook's
// attempts. Each is asked in a token of its own, so that an OAuth
// application granted read_authorizations only still resyncs.
const (
	ScopeReadAuthorizations = "read_authorizations"
	ScopeReadWebhooks       = "read_webhooks"
)

// Errors of the API client. They never hold a secret, a token, or a
// response body.
var (
	ErrAPIConfig   = errors.New("datapass: api: bad configuration")
	ErrAPITooLarge = errors.New("datapass: api: response larger than 8 MiB")
	ErrAPIPages    = errors.New("datapass: api: more pages than allowed")
	ErrAPIToken    = errors.New("datapass: api: no access token")
	ErrAPIStatus   = errors.New("datapass: api: unexpected status")
	ErrAPISyntax   = errors.New("datapass: api: response is not the expected JSON")
)

// APIConfig configures an API client.
type APIConfig struct {
	// BaseURL is DataPass's root, e.g. https://datapass.api.gouv.fr
	// (https; http only on a loopback host).
	BaseURL string
	// TokenURL defaults to BaseURL + "/api/v1/oauth/token".
	TokenURL string
	// ClientID and ClientSecret are the OAuth2 application's credentials
	// (client credentials grant; the application's owner needs DataPass's
	// developer role for API Particulier).
	ClientID, ClientSecret string
	// HTTPClient is copied: the copy follows no redirect (a redirect would
	// carry the bearer token elsewhere) and keeps no cookie. Nil: a client
	// with DefaultAPITimeout.
	HTTPClient *http.Client
}

// API reads DataPass's API with an OAuth2 client-credentials token. Safe
// for concurrent use.
type API struct {
	base  string
	hc    *http.Client
	auths *tokenCache // read_authorizations
	hooks *tokenCache // read_webhooks
}

// tokenCache holds one scope's token, fetched again once it expires or the
// API refuses it.
type tokenCache struct {
	cc  *clientcredentials.Config // a pointer: it caches the detected auth style
	mu  sync.Mutex
	tok *oauth2.Token
}

// NewAPI returns an API client; it makes no network call.
func NewAPI(cfg APIConfig) (*API, error) {
	base, err := checkAPIURL(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("%w: base url: %v", ErrAPIConfig, err)
	}
	tokenURL := cfg.TokenURL
	if tokenURL == "" {
		tokenURL = base + "/api/v1/oauth/token"
	}
	if tokenURL, err = checkAPIURL(tokenURL); err != nil {
		return nil, fmt.Errorf("%w: token url: %v", ErrAPIConfig, err)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, fmt.Errorf("%w: client id and client secret are required", ErrAPIConfig)
	}
	hc := &http.Client{Timeout: DefaultAPITimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
		if hc.Timeout == 0 {
			hc.Timeout = DefaultAPITimeout
		}
	}
	hc.Jar = nil
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cache := func(scope string) *tokenCache {
		return &tokenCache{cc: &clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			TokenURL: tokenURL, Scopes: []string{scope}}}
	}
	return &API{base: base, hc: hc, auths: cache(ScopeReadAuthorizations), hooks: cache(ScopeReadWebhooks)}, nil
}

// String hides the credentials, should an API ever be printed.
func (a *API) String() string { return "datapass api " + a.base }

// checkAPIURL accepts an absolute https URL without credentials, query or
// fragment; http only on a loopback host (tests, the sandbox stand-in).
func checkAPIURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("an absolute URL without credentials, query or fragment is required")
	}
	switch u.Scheme {
	case "https":
		return raw, nil
	case "http":
		if h := u.Hostname(); h == "localhost" || net.ParseIP(h).IsLoopback() {
			return raw, nil
		}
	}
	return "", errors.New("https is required (http only on a loopback host)")
}

// IsTestPlatformURL reports whether a URL is one of DataPass's test
// platforms (staging, sandbox: any host below datapass.api.gouv.fr), or a
// loopback stand-in, whatever its case: production mode refuses them, since
// their approvals would widen habilitations.
func IsTestPlatformURL(raw string) bool {
	host, ok := urlhost.Of(raw)
	if !ok {
		return true // not a URL production can use either
	}
	return strings.HasSuffix(host, ".datapass.api.gouv.fr") || host == "localhost" || net.ParseIP(host).IsLoopback()
}

// APIHabilitation is what Passerelle keeps of one item of
// /api/v1/habilitations: derived fields only (the item's data also holds
// the request's free text and contacts, its organisation the INSEE record:
// none of it is kept).
type APIHabilitation struct {
	// ID is the authorization's number, RequestID its request's.
	ID, RequestID string
	// State is active, obsolete or revoked ("" when not a lowercase name).
	State   string
	Revoked bool
	// DefinitionID is definition_id, or api_particulier when only the older
	// authorization_request_class names API Particulier.
	DefinitionID string
	// Scopes and Modalities come from the item's data; names that are not
	// plain identifiers are dropped.
	Scopes, Modalities []string
	// SIRET is organisation.siret (organization.siret accepted); "" when
	// absent or not 14 digits.
	SIRET string
}

// Authorization returns the item as an Event's authorization (Derive).
func (h APIHabilitation) Authorization() Authorization {
	return Authorization{ID: h.ID, State: h.State, Revoked: h.Revoked, DefinitionID: h.DefinitionID,
		Scopes: h.Scopes, Modalities: h.Modalities}
}

// apiParticulierClass is the authorization_request_class of API
// Particulier's authorizations, read when definition_id is absent.
const apiParticulierClass = "AuthorizationRequest::APIParticulier"

// scopeNameRe is the shape of a scope or modality name kept.
var scopeNameRe = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// ValidScopeName reports whether s has the shape of a scope or modality
// name the API client keeps.
func ValidScopeName(s string) bool { return scopeNameRe.MatchString(s) }

// Delivered reports whether DataPass counts a webhook delivery attempt
// answered with status as delivered (200, 201, 204).
func Delivered(status int) bool {
	return status == http.StatusOK || status == http.StatusCreated || status == http.StatusNoContent
}

type rawHabilitation struct {
	ID                        json.RawMessage `json:"id"`
	RequestID                 json.RawMessage `json:"request_id"`
	State                     string          `json:"state"`
	Revoked                   bool            `json:"revoked"`
	DefinitionID              string          `json:"definition_id"`
	AuthorizationRequestClass string          `json:"authorization_request_class"`
	Data                      json.RawMessage `json:"data"`
	Organisation              *rawOrg         `json:"organisation"`
	Organization              *rawOrg         `json:"organization"`
}

type rawOrg struct {
	SIRET string `json:"siret"`
}

// DecodeHabilitationsPage reads one page of /api/v1/habilitations (a JSON
// list). It returns the items whose id and request_id are readable, and
// the number of items the page held (for pagination). Unknown fields are
// ignored; nothing else of an item is kept. A JSON null is not a list: read
// as an empty one, it would revoke every request of the organisation.
func DecodeHabilitationsPage(body []byte) ([]APIHabilitation, int, error) {
	var raw []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return nil, 0, ErrAPISyntax
	}
	out := make([]APIHabilitation, 0, len(raw))
	for _, item := range raw {
		var r rawHabilitation
		if json.Unmarshal(item, &r) != nil {
			continue
		}
		h := APIHabilitation{Revoked: r.Revoked}
		var ok bool
		if h.ID, ok = parseID(r.ID); !ok {
			continue
		}
		if h.RequestID, ok = parseID(r.RequestID); !ok {
			continue
		}
		if nameRe.MatchString(r.State) {
			h.State = r.State
		}
		switch {
		case nameRe.MatchString(r.DefinitionID):
			h.DefinitionID = r.DefinitionID
		case r.DefinitionID == "" && r.AuthorizationRequestClass == apiParticulierClass:
			h.DefinitionID = DefinitionAPIParticulier
		}
		var data struct {
			Scopes     json.RawMessage `json:"scopes"`
			Modalities json.RawMessage `json:"modalities"`
		}
		if json.Unmarshal(r.Data, &data) == nil {
			h.Scopes = nameList(data.Scopes)
			h.Modalities = nameList(data.Modalities)
		}
		org := r.Organisation
		if org == nil {
			org = r.Organization
		}
		if org != nil && siretRe.MatchString(org.SIRET) {
			h.SIRET = org.SIRET
		}
		out = append(out, h)
	}
	return out, len(raw), nil
}

// nameList reads a JSON list of strings, keeping the plain names (at most
// maxScopes; a longer list grants nothing).
func nameList(raw json.RawMessage) []string {
	var in []string
	if len(raw) == 0 || json.Unmarshal(raw, &in) != nil || len(in) > maxScopes {
		return nil
	}
	var out []string
	for _, s := range in {
		if scopeNameRe.MatchString(s) {
			out = append(out, s)
		}
	}
	return out
}

// Habilitations returns the active and revoked authorizations of an
// organisation (GET /api/v1/habilitations?siret=…&state[]=active&
// state[]=revoked&limit=1000&offset=…), page after page until a short page
// (at most MaxPages; each body at most MaxAPIBody). Items are deduplicated
// by id (offset pagination may show one twice while DataPass changes).
// Any failure fails the whole read: a partial list is never returned.
func (a *API) Habilitations(ctx context.Context, siret string) ([]APIHabilitation, error) {
	if !siretRe.MatchString(siret) {
		return nil, fmt.Errorf("%w: a SIRET is 14 digits", ErrAPIConfig)
	}
	var out []APIHabilitation
	seen := map[string]bool{}
	offset := 0
	for range MaxPages {
		q := url.Values{
			"siret":   {siret},
			"state[]": {StateActive, "revoked"},
			"limit":   {strconv.Itoa(PageLimit)},
			"offset":  {strconv.Itoa(offset)},
		}
		body, err := a.get(ctx, a.auths, "/api/v1/habilitations?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("datapass: api: habilitations of %s: %w", siret, err)
		}
		items, n, err := DecodeHabilitationsPage(body)
		if err != nil {
			return nil, fmt.Errorf("datapass: api: habilitations of %s: %w", siret, err)
		}
		for _, h := range items {
			if !seen[h.ID] {
				seen[h.ID] = true
				out = append(out, h)
			}
		}
		if n < PageLimit {
			return out, nil
		}
		offset += n
	}
	return nil, fmt.Errorf("%w (%d pages of %d for %s)", ErrAPIPages, MaxPages, PageLimit, siret)
}

// FailedDeliveries counts the failed deliveries of a webhook since a time
// (GET /api/v1/webhooks/{id}/attempts?start_time=…&limit=100): attempts
// whose status_code is not 200, 201 or 204, or null (no answer). DataPass's
// serializer (API::V1::WebhookAttemptSerializer) names the field
// status_code; response_code is read when status_code is absent, should a
// version name it so. DataPass returns at most the 100 latest attempts: the
// count is a lower bound when 100 come back.
func (a *API) FailedDeliveries(ctx context.Context, webhookID string, since time.Time) (int, error) {
	if !habilitation.ValidDataPassID(webhookID) {
		return 0, fmt.Errorf("%w: a webhook id is a number", ErrAPIConfig)
	}
	q := url.Values{
		"start_time": {since.UTC().Format(time.RFC3339)},
		"limit":      {strconv.Itoa(AttemptsLimit)},
	}
	body, err := a.get(ctx, a.hooks, "/api/v1/webhooks/"+webhookID+"/attempts?"+q.Encode())
	if err != nil {
		return 0, fmt.Errorf("datapass: api: webhook attempts: %w", err)
	}
	return countFailed(body)
}

// countFailed counts the failed attempts of an attempts list.
func countFailed(body []byte) (int, error) {
	var attempts []struct {
		StatusCode   json.RawMessage `json:"status_code"`
		ResponseCode json.RawMessage `json:"response_code"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&attempts); err != nil || dec.More() {
		return 0, fmt.Errorf("datapass: api: webhook attempts: %w", ErrAPISyntax)
	}
	failed := 0
	for _, at := range attempts {
		code := at.StatusCode
		if len(code) == 0 {
			code = at.ResponseCode
		}
		var n int
		if json.Unmarshal(code, &n) != nil { // null, absent or not a number: no answer
			failed++
			continue
		}
		if !Delivered(n) {
			failed++
		}
	}
	return failed, nil
}

// get reads one API resource with a token of tc's scope; a 401 drops the
// token and tries once more with a fresh one.
func (a *API) get(ctx context.Context, tc *tokenCache, path string) ([]byte, error) {
	for try := 0; ; try++ {
		tok, err := a.token(ctx, tc, try > 0)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrAPIConfig, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		resp, err := a.hc.Do(req)
		if err != nil {
			return nil, transportError(err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAPIBody+1))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusUnauthorized && try == 0:
			continue
		case resp.StatusCode != http.StatusOK:
			return nil, fmt.Errorf("%w %d", ErrAPIStatus, resp.StatusCode)
		case err != nil:
			return nil, transportError(err)
		case len(body) > MaxAPIBody:
			return nil, ErrAPITooLarge
		}
		return body, nil
	}
}

// token returns tc's access token, fetching one when none is held, it
// expired, or fresh is set (the API refused it).
func (a *API) token(ctx context.Context, tc *tokenCache, fresh bool) (string, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if !fresh && tc.tok.Valid() {
		return tc.tok.AccessToken, nil
	}
	tc.tok = nil
	tok, err := tc.cc.Token(context.WithValue(ctx, oauth2.HTTPClient, a.hc))
	if err != nil {
		reason := "transport error"
		var re *oauth2.RetrieveError
		switch {
		case errors.As(err, &re) && re.Response != nil:
			reason = "status " + strconv.Itoa(re.Response.StatusCode) // re.Error() would print the body
		case ctx.Err() != nil:
			return "", fmt.Errorf("%w: %w", ErrAPIToken, ctx.Err())
		case isTimeout(err) || errors.Is(err, context.DeadlineExceeded):
			reason = "timeout"
		case strings.Contains(err.Error(), "cannot parse") || strings.Contains(err.Error(), "missing access_token"):
			reason = "unreadable response"
		}
		return "", fmt.Errorf("%w: %s", ErrAPIToken, reason)
	}
	if !strings.EqualFold(tok.Type(), "Bearer") {
		return "", fmt.Errorf("%w: not a bearer token", ErrAPIToken)
	}
	tc.tok = tok
	return tok.AccessToken, nil
}

// transportError keeps a transport failure's cause without the URL (whose
// query names an organisation, and could one day hold more).
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("datapass: api: transport: %w", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
