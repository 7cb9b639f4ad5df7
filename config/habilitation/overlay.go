package habilitation

import (
	"slices"
	"sync/atomic"
)

// Live is DataPass's word on one DataPass request (webhooks and resync, see
// package config/datapass), as it overlays the habilitation bound to that
// request by datapass_id.
type Live struct {
	// Active: DataPass holds an active, unrevoked API Particulier
	// authorization with the FranceConnect modality. False revokes the
	// habilitation, whatever the file says.
	Active bool
	// Scopes are the authorization's scopes the catalogue knows.
	Scopes []string
	// Grant: Scopes replace the file's (DataPass approved them: an approve
	// event or a resync). Otherwise Live is a cap, learnt from an event that
	// may only narrow: the habilitation keeps the file's scopes that Scopes
	// also holds.
	Grant bool
	// SIRET is the organisation DataPass holds the request for; a
	// habilitation of another organisation bound to it is refused.
	SIRET string
}

// LiveReadiness says how much of DataPass's word an instance holds, and so
// what Overlay does with a bound habilitation.
type LiveReadiness uint8

const (
	// LiveNotRead: the records are not read yet, or may be stale (a lost
	// subscription): every bound habilitation is refused.
	LiveNotRead LiveReadiness = iota
	// LiveUnresynced: the records are read, but the store may have lost
	// some (a Redis restarted empty, a record deleted) and has not been
	// resynced from DataPass's API yet: a bound habilitation without a
	// record is refused, so that a revocation the store lost is not undone
	// by the file.
	LiveUnresynced
	// LiveRead: the records are read; a bound habilitation without a
	// record follows the file.
	LiveRead
)

// Overlay returns r with the live states applied to the habilitations
// bound to their DataPass request (live is keyed by DataPass request
// number); an entry bound to no habilitation is pending and changes
// nothing; a habilitation of another organisation than the request's is
// refused. The file keeps the last word on what only it says: a
// habilitation it revokes stays revoked, its validity dates, client ids,
// tokens, modalities and quota are kept; DataPass's scopes replace the
// file's only for a habilitation of the FranceConnect modality alone (its
// authorization is that modality's), and cap them otherwise. Until the live states are known
// (LiveNotRead: the shared store not read yet), every bound habilitation is
// revoked: a revocation DataPass sent is never forgotten by a restart; so
// is, until a resync (LiveUnresynced), one without a record. Changed
// habilitations are copies; r is returned itself when nothing changes.
func (r *Registry) Overlay(live map[string]Live, readiness LiveReadiness) *Registry {
	if r == nil || len(r.byDataPass) == 0 || readiness == LiveRead && len(live) == 0 {
		return r
	}
	list := make([]*Habilitation, 0, len(r.list))
	changed := false
	for _, h := range r.list {
		if h.DataPassID == "" {
			list = append(list, h)
			continue
		}
		l, ok := live[h.DataPassID]
		if readiness == LiveNotRead || !ok && readiness == LiveUnresynced {
			c := *h
			c.Revoked = true
			list = append(list, &c)
			changed = true
			continue
		}
		if !ok {
			list = append(list, h)
			continue
		}
		c := *h
		c.Revoked = h.Revoked || !l.Active || l.SIRET != "" && l.SIRET != h.SIRET
		// DataPass's authorization is the FranceConnect modality's: its
		// scopes replace the file's only for a habilitation of that
		// modality alone; for the others they only cap the file's.
		if l.Grant && slices.Equal(h.Modalities, []string{ModalityFranceConnect}) {
			c.Scopes = slices.Clone(l.Scopes)
		} else {
			c.Scopes = slices.DeleteFunc(slices.Clone(h.Scopes), func(s string) bool { return !slices.Contains(l.Scopes, s) })
		}
		if len(c.Scopes) == 0 {
			c.Revoked = true // no scope left: nothing to grant
		}
		list = append(list, &c)
		changed = true
	}
	if !changed {
		return r
	}
	return newRegistry(list)
}

// LiveSource holds DataPass's live states. LiveSnapshot returns them with
// their version, which changes whenever they or their readiness do, and
// their readiness (see Overlay), all three from one consistent snapshot;
// the map must not be modified.
type LiveSource interface {
	LiveSnapshot() (version uint64, states map[string]Live, readiness LiveReadiness)
}

// Overlaid is the registry in force: a file's registry (a Watcher's
// Current) with a LiveSource's states applied (Registry.Overlay). Current
// costs two atomic loads while neither changes; the overlay is computed
// again only after a change. Safe for concurrent use.
type Overlaid struct {
	file  func() *Registry
	live  LiveSource
	cache atomic.Pointer[overlaid]
}

type overlaid struct {
	file    *Registry
	version uint64
	reg     *Registry
}

// NewOverlaid returns the registry of file with live's states applied; live
// may be nil (the file alone).
func NewOverlaid(file func() *Registry, live LiveSource) *Overlaid {
	return &Overlaid{file: file, live: live}
}

// Current returns the registry in force. It never returns nil when file
// does not.
func (o *Overlaid) Current() *Registry {
	f := o.file()
	if o.live == nil {
		return f
	}
	v, states, readiness := o.live.LiveSnapshot()
	if c := o.cache.Load(); c != nil && c.file == f && c.version == v {
		return c.reg
	}
	reg := f.Overlay(states, readiness)
	o.cache.Store(&overlaid{file: f, version: v, reg: reg})
	return reg
}
