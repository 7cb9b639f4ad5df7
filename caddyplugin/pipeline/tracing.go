package pipeline

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names Passerelle's spans' instrumentation scope. It is the
// Caddy plugin's import path, where the pipeline was born: dashboards and
// trace queries that select the scope keep working.
const tracerName = "github.com/passerelle-gw/passerelle/caddyplugin"

// Span and attribute names. Attributes are bounded and hold no personal
// data and no token (SECURITY.md G07): endpoint id, habilitation id,
// decision, reason, cache level, provider, status class.
const (
	spanToken        = "passerelle.token"
	spanHabilitation = "passerelle.habilitation"
	spanCredential   = "passerelle.credential"
	spanProvider     = "passerelle.provider"

	attrEndpoint     = attribute.Key("passerelle.endpoint")
	attrCacheLevel   = attribute.Key("passerelle.cache.level")
	attrTokenResult  = attribute.Key("passerelle.token.result")
	attrHabilitation = attribute.Key("passerelle.habilitation.id")
	attrDecision     = attribute.Key("passerelle.decision")
	attrReason       = attribute.Key("passerelle.reason")
	attrProvider     = attribute.Key("passerelle.provider")
	attrStatusClass  = attribute.Key("http.response.status_class")
)

// tracerFor returns the tracer of the request span's provider, as Caddy's
// tracing handler sets it up, or nil when the request is not traced: then no
// span is started at all and tracing costs nothing. The global provider is
// never used (STYLE.md §10).
func tracerFor(ctx context.Context) trace.Tracer {
	sp := trace.SpanFromContext(ctx)
	if !sp.IsRecording() {
		return nil
	}
	return sp.TracerProvider().Tracer(tracerName)
}

// noSpan is what step spans are when the request is not traced.
var noSpan = trace.SpanFromContext(context.Background())

// startSpan starts a child span of ctx with attr (none when its key is
// empty), or returns ctx and a no-op span. The attribute is a value, not a
// variadic list: an untraced request builds no attribute slice.
func startSpan(ctx context.Context, tr trace.Tracer, name string, kind trace.SpanKind, attr attribute.KeyValue) (context.Context, trace.Span) {
	if tr == nil {
		return ctx, noSpan
	}
	if attr.Key == "" {
		return tr.Start(ctx, name, trace.WithSpanKind(kind))
	}
	return tr.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attr))
}

// setAttr sets one attribute on a recording span; on the no-op span of an
// untraced request it builds nothing.
func setAttr(sp trace.Span, attr attribute.KeyValue) {
	if sp.IsRecording() {
		sp.SetAttributes(attr)
	}
}

// endSpan records a decision on a span: a fixed status message and the
// closed-list reason, never an error string (it could quote input).
func endSpan(sp trace.Span, reason string) {
	if reason != "" && sp.IsRecording() {
		sp.SetAttributes(attrReason.String(reason))
		sp.SetStatus(codes.Error, "refused")
	}
	sp.End()
}

// linkCallerTrace links the request span to the caller's trace context,
// when its traceparent is valid and did not become the request span's
// parent (SECURITY.md G07: a link, not the parent; OTEL_PROPAGATORS=none,
// audit rule PA27, keeps Caddy from taking it as the parent). The link
// holds the caller's trace and span ids and flags, never its tracestate.
func linkCallerTrace(r *http.Request) {
	if len(r.Header["Traceparent"]) == 0 {
		return
	}
	caller := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(r.Header)))
	span := trace.SpanFromContext(r.Context())
	if !caller.IsValid() || caller.TraceID() == span.SpanContext().TraceID() {
		return
	}
	span.AddLink(trace.Link{SpanContext: caller.WithTraceState(trace.TraceState{})})
}

// injectTraceContext sets traceparent for the provider, so its spans join
// the trace under ours. No tracestate: the span inherits the one of its
// parent, which may be the caller's (SECURITY.md D01: only the headers the
// gateway sets reach the provider).
func injectTraceContext(ctx context.Context, h map[string][]string) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, sc.WithTraceState(trace.TraceState{}))
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	}
}
