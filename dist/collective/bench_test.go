package collective

import (
	"fmt"
	"testing"
)

var benchSizes = []int{4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkAllReduce times AllReduceSum over loopback, every rank a
// goroutine, and reports nccl-tests' bus bandwidth:
// busbw = bytes/time × 2(n−1)/n.
func BenchmarkAllReduce(b *testing.B) {
	for _, n := range []int{2, 4} {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("ranks=%d/bytes=%s", n, sizeName(size)), func(b *testing.B) {
				benchAllReduce(b, n, size, nil)
			})
		}
	}
}

// BenchmarkChunk is how DefaultChunkBytes was picked: two ranks, a small
// and a large all-reduce, across chunk sizes.
func BenchmarkChunk(b *testing.B) {
	for _, size := range []int{1 << 20, 64 << 20} {
		for _, chunk := range []int{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 4 << 20} {
			b.Run(fmt.Sprintf("bytes=%s/chunk=%s", sizeName(size), sizeName(chunk)), func(b *testing.B) {
				benchAllReduce(b, 2, size, func(c *Config) { c.ChunkBytes = chunk })
			})
		}
	}
}

func benchAllReduce(b *testing.B, n, size int, mod func(*Config)) {
	gs := newGroups(b, n, mod)
	bufs := make([][]float32, n)
	for r := range bufs {
		bufs[r] = make([]float32, size/4)
	}
	allReduce := func(r int, g *Group) error {
		for range b.N {
			if err := g.AllReduceSum(bufs[r]); err != nil {
				return err
			}
		}
		return nil
	}
	// One warm-up round touches the buffers and grows the socket windows.
	noErrors(b, onEach(gs, func(r int, g *Group) error { return g.AllReduceSum(bufs[r]) }))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	errs := onEach(gs, allReduce)
	b.StopTimer()
	noErrors(b, errs)
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(size)/perOp*2*float64(n-1)/float64(n)/1e9, "busbw-GB/s")
}

// BenchmarkReduce is the reduction kernel alone, for comparison with the
// bus bandwidth: one chunk's worth.
func BenchmarkReduce(b *testing.B) {
	dst, src := make([]float32, DefaultChunkBytes/4), make([]float32, DefaultChunkBytes/4)
	b.SetBytes(DefaultChunkBytes)
	for b.Loop() {
		sumInto(dst, src)
	}
}
