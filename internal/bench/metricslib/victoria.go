//go:build ignore

// This file is not built with rolesenv. The benchmark's metrics section
// adds it to package main (go build -overlay, with a go.mod that requires
// the library) to measure what github.com/VictoriaMetrics/metrics would
// cost: /metrics is then written with the library's writers from the
// State's snapshot.

package main

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/rolesenv/rolesenv/internal/metrics"
)

func init() {
	metricsHandler = func(st *metrics.State) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			var b bytes.Buffer
			for _, f := range st.Snapshot().Families {
				vm.WriteMetadataIfNeeded(&b, f.Name, f.Type)
				for _, s := range f.Series {
					if f.Type != "histogram" {
						vm.WriteGaugeFloat64(&b, f.Name+labels(s.Labels), s.Value)
						continue
					}
					for _, bk := range s.Buckets {
						le := strconv.FormatFloat(bk.UpperBound, 'g', -1, 64)
						vm.WriteCounterUint64(&b, f.Name+"_bucket"+labels(append(s.Labels, metrics.Label{Name: "le", Value: le})), bk.Count)
					}
					vm.WriteCounterUint64(&b, f.Name+"_bucket"+labels(append(s.Labels, metrics.Label{Name: "le", Value: "+Inf"})), s.Count)
					vm.WriteGaugeFloat64(&b, f.Name+"_sum"+labels(s.Labels), s.Sum)
					vm.WriteCounterUint64(&b, f.Name+"_count"+labels(s.Labels), s.Count)
				}
			}
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_, _ = w.Write(b.Bytes())
		})
	}
}

func labels(ls []metrics.Label) string {
	if len(ls) == 0 {
		return ""
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Name + "=" + strconv.Quote(l.Value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}
