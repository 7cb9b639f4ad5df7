package caddyplugin

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/pings"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// pingsPath is API Particulier's provider status route: GET /api/pings
// answers every provider of the catalogue, GET /api/pings/<slug> one
// provider ("cnav", "cnaf-msa", "france-travail"), in the shape
// {"status", "last_update", "last_ok_status"}. The status is passive: it
// reports the outcome of this instance's recent calls to the provider,
// "unknown" after pingStaleAfter without one. The routes are public, like
// API Particulier's, and hold nothing about citizens or callers.
const pingsPath = "/api/pings"

// pingStaleAfter is how long a provider outcome stays current.
const pingStaleAfter = 5 * time.Minute

// trackers keeps one status tracker per set of providers for the life of the
// process, so that a configuration reload keeps what was learnt.
var trackers = struct {
	sync.Mutex
	bySet map[string]*pings.Tracker
}{bySet: map[string]*pings.Tracker{}}

// trackerFor returns the process-wide tracker of the catalogue's providers.
func trackerFor(c *catalogue.Catalogue) *pings.Tracker {
	names := make([]string, 0, len(c.Providers))
	for name := range c.Providers {
		names = append(names, name)
	}
	slices.Sort(names)
	key := strings.Join(names, "\x00")
	trackers.Lock()
	defer trackers.Unlock()
	t, ok := trackers.bySet[key]
	if !ok {
		t = pings.New(names, pingStaleAfter, nil)
		trackers.bySet[key] = t
	}
	return t
}

// isPingsRoute reports whether path is /api/pings or /api/pings/<slug>.
func isPingsRoute(path string) bool {
	return path == pingsPath || strings.HasPrefix(path, pingsPath+"/")
}

// servePings answers the provider status routes.
func (h *Handler) servePings(w http.ResponseWriter, r *http.Request, c *pipeline.Call) *apierror.Error {
	if aerr := h.publicGET(r, c); aerr != nil {
		return aerr
	}
	t := h.app.pings
	if r.URL.Path == pingsPath {
		t.ServeAll(w)
		return nil
	}
	provider, ok := t.BySlug(strings.TrimPrefix(r.URL.Path, pingsPath+"/"))
	if !ok || !t.ServeProvider(w, provider) {
		return apierror.UnknownRoute()
	}
	return nil
}

// publicGET admits a request on a public utility route: GET only, within
// the client address quota, without query parameters.
func (h *Handler) publicGET(r *http.Request, c *pipeline.Call) *apierror.Error {
	if r.Method != http.MethodGet {
		return apierror.MethodNotAllowed(http.MethodGet)
	}
	if aerr := h.pipe.LimitClient(r, c); aerr != nil {
		return aerr
	}
	if r.URL.RawQuery != "" {
		return apierror.ParamRefused("00366", "")
	}
	return nil
}
