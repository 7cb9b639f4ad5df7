package datapass

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// Redis keys and channel of the records (the ACL of deploy/compose/redis
// grants them to Passerelle's user).
const (
	// RecordsKey is a hash: request number → Record (JSON, sealed: seal.go).
	RecordsKey = "passerelle:v1:datapass:records"
	// SeenKeyPrefix + hex SHA-256 of a body applied: a duplicate marker.
	SeenKeyPrefix = "passerelle:v1:datapass:seen:"
	// Channel carries the request number of each record changed.
	Channel = "passerelle:v1:datapass:changes"
)

// Intervals of a Redis store's subscription.
const (
	// ReloadEvery is the interval of full reloads, beside the reload that
	// follows every (re)subscription: a safety net for messages lost on a
	// connection that died silently.
	ReloadEvery = 30 * time.Second
	// retryAfter is the pause after a failed receive or reload.
	retryAfter = time.Second
	// maxWatchRetries bounds the optimistic transaction's retries.
	maxWatchRetries = 16
)

// pingEvery is how long a silent subscription waits before it checks its
// connection; a ping left unanswered for as long means the subscription is
// lost. A variable for the tests.
var pingEvery = 15 * time.Second

// ErrCorrupt: a record in Redis is not one this version reads. The
// delivery fails (DataPass delivers again) rather than trusting nothing.
var ErrCorrupt = errors.New("datapass: a record in Redis is not readable")

// unreadableError is the ErrCorrupt of a sealed record that does not open
// under this store's keys, with what it claims to be (claimed): perhaps a
// later record sealed under a key this instance does not hold yet (another
// instance's new webhook secret, during a rotation).
type unreadableError struct{ claim Record }

func (*unreadableError) Error() string { return ErrCorrupt.Error() }
func (*unreadableError) Unwrap() error { return ErrCorrupt }

// replaceable reports whether rec may be written over a record whose read
// failed with err (ErrCorrupt): garbage may be replaced, a record that
// claims to be as late as rec or later may not, since writing rec would
// undo the events it holds (a revoke) for every instance. Its claim is
// never served: it only stops the write.
func replaceable(err error, rec Record) bool {
	var u *unreadableError
	return !errors.As(err, &u) || later(rec, u.claim)
}

// Redis is a Store shared by every instance on one Redis (node, Sentinel or
// Cluster): a change is written to the records hash and published in one
// transaction; every instance subscribed applies it on receipt, and reloads
// every record after each (re)subscription and every ReloadEvery, since
// publish/subscribe loses the messages sent while a connection is down.
// Until the first full read succeeds, and from a lost subscription (an
// error, or a ping left unanswered) to the next full read, Live is not
// ready: every bound habilitation is refused (SECURITY.md C13), since a
// revocation another instance applied meanwhile would not reach this one.
type Redis struct {
	rdb  redis.UniversalClient
	keys [][]byte // seal the records (seal.go): the first seals, any opens
	live Live
	// pending are the records applied here alone while Redis failed
	// (applyLocallyIfNarrower), until a write to Redis covers them.
	pendingMu sync.Mutex
	pending   map[string]Record
	// Log receives PII-free reports of subscription and reload failures
	// (nil: none).
	Log func(msg string, err error)
	// Reloaded, when set, is told of each full reload (for the metrics).
	Reloaded func()
}

// NewRedis returns a Redis store on rdb whose records keys seal: the first
// seals, any opens (a rotation), each at least 32 bytes; every instance
// must hold them. Call Run to follow the other instances' changes; until
// it has read Redis once, Live is not ready.
func NewRedis(rdb redis.UniversalClient, keys ...[]byte) *Redis {
	return &Redis{rdb: rdb, keys: keys}
}

// Live implements Store.
func (s *Redis) Live() *Live { return &s.live }

// AwaitResync makes a habilitation bound to DataPass that has no record in
// Redis refused until a resync of this store succeeds (Resync.Once): for a
// configuration that reads DataPass's API, since a Redis restarted empty,
// a record deleted there, or another Redis would otherwise hand a revoked
// habilitation back to the file. Call it before the store is used.
func (s *Redis) AwaitResync() { s.live.setUnresynced(true) }

