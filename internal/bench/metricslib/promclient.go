//go:build ignore

// This file is not built with rolesenv. The benchmark's metrics section
// adds it to package main (go build -overlay, with a go.mod that requires
// the library) to measure what github.com/prometheus/client_golang would
// cost: /metrics is then a promhttp handler over a registry with one
// collector that turns the State's snapshot into const metrics.

package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rolesenv/rolesenv/internal/metrics"
)

func init() {
	metricsHandler = func(st *metrics.State) http.Handler {
		reg := prometheus.NewRegistry()
		reg.MustRegister(snapshotCollector{st})
		return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
}

type snapshotCollector struct{ st *metrics.State }

// Describe sends nothing: an unchecked collector.
func (snapshotCollector) Describe(chan<- *prometheus.Desc) {}

func (c snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.st.Snapshot().Families {
		for _, s := range f.Series {
			names := make([]string, len(s.Labels))
			values := make([]string, len(s.Labels))
			for i, l := range s.Labels {
				names[i], values[i] = l.Name, l.Value
			}
			desc := prometheus.NewDesc(f.Name, f.Help, names, nil)
			switch f.Type {
			case "histogram":
				buckets := make(map[float64]uint64, len(s.Buckets))
				for _, b := range s.Buckets {
					buckets[b.UpperBound] = b.Count
				}
				ch <- prometheus.MustNewConstHistogram(desc, s.Count, s.Sum, buckets, values...)
			case "counter":
				ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, s.Value, values...)
			default:
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, s.Value, values...)
			}
		}
	}
}
