package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// kind is one sort of request of the mixed traffic.
type kind int

const (
	cached       kind = iota // FranceConnect route, the current "cached" token: 200
	fresh                    // FranceConnect route, a token never sent before: 200
	identite                 // identité route, sandbox API token: 200
	quota                    // identité route, the 5/s habilitation's API token: 200 or 429
	unknown                  // FranceConnect route, an unknown token (`nope~…`): 401
	badRecipient             // identité route, a recipient failing Luhn: 422
	nKinds
)

var kindNames = [nKinds]string{"cached", "fresh", "identite", "quota", "unknown", "badrecipient"}

// weights is the mix, out of 100 requests.
var weights = [nKinds]int{cached: 60, fresh: 8, identite: 15, quota: 7, unknown: 5, badRecipient: 5}

// expected reports whether an HTTP status is the expected answer to a kind.
func (k kind) expected(code uint16) bool {
	switch k {
	case cached, fresh, identite:
		return code == http.StatusOK
	case quota:
		return code == http.StatusOK || code == http.StatusTooManyRequests
	case unknown:
		return code == http.StatusUnauthorized
	case badRecipient:
		return code == http.StatusUnprocessableEntity
	}
	return false
}

// plan spreads the weights over a cycle of 100 requests with nginx's smooth
// weighted round-robin, so that every second of traffic holds the same mix.
func plan(w [nKinds]int) []kind {
	total := 0
	for _, x := range w {
		total += x
	}
	var current [nKinds]int
	out := make([]kind, 0, total)
	for range total {
		best := kind(0)
		for k := range nKinds {
			current[k] += w[k]
			if current[k] > current[best] {
				best = k
			}
		}
		current[best] -= total
		out = append(out, best)
	}
	return out
}

const (
	sandboxSIRET = "13002526500013" // the sandbox habilitation's
	quotaSIRET   = "21930048000015" // bench-quota's (deploy/bench/habilitations.yaml)
	badSIRET     = "13002526500014" // 14 digits failing Luhn: 422 00210
	quotaToken   = "bench_quota_5_per_second"
	fcPath       = "/v3/dss/quotient_familial/france_connect?recipient=" + sandboxSIRET
	// civility is a sandbox case of the identité route (Paul Louis DUPONT,
	// config/sandbox/payloads/README.md).
	civility = "&nomNaissance=DUPONT&nomUsage=MARTIN&prenoms%5B%5D=Paul&prenoms%5B%5D=Louis" +
		"&anneeDateNaissance=1962&moisDateNaissance=8&jourDateNaissance=24&sexeEtatCivil=M" +
		"&codeCogInseePaysNaissance=99100&codeCogInseeCommuneNaissance=75107"
	identitePath = "/v3/dss/quotient_familial/identite?recipient="
)

// traffic is a vegeta.Targeter source for one phase. Tokens carry the phase
// label, so that no token of a phase was ever seen by the gateway before.
//
// Each target's URL carries its kind in a fragment (#cached.3, #fresh, …):
// a client never sends the fragment, and vegeta copies the URL into the
// Result, which is how results are told apart.
type traffic struct {
	base   string        // gateway base URL, http://127.0.0.1:9080
	label  string        // unique per run and phase
	rotate time.Duration // lifetime of a "cached" token
	start  time.Time
	cycle  []kind
	n      atomic.Uint64
}

func newTraffic(base, label string, rotate time.Duration) *traffic {
	return &traffic{base: base, label: label, rotate: rotate, start: time.Now(), cycle: plan(weights)}
}

// targeter returns the vegeta.Targeter of the phase; it is safe for
// concurrent use by vegeta's workers.
func (t *traffic) targeter() vegeta.Targeter {
	return func(tgt *vegeta.Target) error {
		n := t.n.Add(1)
		k := t.cycle[n%uint64(len(t.cycle))]
		tgt.Method = http.MethodGet
		tgt.Body = nil
		var path, bearer, frag string
		switch k {
		case cached:
			gen := int64(time.Since(t.start) / t.rotate)
			path, bearer = fcPath, fmt.Sprintf("cnaf_qfv2~%s-c%d", t.label, gen)
			frag = "cached." + strconv.FormatInt(gen, 10)
		case fresh:
			path, bearer = fcPath, fmt.Sprintf("cnaf_qfv2~%s-n%d", t.label, n)
		case unknown:
			path, bearer = fcPath, fmt.Sprintf("nope~%s-%d", t.label, n)
		case identite:
			path, bearer = identitePath+sandboxSIRET+civility, "sandbox_all_scopes"
		case quota:
			path, bearer = identitePath+quotaSIRET+civility, quotaToken
		case badRecipient:
			path, bearer = identitePath+badSIRET+civility, "sandbox_all_scopes"
		}
		if frag == "" {
			frag = kindNames[k]
		}
		tgt.URL = t.base + path + "#" + frag
		tgt.Header = http.Header{"Authorization": {"Bearer " + bearer}}
		return nil
	}
}

// classify reads back a result's kind and, for a cached token, its
// generation (-1 otherwise).
func classify(url string) (kind, int64) {
	_, frag, _ := strings.Cut(url, "#")
	name, gen, ok := strings.Cut(frag, ".")
	for k, n := range kindNames {
		if n == name {
			if !ok {
				return kind(k), -1
			}
			g, err := strconv.ParseInt(gen, 10, 64)
			if err != nil {
				return nKinds, -1
			}
			return kind(k), g
		}
	}
	return nKinds, -1
}