// Adopt takes the records prev applied alone while Redis was down and has
// not written back yet, for a store that replaces prev (a configuration
// reload): this store writes them back at its next successful Reload
// instead of losing them with prev. Only those narrowings are adopted:
// nothing prev read from Redis, which this store reads itself. Adopted
// records do not make Live ready: until Redis is read, bound habilitations
// stay refused.
func (s *Redis) Adopt(prev *Redis) {
	if prev == nil || prev == s {
		return
	}
	prev.pendingMu.Lock()
	recs := make([]Record, 0, len(prev.pending))
	for _, r := range prev.pending {
		recs = append(recs, r)
	}
	prev.pendingMu.Unlock()
	s.live.put(recs...)
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	for _, r := range recs {
		if cur, ok := s.pending[r.RequestID]; ok {
			r = newest(r, cur)
		}
		s.setPendingLocked(r)
	}
}

// setPendingLocked keeps rec as a record Redis does not hold yet;
// s.pendingMu is held.
func (s *Redis) setPendingLocked(rec Record) {
	if s.pending == nil {
		s.pending = map[string]Record{}
	}
	s.pending[rec.RequestID] = rec
}

// pendingRecords returns the pending records.
func (s *Redis) pendingRecords() []Record {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	return slices.Collect(maps.Values(s.pending))
}

// written drops id's pending record once Redis holds rec, when rec is as
// late as it.
func (s *Redis) written(id string, rec Record) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if p, ok := s.pending[id]; ok && !later(p, rec) {
		delete(s.pending, id)
	}
}

// Apply implements Store: an optimistic transaction (WATCH) on the records
// hash merges next into the later of Redis's copy and this instance's, and
// writes and publishes the result unless Redis already holds it. Merging
// with the local copy too means that a Redis that lost data (a restart
// without persistence, a failover to a late replica) never brings back a
// state older than one an instance applied: a revoke stays, and an old
// approve delivered again is stale. A record Redis holds but this version
// cannot read is replaced, unless the event would widen access with no
// local copy to merge with, or the record claims to be as late as the
// merge or later (replaceable): then ErrCorrupt, and DataPass delivers
// again.
//
// When Redis fails, a change that only narrows what this instance serves
// is applied here anyway (a revocation is not delayed by an outage), and
// the error returned (DataPass delivers again); Reload writes it back.
func (s *Redis) Apply(ctx context.Context, next Record) (Record, bool, error) {
	var rec Record
	var changed bool
	err := s.transact(ctx, func(tx *redis.Tx) error {
		remote, err := s.readRecord(ctx, tx, next.RequestID)
		corrupt := errors.Is(err, ErrCorrupt)
		if err != nil && !corrupt {
			return err
		}
		cur := remote
		if l, ok := s.live.Record(next.RequestID); ok {
			if cur != nil {
				l = newest(l, *cur)
			}
			cur = &l
		}
		if corrupt && cur == nil && Widens(next.Event) {
			return ErrCorrupt
		}
		rec, changed = Merge(cur, next)
		if corrupt && !replaceable(err, rec) {
			return err
		}
		if remote != nil && !later(rec, *remote) && !corrupt {
			return nil // Redis holds it already
		}
		return s.write(ctx, tx, rec)
	})
	if err != nil {
		s.applyLocallyIfNarrower(next)
		return Record{}, false, fmt.Errorf("datapass: applying a record: %w", err)
	}
	s.live.put(rec)
	s.written(rec.RequestID, rec)
	return rec, changed, nil
}

// transact runs fn in an optimistic transaction on the records hash
// (WATCH), again while other instances change the hash meanwhile.
func (s *Redis) transact(ctx context.Context, fn func(tx *redis.Tx) error) error {
	for range maxWatchRetries {
		if err := s.rdb.Watch(ctx, fn, RecordsKey); !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return errors.New("too many concurrent changes")
}

// write sets a record and announces it, in the transaction of tx.
func (s *Redis) write(ctx context.Context, tx *redis.Tx, rec Record) error {
	b, err := sealRecord(s.keys[0], rec)
	if err != nil {
		return err
	}
	_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, RecordsKey, rec.RequestID, b)
		p.Publish(ctx, Channel, rec.RequestID)
		return nil
	})
	return err
}

// applyLocallyIfNarrower merges next into this instance's copy when that
// can only narrow what it serves.
func (s *Redis) applyLocallyIfNarrower(next Record) {
	var cur *Record
	if l, ok := s.live.Record(next.RequestID); ok {
		cur = &l
	}
	if rec, changed := Merge(cur, next); changed && narrowerThan(rec, cur) {
		s.live.put(rec)
		s.pendingMu.Lock()
		s.setPendingLocked(rec)
		s.pendingMu.Unlock()
	}
}

