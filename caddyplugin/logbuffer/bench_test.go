package logbuffer

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkFileWrite compares, in one run, one write system call per log
// line (what Caddy's file writer does) with the same lines batched by a
// Buffer in front of the same kind of file:
//
//	go test -run '^$' -bench FileWrite ./caddyplugin/logbuffer/
func BenchmarkFileWrite(b *testing.B) {
	record := []byte(`{"level":"info","ts":1795631822.9385912,"logger":"passerelle.audit","msg":"access decision","time":"2026-11-25T18:37:02.935Z","request_id":"53828822-d6b9-4a5c-9390-576ee7e1fefc","endpoint":"dss_quotient_familial_fc","decision":"allow","provider":"CNAV","provider_status":200,"latency_ms":2}` + "\n")
	open := func(b *testing.B) *os.File {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "audit.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		return f
	}
	b.Run("unbuffered", func(b *testing.B) {
		f := open(b)
		defer f.Close()
		b.SetBytes(int64(len(record)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = f.Write(record)
			}
		})
	})
	b.Run("passerelle_buffered", func(b *testing.B) {
		w := New(open(b), Options{Size: DefaultBufferSize, Interval: DefaultFlushInterval})
		defer w.Close()
		b.SetBytes(int64(len(record)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = w.Write(record)
			}
		})
	})
}
