package profile

import "testing"

// The trainer calls Begin/End unconditionally, a few times per bucket and
// step: the disabled path must cost next to nothing.
func BenchmarkNilRecorder(b *testing.B) {
	var r *Recorder
	for b.Loop() {
		r.Begin("bucket", CatAllReduce).End()
	}
}

func BenchmarkRecorder(b *testing.B) {
	r := New(0, preallocated)
	n := 0
	for b.Loop() {
		r.Begin("bucket", CatAllReduce).End()
		// Empty the recorder now and then so the benchmark measures
		// recording, not the cheaper dropping of a full recorder.
		if n++; n == preallocated {
			r.spans, n = r.spans[:0], 0
		}
	}
}

// BenchmarkRecorderParallel measures the shared mutex under contention;
// once the recorder is full it drops, which takes the same lock.
func BenchmarkRecorderParallel(b *testing.B) {
	r := New(0, preallocated)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Begin("bucket", CatAllReduce).End()
		}
	})
}
