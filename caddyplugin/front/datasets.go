package front

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/outbound"
)

// maxDatasetAnswer bounds a remote answer (the pipeline bounds its own).
const maxDatasetAnswer = 1 << 20

// fetchDatasets calls every dataset at the same time with the fresh access
// token, and returns each one's outcome: the callback waits for the
// slowest, not for the sum.
func (f *Front) fetchDatasets(r *http.Request, accessToken string) map[string]handoff.Dataset {
	if len(f.Datasets) == 0 {
		return nil
	}
	ctx, cancel := f.datasetContext(r)
	defer cancel()
	out := make(map[string]handoff.Dataset, len(f.Datasets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range f.Datasets {
		d := &f.Datasets[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var status int
			var body []byte
			func() {
				// A panic in a dataset call is that dataset's failure: on
				// this goroutine, net/http's recovery would not catch it
				// and the process would end.
				defer func() {
					if v := recover(); v != nil {
						status, body = 0, nil
						f.logger.Error("dataset call panicked", zap.String("dataset", d.Name), zap.String("type", fmt.Sprintf("%T", v)))
					}
				}()
				if d.Remote != "" {
					status, body = f.fetchRemote(ctx, d, accessToken)
				} else {
					status, body = f.fetchInProcess(ctx, r, d, accessToken)
				}
			}()
			res := parseAnswer(status, body)
			mu.Lock()
			out[d.Name] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// fetchInProcess runs the dataset's FranceConnect route through this
// gateway's own pipeline, in process: the same checktoken (cached),
// habilitation, scopes, provider call, field filter and audit record as a
// service calling the gateway, without a second HTTP hop. The provider hop
// is the block's provider handler (reverse_proxy).
func (f *Front) fetchInProcess(ctx context.Context, cb *http.Request, d *Dataset, accessToken string) (int, []byte) {
	u := &url.URL{Path: d.Route, RawQuery: url.Values{"recipient": {d.Recipient}}.Encode()}
	req := (&http.Request{
		Method: http.MethodGet, URL: u, RequestURI: u.RequestURI(), Host: cb.Host,
		Proto: cb.Proto, ProtoMajor: cb.ProtoMajor, ProtoMinor: cb.ProtoMinor,
		Header:     http.Header{"Authorization": {"Bearer " + accessToken}},
		Body:       http.NoBody,
		RemoteAddr: cb.RemoteAddr, TLS: cb.TLS,
	}).WithContext(ctx)
	rec := &recorder{header: http.Header{}}
	// Caddy's handlers (reverse_proxy) read their request context: a
	// replacer and vars of its own, and the citizen's address as the
	// callback established it (trusted proxies honoured).
	ip, _ := caddyhttp.GetVar(cb.Context(), caddyhttp.ClientIPVarKey).(string)
	if srv, ok := cb.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv != nil {
		req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), rec, srv)
	} else {
		rctx := context.WithValue(req.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
		req = req.WithContext(context.WithValue(rctx, caddyhttp.VarsCtxKey, map[string]any{}))
	}
	if ip != "" {
		caddyhttp.SetVar(req.Context(), caddyhttp.ClientIPVarKey, ip)
	}
	f.pipe.Serve(rec, req, f.provider)
	return rec.status, rec.body.Bytes()
}

// fetchRemote calls the dataset's route on a remote API Particulier.
func (f *Front) fetchRemote(ctx context.Context, d *Dataset, accessToken string) (int, []byte) {
	target := strings.TrimSuffix(d.Remote, "/") + d.Route + "?" + url.Values{"recipient": {d.Recipient}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := remoteClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDatasetAnswer+1))
	if err != nil || len(body) > maxDatasetAnswer {
		return 0, nil
	}
	return resp.StatusCode, body
}

// remoteClient calls remote API Particulier bases with the outbound policy
// (SECURITY.md E03, E08); redirects are not followed (the token would go
// elsewhere). The dataset's context (dataset_timeout) bounds each call,
// headers included.
var remoteClient = func() *http.Client {
	hc := outbound.Client(0)
	hc.Transport.(*http.Transport).ResponseHeaderTimeout = 0
	return hc
}()

// parseAnswer turns an API Particulier answer into a dataset: the data
// member of a 200 (the whole body for a bare v2 answer), or the first of
// its errors, or the gateway's "unavailable" when there is no usable answer.
func parseAnswer(status int, body []byte) handoff.Dataset {
	if status == http.StatusOK {
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(body, &env) == nil {
			if len(env.Data) > 0 {
				return handoff.Dataset{Status: handoff.StatusOK, Data: env.Data}
			}
			if json.Valid(body) {
				return handoff.Dataset{Status: handoff.StatusOK, Data: json.RawMessage(bytes.TrimSpace(body))}
			}
		}
	}
	var errs struct {
		Errors []handoff.APIError `json:"errors"`
	}
	if status >= 400 && json.Unmarshal(body, &errs) == nil && len(errs.Errors) > 0 && errs.Errors[0].Code != "" {
		e := errs.Errors[0]
		return handoff.Dataset{Status: handoff.StatusError, Error: &e}
	}
	u := apierror.Unavailable(apierror.ReasonProviderError)
	return handoff.Dataset{Status: handoff.StatusError, Error: &handoff.APIError{Code: u.Code, Title: u.Title, Detail: u.Detail}}
}

// recorder keeps the pipeline's answer to an in-process call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len()+len(p) > maxDatasetAnswer {
		return 0, io.ErrShortWrite
	}
	return r.body.Write(p)
}