// narrowerThan reports whether rec grants nothing that cur (nil: the file
// alone) does not: inactive, or a cap where the file governs, or active
// with a subset of cur's scopes under the same kind.
func narrowerThan(rec Record, cur *Record) bool {
	switch {
	case !rec.Active:
		return true
	case cur == nil:
		return !rec.Grant
	default:
		return cur.Active && rec.Grant == cur.Grant &&
			!slices.ContainsFunc(rec.Scopes, func(s string) bool { return !slices.Contains(cur.Scopes, s) })
	}
}

// readRecord reads request id's record: nil when Redis holds none, or an
// unsealed grant (openRecord). A sealed record that does not open is an
// *unreadableError.
func (s *Redis) readRecord(ctx context.Context, c redis.Cmdable, id string) (*Record, error) {
	raw, err := c.HGet(ctx, RecordsKey, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := openRecord(s.keys, id, raw)
	if err != nil {
		if claim, ok := claimed(id, raw); ok {
			return nil, &unreadableError{claim}
		}
		return nil, err
	}
	if !r.use {
		return nil, nil
	}
	return &r.Record, nil
}

// Seen implements Store.
func (s *Redis) Seen(ctx context.Context, sum [sha256.Size]byte) (bool, error) {
	n, err := s.rdb.Exists(ctx, SeenKeyPrefix+hex.EncodeToString(sum[:])).Result()
	return n == 1, err
}

// MarkSeen implements Store.
func (s *Redis) MarkSeen(ctx context.Context, sum [sha256.Size]byte) error {
	return s.rdb.Set(ctx, SeenKeyPrefix+hex.EncodeToString(sum[:]), 1, SeenFor).Err()
}

// Reload reads every record and makes Live ready; the records this
// instance holds later than Redis's copy are written back to it. A record
// it cannot read, and has not replaced with a later copy of its own, makes
// Live not ready (ErrCorrupt): it may hold a revocation, sealed under a key
// this instance does not hold yet (a rotation under way).
func (s *Redis) Reload(ctx context.Context) error {
	all, err := s.rdb.HGetAll(ctx, RecordsKey).Result()
	if err != nil {
		return fmt.Errorf("datapass: reading the records: %w", err)
	}
	recs := make([]Record, 0, len(all))
	decoded := make(map[string]Record, len(all)) // Redis's copies that decode, for the write-back
	var unread map[string]bool                   // Redis's copies that do not
	var reseal []string
	for id, raw := range all {
		r, err := openRecord(s.keys, id, []byte(raw))
		switch {
		case err != nil:
			if unread == nil {
				unread = map[string]bool{}
			}
			unread[id] = true
		case r.use:
			decoded[id] = r.Record
			recs = append(recs, r.Record)
			if r.reseal {
				reseal = append(reseal, id)
			}
		}
	}
	s.live.put(recs...)
	for _, id := range reseal {
		if err := s.reseal(ctx, id); err != nil {
			return fmt.Errorf("datapass: sealing a record again: %w", err)
		}
	}
	// A change applied here alone while Redis failed (pending) whose
	// second Redis's copy shares, one revision later or more (another
	// instance applied other events of that second meanwhile), is merged
	// into it as Apply merges an event: the more restrictive wins. Put
	// took Redis's copy: without this, the change would be dropped.
	for _, p := range s.pendingRecords() {
		if remote, ok := decoded[p.RequestID]; ok && remote.FiredAt == p.FiredAt && later(remote, p) {
			if _, _, err := s.Apply(ctx, p); err != nil {
				return fmt.Errorf("datapass: merging a record applied during an outage: %w", err)
			}
		}
	}
	// Records this instance holds later than Redis's copy (a Redis
	// restarted without persistence, a failover to a replica that had not
	// caught up, a change applied here while Redis was down) are written
	// back, and so is the merge put made of a copy tied with Redis's
	// (newest), later than both.
	for _, r := range s.live.Records() {
		if remote, ok := decoded[r.RequestID]; !ok || later(r, remote) {
			var err error
			var kept bool
			if r, kept, err = s.writeBack(ctx, r); err != nil {
				return fmt.Errorf("datapass: writing back a record: %w", err)
			}
			if kept {
				continue // Redis holds a record this instance cannot read, as late or later
			}
			delete(unread, r.RequestID)
			s.live.put(r)
		}
		s.written(r.RequestID, r) // Redis holds r or a later record
	}
	// A record this instance cannot read is not trusted, nor is its own
	// copy of it, which may be older: that request's habilitations are
	// refused until it can; the others are served (one unreadable record,
	// a forged one included, does not stop the instance).
	s.live.setUnreadable(unread)
	s.live.setReady(true)
	if len(unread) > 0 {
		return fmt.Errorf("%w (%d of %d)", ErrCorrupt, len(unread), len(all))
	}
	if s.Reloaded != nil {
		s.Reloaded()
	}
	return nil
}

// reseal writes request id's record again, sealed under the first key, if
// Redis still holds it under another one (or unsealed).
func (s *Redis) reseal(ctx context.Context, id string) error {
	return s.transact(ctx, func(tx *redis.Tx) error {
		raw, err := tx.HGet(ctx, RecordsKey, id).Bytes()
		if err != nil {
			return nil // gone, or Redis failing: the next reload tries again
		}
		if r, err := openRecord(s.keys, id, raw); err == nil && r.reseal {
			return s.write(ctx, tx, r.Record)
		}
		return nil
	})
}

// writeBack writes rec, or its merge with a copy tied with it that Redis
// holds now, unless Redis holds rec or a later copy; it returns the newest
// of rec and Redis's copy. kept reports a record left in place that this
// instance cannot read and that claims to be as late as rec or later
// (replaceable).
func (s *Redis) writeBack(ctx context.Context, rec Record) (newer Record, kept bool, err error) {
	err = s.transact(ctx, func(tx *redis.Tx) error {
		remote, err := s.readRecord(ctx, tx, rec.RequestID)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return err
		}
		newer, kept = rec, err != nil && !replaceable(err, rec)
		if kept {
			return nil
		}
		if remote != nil {
			if newer = newest(rec, *remote); !later(newer, *remote) {
				return nil
			}
		}
		return s.write(ctx, tx, newer)
	})
	return newer, kept, err
}

