// Package openapi generates the OpenAPI 3.1 document of a Passerelle
// deployment's routes from its endpoint catalogue (config/catalogue).
//
// The document describes what the gateway itself enforces and answers: one
// operation per catalogue endpoint (its modality, provider, scopes and the
// fields each releases, its query parameters, its credential), success bodies
// whose top-level members are exactly those the scopes can release, and the
// error shapes of the caddyplugin/internal/apierror package. Optionally it
// also describes the utility routes (Options.Utility).
//
// Generation is plain data: the output is deterministic JSON (object keys
// sorted, hence paths sorted), so two calls on the same catalogue and options
// give the same bytes. Validating HTTP exchanges against a document is the
// job of the openapitest subpackage, kept apart so that serving the document
// pulls no OpenAPI library into the gateway binary.
package openapi

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// OpenAPIVersion is the OpenAPI version of generated documents.
const OpenAPIVersion = "3.1.0"

// DefaultTitle is info.title when Options.Title is empty.
const DefaultTitle = "Passerelle"

// Options shape the generated document.
type Options struct {
	// Title is info.title (DefaultTitle when empty).
	Title string
	// Version is info.version, the deployment's own version. Required.
	Version string
	// ServerURL, when set, is the document's only server (servers[0].url).
	ServerURL string
	// Utility adds the utility routes: GET IntrospectPath, PingsPath,
	// PingPath and DocumentPath.
	Utility bool
	// Include, when set, keeps only the endpoints it accepts (the routes a
	// handler restricted to some endpoint ids serves).
	Include func(*catalogue.Endpoint) bool
}

// obj is a JSON object of the document. encoding/json writes map keys in
// sorted order, which makes the output deterministic.
type obj = map[string]any

// infoDescription introduces the document.
const infoDescription = "Routes served by this Passerelle deployment, generated from its endpoint catalogue.\n\n" +
	"FranceConnect routes take the citizen's FranceConnect v2 access token and accept no identity parameter; " +
	"identite and identifiant routes take the habilitation's API token and the citizen's identity or provider " +
	"identifier as query parameters. Every route accepts only the query parameters it lists.\n\n" +
	"Answers are filtered by scope: each scope releases the response members listed in the operation's " +
	"description, and members the caller's scopes do not release are omitted (not nulled). The catalogue states " +
	"which members a scope releases, not their types: member values are therefore left unconstrained here."

// Generate returns the OpenAPI 3.1 document, as indented JSON, of the
// routes of cat (and of the utility routes when opts.Utility). It fails on a
// nil catalogue, an empty opts.Version or a catalogue path that collides with
// a utility route.
func Generate(cat *catalogue.Catalogue, opts Options) ([]byte, error) {
	if cat == nil {
		return nil, errors.New("openapi: no catalogue")
	}
	if opts.Version == "" {
		return nil, errors.New("openapi: Options.Version is required")
	}
	paths := obj{}
	tags := map[string]bool{}
	for i := range cat.Endpoints {
		e := &cat.Endpoints[i]
		if opts.Include != nil && !opts.Include(e) {
			continue
		}
		fc, _ := cat.Lookup(e.Path)
		twin, hasTwin := cat.CallerTwin(e.Path)
		fcIncluded := opts.Include == nil || opts.Include(fc)
		if hasTwin && twin == e && fcIncluded {
			continue // described by its FranceConnect twin's operation
		}
		if _, dup := paths[e.Path]; dup {
			return nil, fmt.Errorf("openapi: endpoint %s: duplicate path %s", e.ID, e.Path)
		}
		op := operation(e)
		if hasTwin && twin != e && (opts.Include == nil || opts.Include(twin)) {
			mergeTwin(op, e, twin)
		}
		paths[e.Path] = obj{strings.ToLower(cmp.Or(e.Method, "GET")): op}
		tags[e.ProviderName] = true
	}
	schemas := obj{"Error": errorSchema(), "ErrorV2": errorV2Schema()}
	if opts.Utility {
		for p, item := range utilityPaths(cat) {
			if _, dup := paths[p]; dup {
				return nil, fmt.Errorf("openapi: catalogue path %s collides with a utility route", p)
			}
			paths[p] = item
		}
		schemas["Introspection"] = introspectionSchema()
		schemas["PingStatus"] = pingStatusSchema()
		tags[utilityTag] = true
	}
	doc := obj{
		"openapi": OpenAPIVersion,
		"info": obj{
			"title":       cmp.Or(opts.Title, DefaultTitle),
			"version":     opts.Version,
			"description": infoDescription,
		},
		"paths": paths,
		"tags":  tagList(tags),
		"components": obj{
			"schemas":         schemas,
			"securitySchemes": securitySchemes(),
			"headers":         responseHeaders(),
			"responses":       sharedResponses(),
		},
	}
	if opts.ServerURL != "" {
		doc["servers"] = []obj{{"url": opts.ServerURL}}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "CNAF & MSA" stays readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi: encoding: %w", err)
	}
	return b.Bytes(), nil
}

// tagList returns the document's tags (providers and utility), sorted.
func tagList(set map[string]bool) []obj {
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	tags := make([]obj, 0, len(names))
	for _, n := range names {
		t := obj{"name": n}
		if n == utilityTag {
			t["description"] = "Gateway utility routes."
		} else {
			t["description"] = "Routes served by the provider " + n + "."
		}
		tags = append(tags, t)
	}
	return tags
}
