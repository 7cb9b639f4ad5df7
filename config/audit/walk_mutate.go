package audit

import (
	"encoding/json"
	"slices"
	"strings"
)

// What matchers read and handlers change of a request. Caddy evaluates a
// route's matchers when the chain reaches it, on the request as the
// handlers before changed it: `passerelle /v3/*`, then a rewrite of
// /other/* into /v3/*, then `reverse_proxy /v3/* provider` proxies
// /other/* without passerelle. A route with the same matchers as an
// earlier one runs only where the earlier one ran (certain) as long as no
// handler in between, that may run on requests it did not match, changes
// what they read.

// Parts of a request, as matchers read them and handlers change them;
// anyPart stands for all of them.
const (
	uriPart    = "uri" // path and query
	methodPart = "method"
	hostPart   = "host"
	headerPart = "header"
	varsPart   = "vars" // variables and placeholders
	anyPart    = "*"
)

// matcherReads are the parts each matcher module reads; a module not
// listed reads anyPart (expression, file, a plugin's). protocol, tls,
// remote_ip and client_ip read what no handler changes.
var matcherReads = map[string][]string{
	"path": {uriPart}, "path_regexp": {uriPart}, "query": {uriPart}, "method": {methodPart},
	"host": {hostPart}, "header": {headerPart, hostPart}, "header_regexp": {headerPart, hostPart},
	"vars": {varsPart}, "vars_regexp": {varsPart},
	"protocol": nil, "tls": nil, "remote_ip": nil, "client_ip": nil,
}

// reads returns the parts a route's matchers (a matchKey) read.
func reads(key string) []string {
	var sets []map[string]json.RawMessage
	if json.Unmarshal([]byte(key), &sets) != nil {
		return []string{anyPart}
	}
	var out []string
	for _, set := range sets {
		for name, v := range set {
			if name == "not" { // a matcher set, or a list of them
				inner := string(v)
				if !strings.HasPrefix(inner, "[") {
					inner = "[" + inner + "]"
				}
				out = append(out, reads(inner)...)
				continue
			}
			parts, known := matcherReads[name]
			if !known {
				parts = []string{anyPart}
			}
			out = append(out, parts...)
		}
	}
	return out
}

// unchanging are handlers that change nothing a matcher reads: they act
// on the response, or (passerelle) run whatever comes after them on
// requests that went through passerelle, so they open no bypass.
// subroute and invoke are walked handler by handler.
var unchanging = []string{"", "passerelle", "subroute", "invoke", "encode", "tracing", "push", "templates",
	"intercept", "request_body", "log_append", "copy_response", "copy_response_headers"}

// changes returns the parts of the request a handler may change: rewrite
// (rewrite, uri, try_files, method, handle_path) its URI and method,
// headers with request operations (request_header) its headers and Host,
// vars and map (log_name, log_skip) its variables; a handler not known,
// anything.
func changes(obj map[string]any) []string {
	name, _ := obj["handler"].(string)
	switch {
	case slices.Contains(unchanging, name), slices.Contains(responders, name):
		return nil
	case name == "rewrite":
		return []string{uriPart, methodPart}
	case name == "headers":
		if obj["request"] == nil {
			return nil
		}
		return []string{headerPart, hostPart}
	case name == "vars" || name == "map":
		return []string{varsPart}
	}
	return []string{anyPart}
}

// unsettle returns chain with the handlers that ran under matchers
// reading what changed (changes) marked as under several matchers: a
// route with the same matchers no longer runs only where they ran. Those
// under the matchers of the route that changed the request were unmarked
// (certain) and stay so: it changed only requests that ran them.
func unsettle(chain, changed []string) []string {
	if len(changed) == 0 {
		return chain
	}
	out := slices.Clone(chain)
	for i, b := range out {
		key, name, ok := strings.Cut(strings.TrimPrefix(b, "?"), "\x00")
		if !ok || !strings.HasPrefix(b, "?") || key == "" {
			continue
		}
		read := reads(key)
		if slices.Contains(changed, anyPart) || slices.Contains(read, anyPart) ||
			slices.ContainsFunc(changed, func(p string) bool { return slices.Contains(read, p) }) {
			out[i] = conditional("", name)
		}
	}
	return out
}
