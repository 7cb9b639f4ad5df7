// Package openapitest validates HTTP exchanges against an OpenAPI 3.x
// document (the generated one of config/openapi, or API Particulier's
// official 3.0 files), for tests. It wraps pb33f/libopenapi-validator and
// lives apart from config/openapi so that the gateway binary, which serves
// the generated document, does not link an OpenAPI library.
//
// Error messages name what failed (status, member path and names, schema
// keyword, parameter name) but never quote a parameter value, a body value
// or body bytes: those may be personal data.
package openapitest

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel"
)

// Validator checks requests and responses against one OpenAPI document. It
// is safe for concurrent use.
type Validator struct {
	mu sync.Mutex // libopenapi-validator does not document concurrent use
	v  validator.Validator
}

// NewValidator builds a validator for doc, an OpenAPI 3.0, 3.1 or 3.2
// document in JSON or YAML. It fails when doc cannot be parsed or its model
// cannot be built (unresolvable references…); it does not check doc against
// the OpenAPI meta-schema.
func NewValidator(doc []byte) (*Validator, error) {
	// Problems are returned, not logged: the libraries' default loggers
	// write to stdout.
	quiet := slog.New(slog.DiscardHandler)
	cfg := datamodel.NewDocumentConfiguration()
	cfg.Logger = quiet
	d, err := libopenapi.NewDocumentWithConfiguration(doc, cfg)
	if err != nil {
		return nil, fmt.Errorf("openapitest: parsing document: %w", err)
	}
	v, errs := validator.NewValidator(d, config.WithLogger(quiet))
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapitest: building document model: %w", errors.Join(errs...))
	}
	return &Validator{v: v}, nil
}

// ValidateDocument checks doc against the OpenAPI meta-schema of its
// version (3.0 or 3.1).
func ValidateDocument(doc []byte) error {
	cfg := datamodel.NewDocumentConfiguration()
	cfg.Logger = slog.New(slog.DiscardHandler)
	d, err := libopenapi.NewDocumentWithConfiguration(doc, cfg)
	if err != nil {
		return fmt.Errorf("openapitest: parsing document: %w", err)
	}
	if ok, errs := schema_validation.ValidateOpenAPIDocument(d); !ok {
		msgs := make([]string, 0, len(errs))
		for _, e := range errs {
			msgs = append(msgs, e.Message)
		}
		return fmt.Errorf("openapitest: document invalid against the OpenAPI meta-schema: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// ErrUndeclaredStatus is wrapped by ValidateResponse's error when the only
// failure is a status the document does not declare for the operation.
var ErrUndeclaredStatus = errors.New("openapitest: status not declared for the operation")

// ValidateResponse checks resp, the answer to req, against the document:
// its status is declared for the operation of req's method and path, its
// body matches the declared schema for its Content-Type and its headers the
// declared headers. It returns nil when resp is valid, else an error listing
// every failure. resp.Body is read and replaced by an equivalent reader.
func (v *Validator) ValidateResponse(req *http.Request, resp *http.Response) error {
	v.mu.Lock()
	ok, errs := v.v.ValidateHttpResponse(req, resp)
	v.mu.Unlock()
	if ok && len(errs) == 0 {
		return nil
	}
	err := describe("response", errs)
	if len(errs) > 0 && !slices.ContainsFunc(errs, func(e *liberrors.ValidationError) bool {
		return e.ValidationSubType != helpers.ResponseBodyResponseCode
	}) {
		return fmt.Errorf("%w: %w", ErrUndeclaredStatus, err)
	}
	return err
}

// ValidateRequest checks req against the document: path, method, query,
// header and cookie parameters, security and body. It returns nil when req
// is valid, else an error listing every failure.
func (v *Validator) ValidateRequest(req *http.Request) error {
	v.mu.Lock()
	ok, errs := v.v.ValidateHttpRequestSync(req)
	v.mu.Unlock()
	if ok && len(errs) == 0 {
		return nil
	}
	return describe("request", errs)
}

// safeKeywords are the schema keywords whose failure message quotes no
// value of the instance (required and additionalProperties quote member
// names, type the JSON types, the others counts). pattern, format, const
// and enum messages may quote the value: only the keyword is reported.
var safeKeywords = map[string]bool{
	"required": true, "additionalProperties": true, "type": true, "oneOf": true, "anyOf": true,
	"minItems": true, "maxItems": true, "minLength": true, "maxLength": true,
	"minProperties": true, "maxProperties": true, "unevaluatedProperties": true,
}

// describe turns validation errors into one error. Each line gives the
// error's message (libopenapi-validator's messages name the parameter,
// path, method, status or content type, never a value) and, for schema
// failures, the instance path, the schema keyword location and, for the
// keywords of safeKeywords, the reason. Other reasons are left out: they
// may quote parameter values or body bytes.
func describe(kind string, errs []*liberrors.ValidationError) error {
	if len(errs) == 0 {
		return fmt.Errorf("openapitest: invalid %s", kind)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "openapitest: invalid %s (%d error(s))", kind, len(errs))
	for _, e := range errs {
		b.WriteString("\n- ")
		b.WriteString(e.Message)
		if len(e.SchemaValidationErrors) == 0 && reasonIsSafe(e) {
			b.WriteString(": ")
			b.WriteString(e.Reason)
		}
		for _, f := range e.SchemaValidationErrors {
			at := f.FieldPath
			if at == "" {
				at = cmp.Or(f.FieldName, "$")
			}
			keyword := path.Base(f.KeywordLocation)
			fmt.Fprintf(&b, "\n  - at %s (schema %s)", at, f.KeywordLocation)
			if safeKeywords[keyword] {
				b.WriteString(": ")
				b.WriteString(f.Reason)
			}
		}
	}
	return errors.New(b.String())
}

// reasonIsSafe reports whether a non-schema error's reason quotes nothing
// of the exchange's content: a response status or content type not in the
// contract, an unknown path or operation. Parameter and body reasons may
// quote values.
func reasonIsSafe(e *liberrors.ValidationError) bool {
	switch e.ValidationType {
	case helpers.PathValidation:
		return true
	case helpers.ResponseBodyValidation:
		return e.ValidationSubType == helpers.ResponseBodyResponseCode ||
			e.ValidationSubType == helpers.RequestBodyContentType
	}
	return false
}
