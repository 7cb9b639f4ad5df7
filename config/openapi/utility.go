package openapi

import (
	"slices"

	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// Paths of the utility routes (Options.Utility).
const (
	// IntrospectPath lists the caller's rights.
	IntrospectPath = "/api/introspect"
	// PingsPath gives the status of every provider.
	PingsPath = "/api/pings"
	// PingPath gives the status of one provider.
	PingPath = "/api/pings/{provider}"
	// DocumentPath serves the generated document itself.
	DocumentPath = "/api/openapi.json"
)

// utilityTag groups the utility routes.
const utilityTag = "utility"

// utilityPaths returns the path items of the utility routes, as the
// handler serves them (caddyplugin: introspect.go, pings.go, openapi.go).
// Introspect errors use the v2 shape; the other utility routes' errors the
// v3 one.
func utilityPaths(cat *catalogue.Catalogue) obj {
	v2 := schemaRef("ErrorV2")
	names := providerNames(cat)
	statuses := obj{}
	for _, n := range names {
		statuses[n] = schemaRef("PingStatus")
	}
	pings := obj{"type": "object", "properties": statuses, "additionalProperties": schemaRef("PingStatus"),
		"description": "Status of each provider of the catalogue, by provider name."}
	ping := schemaRef("PingStatus")
	slug := obj{"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$"}
	if slugs := providerSlugs(names); len(slugs) > 0 {
		slug["enum"] = slugs
	}
	noQuery := jsonResponse("A query string was sent (00366): these routes take none.", schemaRef("Error"), false)
	return obj{
		IntrospectPath: obj{"get": obj{
			"operationId": "passerelle_introspect",
			"summary":     "Rights of the credential",
			"description": "The habilitation behind the credential and the scopes it can use: all of the " +
				"habilitation's scopes for its API token; for a FranceConnect token, the token's scopes that its " +
				"paired habilitation grants. Errors use the v2 shape.",
			"tags":     []string{utilityTag},
			"security": []obj{{schemeAPIToken: []string{}}, {schemeFranceConnect: []string{}}},
			"responses": obj{
				"200":     jsonResponse("The credential's rights.", schemaRef("Introspection"), false),
				"401":     jsonResponse("access_denied: credential missing, unknown, expired or revoked.", v2, false),
				"429":     jsonResponse("too_many_requests.", v2, true),
				"503":     jsonResponse("FranceConnect unavailable.", v2, false),
				"504":     jsonResponse("FranceConnect did not answer in time.", v2, false),
				"default": jsonResponse("Other errors, same shape.", v2, false),
			},
		}},
		PingsPath: obj{"get": obj{
			"operationId": "passerelle_pings",
			"summary":     "Status of every provider",
			"description": "Passive status: the outcome of this gateway instance's recent calls to each provider; " +
				"unknown when none is recent.",
			"tags":     []string{utilityTag},
			"security": []obj{},
			"responses": obj{
				"200":     jsonResponse("No provider is failing.", pings, false),
				"502":     jsonResponse("At least one provider is failing (bad_gateway).", pings, false),
				"422":     noQuery,
				"429":     ref("responses", "TooManyRequests"),
				"default": ref("responses", "OtherError"),
			},
		}},
		PingPath: obj{"get": obj{
			"operationId": "passerelle_ping",
			"summary":     "Status of one provider",
			"tags":        []string{utilityTag},
			"security":    []obj{},
			"parameters": []obj{{
				"name": "provider", "in": "path", "required": true, "schema": slug,
				"description": "The provider's slug: its name lower-cased, runs of other characters " +
					"than letters and digits turned into one dash (\"CNAF & MSA\" → cnaf-msa).",
			}},
			"responses": obj{
				"200":     jsonResponse("The provider answers (ok) or has not been called lately (unknown).", ping, false),
				"502":     jsonResponse("The provider is failing (bad_gateway).", ping, false),
				"404":     jsonResponse("Unknown provider (00404).", schemaRef("Error"), false),
				"422":     noQuery,
				"429":     ref("responses", "TooManyRequests"),
				"default": ref("responses", "OtherError"),
			},
		}},
		DocumentPath: obj{"get": obj{
			"operationId": "passerelle_openapi",
			"summary":     "This document",
			"tags":        []string{utilityTag},
			"security":    []obj{},
			"responses": obj{
				"200": jsonResponse("The OpenAPI 3.1 document of the deployment's routes.",
					obj{"type": "object", "required": []string{"openapi", "info", "paths"}}, false),
				"429":     ref("responses", "TooManyRequests"),
				"default": ref("responses", "OtherError"),
			},
		}},
	}
}

// providerNames returns the names of the catalogue's providers, sorted:
// the ping routes report every one.
func providerNames(cat *catalogue.Catalogue) []string {
	names := make([]string, 0, len(cat.Providers))
	for n := range cat.Providers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// providerSlugs returns the slugs of names, sorted, without those two
// providers share (the ping route finds neither).
func providerSlugs(names []string) []string {
	count := map[string]int{}
	for _, n := range names {
		count[catalogue.ProviderSlug(n)]++
	}
	var slugs []string
	for s, n := range count {
		if n == 1 && s != "" {
			slugs = append(slugs, s)
		}
	}
	slices.Sort(slugs)
	return slugs
}

// introspectionSchema is the body of GET /api/introspect.
func introspectionSchema() obj {
	return obj{
		"type":                 "object",
		"required":             []string{"_id", "name", "scopes"},
		"additionalProperties": false,
		"properties": obj{
			"_id":    obj{"type": "string", "description": "Id of the habilitation."},
			"name":   obj{"type": []string{"string", "null"}, "description": "Label of the habilitation."},
			"scopes": obj{"type": "array", "items": obj{"type": "string"}},
		},
	}
}

// pingStatusSchema is the status of one provider.
func pingStatusSchema() obj {
	dateTime := obj{"type": []string{"string", "null"}, "format": "date-time"}
	return obj{
		"type":     "object",
		"required": []string{"status", "last_update", "last_ok_status"},
		"properties": obj{
			"status":         obj{"type": "string", "enum": []string{"ok", "bad_gateway", "unknown"}},
			"last_update":    withDesc(dateTime, "Time of the last check, or null before the first."),
			"last_ok_status": withDesc(dateTime, "Time of the last successful check, or null if none."),
		},
	}
}

func withDesc(s obj, desc string) obj {
	out := obj{"description": desc}
	for k, v := range s {
		out[k] = v
	}
	return out
}
