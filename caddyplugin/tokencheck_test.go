package caddyplugin

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestCallerHangingUpIsNoFranceConnectFailure: a caller that hangs up while
// its new token is being checked is no FranceConnect failure: no WARN
// "FranceConnect check failed" line, nothing counted under
// token_checks_total{result="error"} (which PasserelleFranceConnectErrors
// alerts on: hanging up again and again must not page anyone), but under
// result="abandoned". The check goes on, detached, and its result is
// cached: the same token then passes without a second checktoken call; if
// that call fails, it is counted (franceconnect_failures_total) and logged
// once.
func TestCallerHangingUpIsNoFranceConnectFailure(t *testing.T) {
	f := newFixture(t)
	core, logs := observer.New(zapcore.WarnLevel)
	f.h.pipe.Logger = zap.New(core)
	f.slowFC.Store(true) // checktoken answers after 200 ms
	checks := func(result string) float64 {
		return pipelineCounter(t, "caddy_passerelle_token_checks_total", map[string]string{"source": "checktoken", "result": result})
	}
	errors0, abandoned0 := checks("error"), checks("abandoned")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	f.serveFrom(t, ctx, "198.51.100.20", testToken)

	if n := logs.FilterMessage("FranceConnect check failed").Len(); n != 0 {
		t.Errorf("%d WARN lines for a caller that hung up", n)
	}
	if got := checks("error") - errors0; got != 0 {
		t.Errorf("token_checks_total{result=error} +%v for a caller that hung up", got)
	}
	if got := checks("abandoned") - abandoned0; got != 1 {
		t.Errorf("token_checks_total{result=abandoned} +%v, want 1", got)
	}
	time.Sleep(400 * time.Millisecond) // the detached check ends
	if w := f.serveFrom(t, context.Background(), "198.51.100.20", testToken); w.Code != 200 || f.checks.Load() != 1 {
		t.Fatalf("the same token after: %d, %d checktoken calls (want 200, 1)", w.Code, f.checks.Load())
	}

	// FranceConnect fails slowly and the caller hangs up first: the failed
	// call is counted and logged once all the same (a FranceConnect whose
	// callers all give up sooner than its timeout must still alert).
	failures := func() float64 {
		return pipelineCounter(t, "caddy_passerelle_franceconnect_failures_total", map[string]string{"reason": "fc_unavailable"})
	}
	failed0 := failures()
	f.fcDown.Store(true)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	f.serveFrom(t, ctx2, "198.51.100.20", "another-new-token")
	time.Sleep(400 * time.Millisecond) // the detached check ends
	if got := failures() - failed0; got != 1 {
		t.Errorf("franceconnect_failures_total +%v for a failed call whose caller hung up, want 1", got)
	}
	if n := logs.FilterMessage("FranceConnect check failed").Len(); n != 1 {
		t.Errorf("%d WARN lines for one failed call, want 1", n)
	}
}