// Run follows the changes of every instance until ctx is done: it
// subscribes to Channel, applies each record announced, and reloads every
// record after each (re)subscription and every ReloadEvery. A lost
// subscription makes Live not ready until the reload that follows the
// next subscription (or a periodic one) succeeds.
func (s *Redis) Run(ctx context.Context) {
	go s.reloadLoop(ctx)
	for ctx.Err() == nil {
		err := s.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		s.live.setReady(false)
		s.log("datapass: subscription lost, refusing the habilitations bound to DataPass until Redis is read again", err)
		sleep(ctx, retryAfter)
	}
}

// follow subscribes to Channel on a connection of its own and applies what
// it announces, until the subscription is lost: an error, or a ping left
// unanswered for pingEvery (a connection that died silently).
func (s *Redis) follow(ctx context.Context) error {
	ps := s.rdb.Subscribe(ctx, Channel)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		_ = ps.Close()
	}()
	pinged := false // a ping awaits its pong
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if err != nil {
			var ne net.Error
			switch {
			case !errors.As(err, &ne) || !ne.Timeout():
				return err
			case pinged:
				return errors.New("datapass: no answer to a ping on the subscription")
			}
			pinged = true
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			continue
		}
		pinged = false // any message, a pong included, shows the connection alive
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// First subscription or a reconnection (failover): messages
				// may have been lost meanwhile.
				if err := s.Reload(ctx); err != nil {
					s.log("datapass: reload after subscribing failed", err)
				}
			}
		case *redis.Message:
			s.fetch(ctx, m.Payload)
		}
	}
}

// fetch reads one record announced on the channel.
func (s *Redis) fetch(ctx context.Context, id string) {
	if !habilitation.ValidDataPassID(id) {
		return
	}
	r, err := s.readRecord(ctx, s.rdb, id)
	if err != nil || r == nil {
		s.log("datapass: reading an announced record failed, full reload", err)
		if err := s.Reload(ctx); err != nil {
			s.log("datapass: reload failed", err)
		}
		return
	}
	s.live.put(*r)
}

func (s *Redis) reloadLoop(ctx context.Context) {
	t := time.NewTicker(ReloadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Reload(ctx); err != nil && ctx.Err() == nil {
				s.log("datapass: periodic reload failed", err)
			}
		}
	}
}

func (s *Redis) log(msg string, err error) {
	if s.Log != nil {
		s.Log(msg, err)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
