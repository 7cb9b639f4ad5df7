package datapassop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/passerelle-gw/passerelle/config/datapass"
)

// ActionResult is the answer to an action: the event fired and what the
// webhook's receiver answered.
type ActionResult struct {
	Event     string `json:"event"`
	RequestID int64  `json:"request_id"`
	FiredAt   int64  `json:"fired_at"`
	// DeliveredStatus is the receiver's status; null when none came back.
	DeliveredStatus *int `json:"delivered_status"`
	// Delivered: DataPass counts the delivery done (200, 201 or 204).
	Delivered bool `json:"delivered"`
	// Error is the transport failure, when there was one.
	Error string `json:"error,omitempty"`
}

// action serves POST /sandbox/datapass/requests/{id}/{revoke|approve}.
func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	id, act := r.PathValue("id"), r.PathValue("action")
	if act != "revoke" && act != "approve" {
		http.NotFound(w, r)
		return
	}
	var body struct {
		Scopes []string `json:"scopes"`
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err != nil || len(bytes.TrimSpace(raw)) > 0 && json.Unmarshal(raw, &body) != nil ||
		slices.ContainsFunc(body.Scopes, func(sc string) bool { return !datapass.ValidScopeName(sc) }) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `the body, when present, is {"scopes": [names...]}`})
		return
	}
	s.mu.Lock()
	rq := s.requests[id]
	if rq == nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such request"})
		return
	}
	now := s.now()
	if act == "revoke" {
		if !slices.ContainsFunc(rq.auths, func(a *authorization) bool { return a.state == datapass.StateActive }) {
			s.mu.Unlock()
			writeJSON(w, http.StatusConflict, map[string]string{"error": "the request has no active authorization"})
			return
		}
		for _, a := range rq.auths {
			if a.state == datapass.StateActive {
				a.state, a.revoked = "revoked", true
			}
		}
		rq.state = "revoked"
	} else {
		// A (re)approval: the active authorization becomes obsolete and a
		// new one carries the scopes approved.
		if len(body.Scopes) > 0 {
			rq.scopes = slices.Clone(body.Scopes)
		}
		for _, a := range rq.auths {
			if a.state == datapass.StateActive {
				a.state = "obsolete"
			}
		}
		s.seq++
		rq.auths = append(rq.auths, &authorization{id: s.nextAuth, seq: s.seq, state: datapass.StateActive,
			scopes: rq.scopes, modal: rq.modal, created: now})
		if n := len(rq.auths) - maxAuthorizations; n > 0 {
			rq.auths = slices.Delete(rq.auths, 0, n) // obsolete ones: the active one is the last
		}
		s.nextAuth++
		rq.state = "validated"
	}
	fired := s.fire(rq, now)
	payload, err := json.Marshal(eventJSON(act, fired, rq))
	s.mu.Unlock()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "payload: " + err.Error()})
		return
	}
	res := ActionResult{Event: act, RequestID: number(id), FiredAt: fired}
	status, derr := s.deliver(r.Context(), act, id, payload, true)
	if status != 0 {
		res.DeliveredStatus = &status
	}
	res.Delivered = Attempt{StatusCode: status}.Delivered()
	if derr != nil {
		res.Error = derr.Error()
	}
	writeJSON(w, http.StatusOK, res)
}

// fire returns the fired_at of a new event of rq: now in Unix seconds, as
// DataPass, but strictly after the request's previous event, so that two
// actions within one second keep their order.
func (s *Server) fire(rq *request, now time.Time) int64 {
	t := max(now.Unix(), rq.lastFired+1)
	rq.lastFired = t
	return t
}

// ping serves POST /sandbox/datapass/ping: DataPass's test delivery.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	payload, _ := json.Marshal(map[string]any{"test": true, "timestamp": railsTime(s.now())})
	status, err := s.post(r.Context(), payload)
	res := map[string]any{"event": "test", "delivered_status": nil,
		"delivered": Attempt{StatusCode: status}.Delivered()}
	if status != 0 {
		res["delivered_status"] = status
	}
	if err != nil {
		res["error"] = err.Error()
	}
	writeJSON(w, http.StatusOK, res)
}

