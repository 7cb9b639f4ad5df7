package caddyplugin

import (
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/config/datapass"
)

// Bounds of the resync interval.
const (
	defaultResyncEvery = 6 * time.Hour
	minResyncEvery     = time.Minute
	maxResyncEvery     = 24 * time.Hour
)

// loadResync prepares the resync from DataPass's API, when configured.
func (a *App) loadResync(st *dataPassState, known map[string]bool) error {
	c := a.DataPass.API
	if c == nil {
		return nil
	}
	st.every = time.Duration(c.Every)
	if st.every == 0 {
		st.every = defaultResyncEvery
	}
	if st.every < minResyncEvery || st.every > maxResyncEvery {
		return errors.New("passerelle: datapass api every: want 1m to 24h")
	}
	secret, err := a.resolveSecret("datapass api client_secret", c.ClientSecret)
	if err != nil {
		return err
	}
	if c.ClientID == "" || secret == "" {
		return errors.New("passerelle: datapass api: client_id and client_secret are required")
	}
	api, err := datapass.NewAPI(datapass.APIConfig{BaseURL: c.URL, TokenURL: c.TokenURL, ClientID: c.ClientID, ClientSecret: secret})
	if err != nil {
		return err
	}
	st.resync = &datapass.Resync{
		API: api, Store: st.store, Bindings: a.watcher.Current, SIRETs: slices.Clone(a.DataPass.SIRETs),
		KnownScope: func(s string) bool { return known[s] }, WebhookID: c.WebhookID,
		Log: func(msg string, err error) {
			if err != nil {
				a.logger.Error(msg, zap.Error(err))
				return
			}
			a.logger.Info(msg)
		},
	}
	return nil
}
