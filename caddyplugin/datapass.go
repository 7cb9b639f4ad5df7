package caddyplugin

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/config/datapass"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// DataPassConfig makes the habilitations live (issue 11): DataPass's
// webhooks, received by the passerelle_datapass handler, and its API
// (resync) overlay the habilitations bound by datapass_id in the file. See
// package config/datapass for the rules.
type DataPassConfig struct {
	// Secret is the webhook secret ({file.path} or {env.NAME}).
	Secret string `json:"secret,omitempty"`
	// PreviousSecret is also accepted during a rotation (and its key still
	// opens the Redis records, sealed again under Secret's at the reload);
	// remove it once DataPass signs with the new one.
	PreviousSecret string `json:"previous_secret,omitempty"`
	// Environment is the only X-App-Environment accepted (default
	// "production" in production mode, any in sandbox mode).
	Environment string `json:"environment,omitempty"`
	// SIRETs are organisations served beyond those of the habilitations
	// file: their requests are kept pending until a habilitation is bound.
	SIRETs []string `json:"sirets,omitempty"`
	// API configures the resync (optional).
	API *DataPassAPIConfig `json:"api,omitempty"`
}

// DataPassAPIConfig configures the resync from DataPass's API.
type DataPassAPIConfig struct {
	// URL is DataPass's base URL, e.g. https://datapass.api.gouv.fr.
	URL string `json:"url,omitempty"`
	// TokenURL defaults to URL + /api/v1/oauth/token.
	TokenURL string `json:"token_url,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is a {file.path} or {env.NAME} reference.
	ClientSecret string `json:"client_secret,omitempty"`
	// WebhookID is the webhook whose failed deliveries the resync looks up.
	WebhookID string `json:"webhook_id,omitempty"`
	// Every is the resync interval (default 6h, from 1m to 24h).
	Every caddy.Duration `json:"every,omitempty"`
}

// dataPassState is what a configuration holds of DataPass.
type dataPassState struct {
	processor *datapass.Processor
	store     datapass.Store
	redis     *datapass.Redis // nil without Redis
	resync    *datapass.Resync
	every     time.Duration
	key       string // storeKey of the habilitations file
}

// memoryStores keeps the records of gateways without Redis across config
// reloads (by habilitations file, and whether a resync is configured): a
// revocation received by webhook must survive a reload.
var memoryStores sync.Map // memoryKey → *datapass.Memory

type memoryKey struct {
	habilitations string // storeKey of the file
	resync        bool
}

// storeKey is a habilitations file's path, absolute and clean: the key of
// its stores across reloads. Symbolic links are not resolved: a Kubernetes
// ConfigMap updates its files by pointing their links at a new directory,
// and the records must survive that update.
func storeKey(habilitations string) string {
	if path, err := filepath.Abs(habilitations); err == nil {
		return path
	}
	return filepath.Clean(habilitations)
}

// memoryStore returns the process's Memory store for a habilitations file.
// With a resync, a new store refuses the bound habilitations until the
// first resync succeeds (after a restart, the file alone would serve what
// DataPass revoked).
func memoryStore(habilitations string, resync bool) *datapass.Memory {
	key := memoryKey{storeKey(habilitations), resync}
	if m, ok := memoryStores.Load(key); ok {
		return m.(*datapass.Memory)
	}
	var m *datapass.Memory
	if resync {
		m = datapass.NewMemoryUntilResync()
	} else {
		m = datapass.NewMemory()
	}
	v, _ := memoryStores.LoadOrStore(key, m)
	return v.(*datapass.Memory)
}

// redisStores holds, by habilitations file (storeKey), the Redis store of
// the configuration in force, and the one it replaced. A new configuration
// adopts the narrowings the store in force applied alone while Redis was
// down (datapass.Redis.Adopt) when it is provisioned and again when it
// starts, and then becomes the store in force; if it stops or is cleaned
// up while in force with its predecessor known (it failed to start, or
// the configuration after it is the one that failed), the predecessor is
// in force again. So a revocation received during a Redis outage survives
// reloads and is written back once Redis answers.
var (
	redisStoresMu sync.Mutex
	redisStores   = map[string]redisStoreLink{}
)

type redisStoreLink struct {
	store, prev *datapass.Redis
}

// redisStoreInForce returns the store in force for key, or nil.
func redisStoreInForce(key string) *datapass.Redis {
	redisStoresMu.Lock()
	defer redisStoresMu.Unlock()
	return redisStores[key].store
}

// startRedisStore makes s the store in force for key, after adopting what
// the previous one applied alone.
func startRedisStore(key string, s *datapass.Redis) {
	redisStoresMu.Lock()
	defer redisStoresMu.Unlock()
	prev := redisStores[key].store
	if prev == s {
		return
	}
	s.Adopt(prev)
	redisStores[key] = redisStoreLink{store: s, prev: prev}
}

// stopRedisStore puts the predecessor of s back in force for key when s is
// in force: s's configuration is going away without a successor.
func stopRedisStore(key string, s *datapass.Redis) {
	redisStoresMu.Lock()
	defer redisStoresMu.Unlock()
	if l := redisStores[key]; l.store == s && l.prev != nil {
		l.prev.Adopt(s)
		redisStores[key] = redisStoreLink{store: l.prev}
	}
}

// processStart is when this process started: the sync's age before its
// first successful resync.
var processStart = time.Now()

// lastResyncs keeps the last successful resync by API URL across config
// reloads, so that a reload does not reset the sync's age.
var lastResyncs sync.Map // API URL → time.Time

// loadDataPass sets the registry in force: the watcher's, overlaid by
// DataPass's records when DataPass is configured.
func (a *App) loadDataPass(reg prometheus.Registerer) error {
	if a.DataPass == nil {
		a.registry = habilitation.NewOverlaid(a.watcher.Current, nil)
		return nil
	}
	c := a.DataPass
	st := &dataPassState{}
	var secrets [][]byte
	for _, f := range []struct{ name, ref string }{{"secret", c.Secret}, {"previous_secret", c.PreviousSecret}} {
		v, err := a.resolveSecret("datapass "+f.name, f.ref)
		if err != nil {
			return err
		}
		if (f.name == "secret" || v != "") && len(v) < 16 {
			return fmt.Errorf("passerelle: datapass %s: at least 16 bytes", f.name)
		}
		if v != "" {
			secrets = append(secrets, []byte(v))
		}
	}
	env := c.Environment
	if env == "" && a.production() {
		env = "production"
	}
	if a.production() && env != "production" {
		// A staging or sandbox DataPass signs its events with its own
		// secret: its approvals would widen production habilitations.
		return errors.New("passerelle: datapass environment: production mode accepts DataPass's production only")
	}
	if a.production() && c.API != nil && (datapass.IsTestPlatformURL(c.API.URL) || c.API.TokenURL != "" && datapass.IsTestPlatformURL(c.API.TokenURL)) {
		return errors.New("passerelle: datapass api: production mode refuses DataPass's staging and sandbox platforms")
	}
	if a.production() && a.core.redis == nil && c.API == nil {
		// Held in process only, a revocation would be forgotten at the
		// next start, and an old approve delivered again would then apply
		// (SECURITY.md C12, C13).
		return errors.New("passerelle: datapass: production mode needs redis or an api block (to read the records again at start): without either, a restart forgets DataPass's revocations")
	}
	for _, s := range c.SIRETs {
		if !habilitation.ValidSIRET(s) {
			return errors.New("passerelle: datapass sirets: not a valid SIRET")
		}
	}
	if rdb := a.core.redis; rdb != nil {
		// The records' seal keys come from the webhook secrets (the
		// current one seals, the previous one still opens during a
		// rotation): whoever holds them can already sign DataPass's events.
		keys := make([][]byte, len(secrets))
		for i, s := range secrets {
			keys[i] = deriveKey(s, "datapass-records")
		}
		st.redis = datapass.NewRedis(rdb, keys...)
		logger := a.logger // not a: the store may outlive this configuration
		st.redis.Log = func(msg string, err error) { logger.Warn(msg, zap.Error(err)) }
		if c.API != nil {
			// A record missing from this store's Redis (restarted empty,
			// deleted, or another Redis since the reload) must not hand a
			// revoked habilitation back to the file: without a record, a
			// bound habilitation waits for this configuration's resync,
			// which runs at its start. Bound habilitations with a record
			// are served at once.
			st.redis.AwaitResync()
		}
		st.key = storeKey(a.Habilitations)
		st.redis.Adopt(redisStoreInForce(st.key))
		// Read the records now, so that a reload or a start does not refuse
		// the bound habilitations until the subscription is up; if Redis
		// does not answer, they are refused until it does.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := st.redis.Reload(ctx)
		cancel()
		if err != nil {
			a.logger.Error("datapass: records not readable: habilitations bound to DataPass refused until they are", zap.Error(err))
		}
		st.store = st.redis
	} else {
		st.store = memoryStore(a.Habilitations, c.API != nil)
	}
	st.processor = &datapass.Processor{
		Secrets: secrets, Environment: env, Store: st.store, Bindings: a.watcher.Current,
		SIRETs: slices.Clone(c.SIRETs), KnownScope: a.cat.KnowsScope,
	}
	if err := a.loadResync(st); err != nil {
		return err
	}
	a.datapass = st
	a.registry = habilitation.NewOverlaid(a.watcher.Current, st.store.Live())
	if st.resync != nil {
		if err := registerCollector(reg, metricDataPassFailedDeliveries); err != nil {
			return err
		}
	}
	return registerCollector(reg, dataPassCollector{st, processStart})
}

var (
	descDataPassReady = prometheus.NewDesc("caddy_passerelle_datapass_ready",
		"1 once DataPass's records are read (until then, habilitations bound to DataPass are refused).", nil, nil)
	descDataPassRecords = prometheus.NewDesc("caddy_passerelle_datapass_records",
		"DataPass requests recorded, by state (active, inactive).", []string{"state"}, nil)
	descDataPassSyncAge = prometheus.NewDesc("caddy_passerelle_datapass_sync_age_seconds",
		"Seconds since the last successful resync from DataPass's API (since the process started, before the first).", nil, nil)
)

// dataPassCollector exports DataPass's state at scrape time.
type dataPassCollector struct {
	st      *dataPassState
	started time.Time
}

// Describe implements prometheus.Collector.
func (c dataPassCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDataPassReady
	ch <- descDataPassRecords
	ch <- descDataPassSyncAge
}

// Collect implements prometheus.Collector.
func (c dataPassCollector) Collect(ch chan<- prometheus.Metric) {
	live := c.st.store.Live()
	ready := 0.0
	if live.LiveReady() {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(descDataPassReady, prometheus.GaugeValue, ready)
	active := 0
	recs := live.Records()
	for _, r := range recs {
		if r.Active {
			active++
		}
	}
	ch <- prometheus.MustNewConstMetric(descDataPassRecords, prometheus.GaugeValue, float64(active), "active")
	ch <- prometheus.MustNewConstMetric(descDataPassRecords, prometheus.GaugeValue, float64(len(recs)-active), "inactive")
	if c.st.resync != nil {
		last := c.st.resync.LastSuccess()
		if last.IsZero() {
			last = c.started
		}
		ch <- prometheus.MustNewConstMetric(descDataPassSyncAge, prometheus.GaugeValue, time.Since(last).Seconds())
	}
}

// startDataPass follows the other instances' changes (Redis) and starts
// the resync, until ctx ends.
func (a *App) startDataPass(ctx context.Context) {
	if a.datapass == nil {
		return
	}
	if r := a.datapass.redis; r != nil {
		startRedisStore(a.datapass.key, r)
		go r.Run(ctx)
	}
	if a.datapass.resync != nil {
		go a.datapass.resync.Run(ctx, a.datapass.every)
	}
}

// stopDataPass hands the DataPass Redis store back to the configuration
// this one replaced when this one goes away without a successor (a start
// that failed). Stop and Cleanup both call it; once is enough.
func (a *App) stopDataPass() {
	if a.datapass != nil && a.datapass.redis != nil {
		stopRedisStore(a.datapass.key, a.datapass.redis)
	}
}

// parseDataPass parses the datapass block of the passerelle global option:
//
//	datapass {
//	    secret          <{file.path}|{env.NAME}>   # the webhook secret
//	    previous_secret <{file.path}|{env.NAME}>   # during a rotation only
//	    environment     <production|staging|sandbox>  # X-App-Environment accepted (default production in production mode)
//	    sirets          <siret...>                 # organisations served beyond the file's (pending requests)
//	    api <url> {                                # resync from DataPass's API (optional)
//	        token_url     <url>                    # default <url>/api/v1/oauth/token
//	        client_id     <id>
//	        client_secret <{file.path}|{env.NAME}>
//	        webhook_id    <id>                     # look up its failed deliveries
//	        every         <duration>               # default 6h
//	    }
//	}
func parseDataPass(d *caddyfile.Dispenser) (*DataPassConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	c := new(DataPassConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "secret":
			err = oneArg(d, &c.Secret)
		case "previous_secret":
			err = oneArg(d, &c.PreviousSecret)
		case "environment":
			err = oneArg(d, &c.Environment)
		case "sirets":
			c.SIRETs = append(c.SIRETs, d.RemainingArgs()...)
			if len(c.SIRETs) == 0 {
				err = d.ArgErr()
			}
		case "api":
			c.API = new(DataPassAPIConfig)
			if err = oneArgKeepBlock(d, &c.API.URL); err != nil {
				return nil, err
			}
			for n2 := d.Nesting(); d.NextBlock(n2); {
				switch d.Val() {
				case "token_url":
					err = oneArg(d, &c.API.TokenURL)
				case "client_id":
					err = oneArg(d, &c.API.ClientID)
				case "client_secret":
					err = oneArg(d, &c.API.ClientSecret)
				case "webhook_id":
					err = oneArg(d, &c.API.WebhookID)
				case "every":
					err = durationArg(d, &c.API.Every)
				default:
					err = d.Errf("unrecognized datapass api option %q", d.Val())
				}
				if err != nil {
					return nil, err
				}
			}
		default:
			err = d.Errf("unrecognized datapass option %q", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	if c.Secret == "" {
		return nil, fmt.Errorf("datapass: secret is required")
	}
	return c, nil
}
