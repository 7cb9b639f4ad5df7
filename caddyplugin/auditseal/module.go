package auditseal

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/logging"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/secretref"
)

func init() {
	caddy.RegisterModule(Encoder{})
}

// Encoder is the Caddy log encoder passerelle_sealed: the records of
// another encoder, JSON by default, each sealed (package doc). Caddyfile,
// inside a `log` block:
//
//	log audit {
//	    include passerelle.audit
//	    format passerelle_sealed {
//	        key    {file./etc/passerelle/audit-seal.key}  # or {env.NAME}; 32 bytes at least
//	        key_id 2026-12                                # written in every record; a new key, a new id
//	        wrap   json                                   # the inner encoder (default json), e.g. filter { … }
//	    }
//	    output passerelle_buffered {
//	        output file /var/log/passerelle/audit.log
//	    }
//	}
//
// The key is a reference, never a literal, and a key file must not be
// readable by others or another group than the gateway's own (chmod 600;
// audit.PrivateFile). The inner encoder must write
// one JSON object a line (json, or filter wrapping json). `passerelle
// audit-verify --key <key_id>=<key file> <files…>` checks the trail.
type Encoder struct {
	// WrappedRaw is the inner encoder (default: json).
	WrappedRaw json.RawMessage `json:"wrap,omitempty" caddy:"namespace=caddy.logging.encoders inline_key=format"`
	// Key is the HMAC key: {env.NAME} or {file.path}.
	Key string `json:"key,omitempty"`
	// KeyID names the key in every record (letters, digits, '.', '_', '-').
	KeyID string `json:"key_id,omitempty"`

	zapcore.Encoder `json:"-"` // the inner encoder
	sealer          *Sealer
}

// CaddyModule returns the Caddy module information.
func (Encoder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.encoders.passerelle_sealed",
		New: func() caddy.Module { return new(Encoder) },
	}
}

// Provision loads the inner encoder, reads the key and checks that the
// inner encoder writes records the sealer can seal.
func (e *Encoder) Provision(ctx caddy.Context) error {
	if e.WrappedRaw == nil {
		inner := new(logging.JSONEncoder)
		if err := inner.Provision(ctx); err != nil {
			return fmt.Errorf("passerelle_sealed: json encoder: %w", err)
		}
		e.Encoder = inner
	} else {
		v, err := ctx.LoadModule(e, "WrappedRaw")
		if err != nil {
			return fmt.Errorf("passerelle_sealed: inner encoder: %w", err)
		}
		e.Encoder = v.(zapcore.Encoder)
	}
	key, err := resolveKey(e.Key)
	if err != nil {
		return err
	}
	if e.sealer, err = NewSealer([]byte(key), e.KeyID); err != nil {
		return fmt.Errorf("passerelle_sealed: %w", err)
	}
	probe, err := e.Encoder.Clone().EncodeEntry(zapcore.Entry{Message: "probe"}, nil)
	if err != nil {
		return fmt.Errorf("passerelle_sealed: inner encoder: %w", err)
	}
	defer probe.Free()
	if _, ok := objectBody(probe.Bytes()); !ok {
		return errors.New("passerelle_sealed: the inner encoder must write one JSON object a line (json)")
	}
	return nil
}

// resolveKey reads the key a reference names: a {file.path} readable by
// its owner only, or an {env.NAME}; never a literal.
func resolveKey(ref string) (string, error) {
	if !secretref.IsReference(ref) {
		return "", errors.New("passerelle_sealed: key: a reference, {file.path} or {env.NAME}, never a literal")
	}
	key, loose, err := secretref.Resolve(ref)
	switch {
	case loose:
		return "", errors.New("passerelle_sealed: key file is readable by others or by a group other than the gateway's own (chmod 600)")
	case err != nil:
		return "", fmt.Errorf("passerelle_sealed: key: %w", err)
	}
	return key, nil
}

// Clone implements zapcore.Encoder: the sealer is shared.
func (e *Encoder) Clone() zapcore.Encoder {
	return &Encoder{Encoder: e.Encoder.Clone(), sealer: e.sealer}
}

// sealedBuffers pools the buffers of sealed records (the core frees them after
// writing).
var sealedBuffers = buffer.NewPool()

// EncodeEntry implements zapcore.Encoder: the inner encoder's record,
// sealed.
func (e *Encoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	inner, err := e.Encoder.EncodeEntry(ent, fields)
	if err != nil {
		return nil, err
	}
	defer inner.Free()
	// Sealed into out's own storage (out.Bytes() is empty, its capacity
	// reused), then written back to out: a copy onto itself unless the
	// record outgrew it. An unsealable line goes as is: the verifier
	// flags it.
	out := sealedBuffers.Get()
	sealed, _ := e.sealer.Seal(out.Bytes(), inner.Bytes())
	out.Reset()
	_, _ = out.Write(sealed)
	return out, nil
}

// UnmarshalCaddyfile sets up the encoder from Caddyfile tokens (syntax on
// Encoder).
func (e *Encoder) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the encoder's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "key", "key_id":
			if !d.NextArg() {
				return d.ArgErr()
			}
			v := d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			if opt == "key" {
				e.Key = v
			} else {
				e.KeyID = v
			}
		case "wrap":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			if name == "passerelle_sealed" {
				return d.Err("passerelle_sealed cannot wrap itself")
			}
			unm, err := caddyfile.UnmarshalModule(d, "caddy.logging.encoders."+name)
			if err != nil {
				return err
			}
			if _, ok := unm.(zapcore.Encoder); !ok {
				return d.Errf("%s is not a log encoder", name)
			}
			e.WrappedRaw = caddyconfig.JSONModuleObject(unm, "format", name, nil)
		default:
			return d.Errf("unknown passerelle_sealed option %q", opt)
		}
	}
	if e.Key == "" || e.KeyID == "" {
		return d.Err("passerelle_sealed: key and key_id are required")
	}
	return nil
}

// Interface guards.
var (
	_ zapcore.Encoder       = (*Encoder)(nil)
	_ caddy.Provisioner     = (*Encoder)(nil)
	_ caddyfile.Unmarshaler = (*Encoder)(nil)
)