// deliver posts a webhook and records the attempt; a failed one is tried
// once more after RetryAfter when retry is set.
func (s *Server) deliver(ctx context.Context, event, requestID string, payload []byte, retry bool) (int, error) {
	status, err := s.post(ctx, payload)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempt++
	at := Attempt{ID: s.attempt, Event: event, RequestID: requestID, StatusCode: status, CreatedAt: s.now()}
	s.attempts = append(s.attempts, at)
	if len(s.attempts) > maxAttempts {
		s.attempts = slices.Delete(s.attempts, 0, len(s.attempts)-maxAttempts)
	}
	if retry && !at.Delivered() && s.cfg.RetryAfter > 0 && !s.closed {
		var t *time.Timer
		t = time.AfterFunc(s.cfg.RetryAfter, func() {
			s.mu.Lock()
			_, pending := s.timers[t]
			delete(s.timers, t)
			s.mu.Unlock()
			if pending {
				_, _ = s.deliver(context.Background(), event, requestID, payload, false)
			}
		})
		s.timers[t] = struct{}{}
	}
	return status, err
}

// post sends a payload as DataPass does: compact JSON, signed, with the
// environment header. It returns the receiver's status (0: none).
func (s *Server) post(ctx context.Context, payload []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.WebhookURL, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "DataPass sandbox stand-in (passerelle)")
	req.Header.Set(datapass.SignatureHeader, datapass.Sign([]byte(s.cfg.Secret), payload))
	req.Header.Set("X-App-Environment", s.cfg.Environment)
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("delivery failed: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxKeptAnswerBody))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// eventJSON is a webhook payload in DataPass's shape (WebhookSerializer),
// with a fake applicant.
func eventJSON(event string, firedAt int64, rq *request) map[string]any {
	auths := make([]map[string]any, 0, len(rq.auths))
	for _, a := range rq.auths {
		auths = append(auths, authorizationJSON(a))
	}
	id := number(rq.id)
	return map[string]any{
		"event": event, "fired_at": firedAt, "model_type": datapass.ModelType, "model_id": id,
		"data": map[string]any{
			"id": id, "public_id": fmt.Sprintf("00000000-0000-4000-8000-%012d", id%1e12),
			"type": "AuthorizationRequest::APIParticulier", "state": rq.state, "form_uid": "api-particulier",
			"data": map[string]any{"intitule": "Démonstration (bac à sable DataPass)",
				"scopes": rq.scopes, "modalities": rq.modal},
			"created_at": railsTime(rq.created), "last_submitted_at": railsTime(rq.created),
			"last_validated_at": railsTime(rq.created),
			"organization": map[string]any{"id": 1, "name": "ORGANISATION DE DÉMONSTRATION", "siret": rq.siret,
				"insee_payload": map[string]any{}},
			"applicant": map[string]any{"id": 1, "uid": "sandbox-applicant", "email": "demandeur.fictif@sandbox.invalid",
				"given_name": "Camille", "family_name": "Fictif", "phone_number": "0000000000", "job_title": "Démonstration"},
			"service_provider": nil,
			"authorizations":   auths,
		},
	}
}

// authorizationJSON is an authorization as DataPass serialises it.
func authorizationJSON(a *authorization) map[string]any {
	return map[string]any{
		"id": a.id, "slug": "sandbox-" + strconv.FormatInt(a.id, 10), "revoked": a.revoked, "state": a.state,
		"created_at": railsTime(a.created), "data": map[string]any{"scopes": a.scopes, "modalities": a.modal},
		"authorization_request_class": "AuthorizationRequest::APIParticulier",
		"definition_id":               datapass.DefinitionAPIParticulier,
	}
}
