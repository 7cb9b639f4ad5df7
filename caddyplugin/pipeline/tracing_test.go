package pipeline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// req: G07
// TestG07_CallerTraceIsALink: a caller's traceparent becomes a link of the
// request span, not its parent, and the link carries no tracestate; an
// invalid traceparent, or one that already is the parent, adds none.
func TestG07_CallerTraceIsALink(t *testing.T) {
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	p := New(Config{}, nil, 0)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	serve := func(traceparent string, parent context.Context) sdktrace.ReadOnlySpan {
		t.Helper()
		ctx, root := tp.Tracer("caddy").Start(parent, "request")
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v3/dss/quotient_familial/france_connect", nil)
		r.Header.Set("Traceparent", traceparent)
		r.Header.Set("Tracestate", "caller=CANARYSTATE")
		p.Start(httptest.NewRecorder(), r)
		root.End()
		ended := rec.Ended()
		return ended[len(ended)-1]
	}

	s := serve("00-"+callerTrace+"-"+callerSpan+"-01", context.Background())
	if s.Parent().IsValid() || s.SpanContext().TraceID().String() == callerTrace {
		t.Fatalf("the caller's context parents the request span: parent %v", s.Parent())
	}
	if len(s.Links()) != 1 {
		t.Fatalf("%d links, want the caller's", len(s.Links()))
	}
	l := s.Links()[0].SpanContext
	if l.TraceID().String() != callerTrace || l.SpanID().String() != callerSpan || !l.IsSampled() || l.TraceState().Len() != 0 {
		t.Errorf("link %v %v sampled %v tracestate %q", l.TraceID(), l.SpanID(), l.IsSampled(), l.TraceState().String())
	}

	if s := serve("00-"+callerTrace+"-0000000000000000-01", context.Background()); len(s.Links()) != 0 {
		t.Errorf("an invalid traceparent was linked: %v", s.Links())
	}
	tid, _ := trace.TraceIDFromHex(callerTrace)
	sid, _ := trace.SpanIDFromHex(callerSpan)
	asParent := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, Remote: true}))
	if s := serve("00-"+callerTrace+"-"+callerSpan+"-01", asParent); len(s.Links()) != 0 {
		t.Errorf("the caller's context, already the parent, was linked too: %v", s.Links())
	}
}
