package bench

import (
	"slices"
	"strings"
	"testing"
)

func TestParseSizes(t *testing.T) {
	got, err := ParseSizes("4K, 64KiB,1M,16MB,8")
	if err != nil || !slices.Equal(got, []int{4096, 65536, 1 << 20, 16 << 20, 8}) {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "3", "x", "-4K", "1.5M"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// solo is a one-rank group: the sum of one rank is itself.
type solo struct{}

func (solo) Rank() int                    { return 0 }
func (solo) Size() int                    { return 1 }
func (solo) AllReduceSum([]float32) error { return nil }
func (solo) AllReduceMax([]float32) error { return nil }
func (solo) Barrier() error               { return nil }

func TestAllReduceRowsFollowTheAnchorConventions(t *testing.T) {
	rows, err := AllReduce(solo{}, []int{4096, 1 << 20}, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Iters != 1000 || rows[1].Iters != 1000 || rows[0].Warmup != 100 || rows[0].BusBW != 0 {
		t.Fatalf("rows %+v", rows)
	}
	r := summarize(1<<20, 4, 5, []float32{30, 10, 20, 40})
	if r.LatUSMedian != 25 || r.LatUSMin != 10 || r.LatUSMean != 25 {
		t.Fatalf("%+v", r)
	}
	// algbw = 1 MiB / 25 µs; busbw = algbw × 2(n-1)/n.
	if r.AlgBW != 41.943 || r.BusBW != 62.9146 {
		t.Fatalf("algbw %v busbw %v", r.AlgBW, r.BusBW)
	}
	if !strings.Contains(Table([]Row{r}), "1048576") {
		t.Fatal("table lacks the size")
	}
}
