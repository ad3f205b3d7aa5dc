package bench

import (
	"fmt"
	"testing"
)

// The comparison's workloads as Go benchmarks, one sub-benchmark per row:
//
//	BenchmarkNoop/lib=pond/producers=8
//
// ns/op is per task, except BenchmarkBurst, whose op is one burst of
// 1,000,000 tasks (its ns/task metric is per task). Compare commits with
//
//	go test ./bench -run '^$' -bench Noop -count 6 > new.txt; benchstat old.txt new.txt

func BenchmarkNoop(b *testing.B)  { benchmarkWorkload(b, "noop") }
func BenchmarkCPU(b *testing.B)   { benchmarkWorkload(b, "cpu") }
func BenchmarkSleep(b *testing.B) { benchmarkWorkload(b, "sleep") }

func BenchmarkBurst(b *testing.B) {
	w, _ := WorkloadByName("burst")
	for _, lib := range Libs() {
		for _, p := range w.Producers {
			b.Run(fmt.Sprintf("lib=%s/producers=%d", lib.Name, p), func(b *testing.B) {
				b.ReportAllocs()
				var elapsed int64
				for range b.N {
					res, err := Measure(lib, Spec{Workload: w, Producers: p, Tasks: w.Tasks}, b)
					if err != nil {
						b.Fatal(err)
					}
					elapsed += res.ElapsedNs
				}
				b.ReportMetric(float64(elapsed)/float64(b.N)/float64(w.Tasks), "ns/task")
			})
		}
	}
}

func benchmarkWorkload(b *testing.B, name string) {
	w, ok := WorkloadByName(name)
	if !ok {
		b.Fatalf("no workload %q", name)
	}
	for _, lib := range Libs() {
		for _, p := range w.Producers {
			b.Run(fmt.Sprintf("lib=%s/producers=%d", lib.Name, p), func(b *testing.B) {
				b.ReportAllocs()
				res, err := Measure(lib, Spec{Workload: w, Producers: p, Tasks: b.N}, b)
				if err != nil {
					b.Fatal(err)
				}
				if res.Errors != 0 {
					b.Fatalf("%d submissions refused", res.Errors)
				}
				b.ReportMetric(float64(res.P50Ns), "p50-ns")
				b.ReportMetric(float64(res.P99Ns), "p99-ns")
			})
		}
	}
}
