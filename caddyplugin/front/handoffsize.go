package front

import (
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
)

// Bounds of max_handoff_bytes.
const (
	// defaultMaxHandoffBytes fits the stricter app servers' header limits
	// (Apache: 8 190 bytes a header; Tomcat: 8 KB of headers in all, but
	// an identity and a quotient familial take about 3 KB).
	defaultMaxHandoffBytes = 8 << 10
	// minHandoffBytes leaves room for the identity and the reconciliation
	// in both channels.
	minHandoffBytes = 2 << 10
	// maxHandoffBytes is far above any app server's header limit.
	maxHandoffBytes = 1 << 20
)

// fitHandOff keeps the hand-off of a new session within MaxHandoffBytes:
// while the headers it would add to a request are over, the largest
// dataset in JSON (its data or its error) not yet replaced is replaced by
// handoff.TooLarge (logged with its name and size, never its content). The session then keeps no more
// than what the app can receive. The identity and the reconciliation are
// never dropped: they are bounded by FranceConnect's claims.
func (f *Front) fitHandOff(s *session.Session, now time.Time) {
	for {
		h := f.buildHandOff(s, s.Moment, now)
		if h == nil {
			return
		}
		size := handoff.Bytes(h.header)
		if size <= f.MaxHandoffBytes {
			return
		}
		name, n := largestDataset(s.Datasets)
		if n == 0 {
			f.logger.Warn("hand-off over max_handoff_bytes with no dataset left to drop",
				zap.Int("bytes", size), zap.Int("max_handoff_bytes", f.MaxHandoffBytes))
			return
		}
		f.logger.Warn("dataset too large for the hand-off: replaced by error "+handoff.CodeTooLarge,
			zap.String("dataset", name), zap.Int("dataset_bytes", n), zap.Int("handoff_bytes", size),
			zap.Int("max_handoff_bytes", f.MaxHandoffBytes))
		s.Datasets[name] = handoff.TooLarge()
	}
}

// largestDataset names the largest dataset, its data or its error (a
// remote API Particulier's error texts are not bounded), and its size in
// JSON; none (0) when every dataset is already handoff.TooLarge.
func largestDataset(ds map[string]handoff.Dataset) (string, int) {
	var name string
	var most int
	for n, d := range ds {
		if datasetLabel(d) == "too_large" {
			continue
		}
		b, _ := json.Marshal(d)
		if l := len(b); l > most || (l == most && n < name) {
			name, most = n, l
		}
	}
	return name, most
}

// datasetLabel is a dataset's datasets_total label: ok, error, or
// too_large for one fitHandOff dropped.
func datasetLabel(d handoff.Dataset) string {
	if d.Error != nil && d.Error.Code == handoff.CodeTooLarge {
		return "too_large"
	}
	return d.Status
}

// countDatasets counts the datasets of a login in datasets_total.
func (f *Front) countDatasets(ds map[string]handoff.Dataset) {
	for _, d := range ds {
		f.metric(datasetsTotal, datasetLabel(d))
	}
}
