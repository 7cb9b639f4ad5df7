package openapi

// Components shared by the operations: error bodies, response headers,
// security schemes.

// Security scheme names.
const (
	schemeFranceConnect = "franceConnect"
	schemeAPIToken      = "apiToken"
	schemeAPIKey        = "apiKey"
)

// Names of the reusable response headers (components.headers).
const (
	headerRequestID          = "X-Request-Id"
	headerRateLimitLimit     = "RateLimit-Limit"
	headerRateLimitRemaining = "RateLimit-Remaining"
	headerRateLimitReset     = "RateLimit-Reset"
	headerRetryAfter         = "Retry-After"
	headerRateLimitPolicy    = "RateLimit-Policy"
	headerRateLimit          = "RateLimit"
)

func ref(kind, name string) obj { return obj{"$ref": "#/components/" + kind + "/" + name} }

func schemaRef(name string) obj { return ref("schemas", name) }

// securitySchemes returns components.securitySchemes.
func securitySchemes() obj {
	return obj{
		schemeFranceConnect: obj{
			"type":        "http",
			"scheme":      "bearer",
			"description": "FranceConnect v2 access token of the citizen, checked with FranceConnect (checktoken).",
		},
		schemeAPIToken: obj{
			"type":   "http",
			"scheme": "bearer",
			"description": "API token of the caller's habilitation (minted with `passerelle api-token`). " +
				"Never accepted on FranceConnect routes.",
		},
		schemeAPIKey: obj{
			"type": "apiKey",
			"in":   "header",
			"name": "X-Api-Key",
			"description": "The same API token, as legacy API Particulier v2 clients send it, on /api/v2 routes " +
				"served in both modalities.",
		},
	}
}

// responseHeaders returns components.headers. X-Request-Id is on every
// answer of the gateway; the RateLimit headers on those of a rate-limited
// route; Retry-After, RateLimit-Policy and RateLimit on every 429.
func responseHeaders() obj {
	integer := func(desc string) obj {
		return obj{"description": desc, "schema": obj{"type": "integer", "minimum": 0}}
	}
	return obj{
		headerRequestID: obj{
			"description": "Unique id of the answer, to quote to the support.",
			"required":    true,
			"schema":      obj{"type": "string", "minLength": 1},
		},
		headerRateLimitLimit:     integer("Requests allowed per window on this route."),
		headerRateLimitRemaining: integer("Requests left in the current window."),
		headerRateLimitReset:     integer("End of the current window (Unix time, seconds)."),
		headerRetryAfter: obj{
			"description": "Seconds to wait before retrying.",
			"required":    true,
			"schema":      obj{"type": "integer", "minimum": 0},
		},
		headerRateLimitPolicy: obj{
			"description": `The quota that refused (IETF RateLimit fields): "habilitation";q=20;w=1 (its name: habilitation, client_ip, citizen or failed_auth; q requests per w seconds).`,
			"schema":      obj{"type": "string"},
		},
		headerRateLimit: obj{
			"description": `What is left of that quota (IETF RateLimit fields): "habilitation";r=0;t=1 (nothing for t seconds).`,
			"schema":      obj{"type": "string"},
		},
	}
}

// answerHeaders returns the headers of an answer; withRetry adds
// Retry-After (429).
func answerHeaders(withRetry bool) obj {
	h := obj{}
	for _, n := range []string{headerRequestID, headerRateLimitLimit, headerRateLimitRemaining, headerRateLimitReset} {
		h[n] = ref("headers", n)
	}
	if withRetry {
		for _, n := range []string{headerRetryAfter, headerRateLimitPolicy, headerRateLimit} {
			h[n] = ref("headers", n)
		}
	}
	return h
}

// jsonResponse is a response of JSON body schema with the answer headers.
func jsonResponse(desc string, schema obj, withRetry bool) obj {
	return obj{
		"description": desc,
		"headers":     answerHeaders(withRetry),
		"content":     obj{"application/json": obj{"schema": schema}},
	}
}

// errorSchema is the v3/v4 error body (DOMAIN.md §6, apierror.Write).
func errorSchema() obj {
	return obj{
		"type":        "object",
		"description": "Error answer of v3/v4 routes. code is XXYYY: XX the provider prefix (00: the platform), YYY the error.",
		"required":    []string{"errors"},
		"properties": obj{
			"errors": obj{
				"type":     "array",
				"minItems": 1,
				"items": obj{
					"type":     "object",
					"required": []string{"code", "title", "detail"},
					"properties": obj{
						"code":   obj{"type": "string", "pattern": "^[0-9]{5}$"},
						"title":  obj{"type": "string"},
						"detail": obj{"type": "string"},
						"source": obj{
							"type":        []string{"object", "null"},
							"description": "The faulty query parameter, or null.",
							"properties":  obj{"parameter": obj{"type": "string"}},
						},
						"meta": obj{
							"type": "object",
							"properties": obj{
								"provider": obj{"type": "string", "description": "The provider the error comes from."},
								"retry_in": obj{"type": "integer", "description": "Seconds before retrying."},
							},
						},
					},
				},
			},
		},
	}
}

// errorV2Schema is the legacy error body (apierror.WriteV2).
func errorV2Schema() obj {
	return obj{
		"type":        "object",
		"description": "Error answer of v2 routes and of /api/introspect.",
		"required":    []string{"error", "reason", "message"},
		"properties": obj{
			"error":   obj{"type": "string", "description": "Error key: access_denied, bad_request, not_found, too_many_requests, provider_unknown_error, timeout_error…"},
			"reason":  obj{"type": "string"},
			"message": obj{"type": "string"},
		},
	}
}
