package datapass

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// MaxBodySize bounds a webhook body (DataPass sends a few kilobytes).
const MaxBodySize = 1 << 20

// ModelType is the model_type of API Particulier's authorization requests;
// the webhook of another type's requests is ignored.
const ModelType = "authorization_request/api_particulier"

// Bounds on what Parse keeps of a payload.
const (
	maxAuthorizations = 100
	maxScopes         = 200
)

// Events are the events DataPass sends (Webhook::VALID_EVENTS and the API's
// own). An event outside this list is kept as it is named, and may only
// narrow, as every event but approve.
var Events = []string{"create", "update", "submit", "approve", "refuse", "revoke", "request_changes",
	"archive", "reopen", "cancel_reopening", "transfer", "create_by_api", "update_by_api"}

// Event is what Passerelle keeps of a webhook payload: derived fields only,
// nothing personal (no applicant, no contact, no free text).
type Event struct {
	// Test is DataPass's ping ({"test": true}); the other fields are empty.
	Test bool
	// Name is the event: approve, revoke… (one of Events, or another
	// DataPass adds later).
	Name string
	// FiredAt is when DataPass fired the event (fired_at); a retried
	// delivery keeps it.
	FiredAt time.Time
	// ModelType is the payload's model_type (ModelType for API Particulier).
	ModelType string
	// RequestID is the DataPass request number (data.id, model_id).
	RequestID string
	// SIRET is the organisation's SIRET (data.organization.siret).
	SIRET string
	// Authorizations are the request's authorizations (habilitations).
	Authorizations []Authorization
}

// Authorization is one authorization of a request: the rights DataPass
// granted, which survive the request going back to draft.
type Authorization struct {
	ID string
	// State is active, obsolete (replaced by a reapproval) or revoked.
	State        string
	Revoked      bool
	DefinitionID string
	// Scopes and Modalities come from the authorization's data; nil when
	// absent or not a list of strings (the authorization then grants
	// nothing).
	Scopes     []string
	Modalities []string
}

var (
	siretRe = regexp.MustCompile(`^[0-9]{14}$`)
	nameRe  = regexp.MustCompile(`^[a-z_]{1,40}$`)
)

// Errors of Parse. They name the field, never its value.
var (
	ErrSyntax    = errors.New("datapass: payload: not a JSON object")
	ErrEvent     = errors.New("datapass: payload: event: missing or not a lowercase name")
	ErrFiredAt   = errors.New("datapass: payload: fired_at: missing or not a time")
	ErrRequestID = errors.New("datapass: payload: data.id: missing or not a request number")
	ErrSIRET     = errors.New("datapass: payload: data.organization.siret: missing or not 14 digits")
	ErrTooLarge  = errors.New("datapass: payload: too many authorizations or scopes")
)

type rawPayload struct {
	Test      bool            `json:"test"`
	Event     string          `json:"event"`
	FiredAt   json.RawMessage `json:"fired_at"`
	ModelType string          `json:"model_type"`
	ModelID   json.RawMessage `json:"model_id"`
	Data      *struct {
		ID           json.RawMessage `json:"id"`
		Organization *struct {
			SIRET string `json:"siret"`
		} `json:"organization"`
		Authorizations []struct {
			ID           json.RawMessage `json:"id"`
			Revoked      bool            `json:"revoked"`
			State        string          `json:"state"`
			DefinitionID string          `json:"definition_id"`
			Data         json.RawMessage `json:"data"`
		} `json:"authorizations"`
	} `json:"data"`
}

// Parse reads a webhook body (already verified: Verify). A ping gives
// Event{Test: true}. A payload of another model type gives its Name,
// FiredAt and ModelType only. For API Particulier it requires the event,
// fired_at (Unix seconds, or an RFC 3339 string), the request number and
// the organisation's SIRET.
func Parse(body []byte) (Event, error) {
	var raw rawPayload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return Event{}, ErrSyntax
	}
	if dec.More() {
		return Event{}, ErrSyntax
	}
	if raw.Test {
		return Event{Test: true}, nil
	}
	ev := Event{Name: raw.Event, ModelType: raw.ModelType}
	if !nameRe.MatchString(ev.Name) {
		return Event{}, ErrEvent
	}
	t, ok := parseTime(raw.FiredAt)
	if !ok {
		return Event{}, ErrFiredAt
	}
	ev.FiredAt = t
	if ev.ModelType != ModelType {
		return ev, nil
	}
	if raw.Data == nil {
		return Event{}, ErrRequestID
	}
	id, ok := parseID(raw.Data.ID)
	if !ok {
		if id, ok = parseID(raw.ModelID); !ok {
			return Event{}, ErrRequestID
		}
	}
	ev.RequestID = id
	if raw.Data.Organization == nil || !siretRe.MatchString(raw.Data.Organization.SIRET) {
		return Event{}, ErrSIRET
	}
	ev.SIRET = raw.Data.Organization.SIRET
	if len(raw.Data.Authorizations) > maxAuthorizations {
		return Event{}, ErrTooLarge
	}
	for _, a := range raw.Data.Authorizations {
		au := Authorization{State: a.State, Revoked: a.Revoked, DefinitionID: a.DefinitionID}
		au.ID, _ = parseID(a.ID)
		var data struct {
			Scopes     json.RawMessage `json:"scopes"`
			Modalities json.RawMessage `json:"modalities"`
		}
		if json.Unmarshal(a.Data, &data) == nil {
			au.Scopes = stringList(data.Scopes)
			au.Modalities = stringList(data.Modalities)
		}
		if len(au.Scopes) > maxScopes || len(au.Modalities) > maxScopes {
			return Event{}, ErrTooLarge
		}
		ev.Authorizations = append(ev.Authorizations, au)
	}
	return ev, nil
}

// Bounds of fired_at: DataPass did not exist before, and a time beyond
// would not fit Unix nanoseconds (Record.FiredAt).
var (
	minFiredAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxFiredAt = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// parseTime reads fired_at: Unix seconds (an integer, or a number with a
// fraction) or an RFC 3339 string, between 2000 and 2200.
func parseTime(raw json.RawMessage) (time.Time, bool) {
	var t time.Time
	var s string
	if json.Unmarshal(raw, &s) == nil {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return time.Time{}, false
		}
	} else {
		var f float64
		if json.Unmarshal(raw, &f) != nil || f <= 0 || f > 1<<40 || math.IsNaN(f) {
			return time.Time{}, false
		}
		sec, frac := math.Modf(f)
		t = time.Unix(int64(sec), int64(frac*1e9))
	}
	if t.Before(minFiredAt) || !t.Before(maxFiredAt) {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// parseID reads a DataPass id, a JSON number or string of digits
// (json.Number takes both).
func parseID(raw json.RawMessage) (string, bool) {
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return "", false
	}
	s := n.String()
	if !habilitation.ValidDataPassID(s) {
		return "", false
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return "", false
	}
	return s, true
}

// stringList reads a JSON list of strings; nil when it is anything else.
func stringList(raw json.RawMessage) []string {
	var out []string
	if len(raw) == 0 || json.Unmarshal(raw, &out) != nil {
		return nil
	}
	for _, s := range out {
		if strings.TrimSpace(s) == "" {
			return nil
		}
	}
	return out
}
