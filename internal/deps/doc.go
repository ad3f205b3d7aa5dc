// Package deps holds the test that keeps the core module's requirements a
// visible decision: github.com/shoal-go/shoal requires only what the core
// needs (xxhash, x/time/rate, and goleak for its tests). Benchmarks, the
// Prometheus exporter and the adapters are modules of their own
// (bench/, pool/promexport/, jetstream/), tied together by go.work.
package deps
