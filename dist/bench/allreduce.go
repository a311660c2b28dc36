// Package bench measures the process group's collectives the way
// nccl-tests and the OSU benchmarks do, with the keys of Cohort's anchors
// (../shared/anchors/allreduce_gloo.py, allreduce_mpi.c) so rows can be joined.
package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Group is the part of a process group the benchmark drives.
type Group interface {
	Rank() int
	Size() int
	AllReduceSum(buf []float32) error
	AllReduceMax(buf []float32) error
	Barrier() error
}

// Row is one message size's result, in the anchors' JSON keys.
type Row struct {
	Bench       string  `json:"bench"`
	Impl        string  `json:"impl"`
	Transport   string  `json:"transport"`
	Ranks       int     `json:"ranks"`
	Dtype       string  `json:"dtype"`
	Op          string  `json:"op"`
	Bytes       int     `json:"bytes"`
	Iters       int     `json:"iters"`
	Warmup      int     `json:"warmup"`
	LatUSMedian float64 `json:"lat_us_median"`
	LatUSMean   float64 `json:"lat_us_mean"`
	LatUSMin    float64 `json:"lat_us_min"`
	AlgBW       float64 `json:"algbw_GBps"`
	BusBW       float64 `json:"busbw_GBps"`
	LoadAvg1    float64 `json:"loadavg1"`
}

// DefaultIters is the anchors' rule: clamp(2^30/bytes, 20, 1000).
func DefaultIters(bytes int) int { return max(20, min(1000, (1<<30)/max(bytes, 1))) }

// ParseSizes reads "4K,64K,1M,64M" (binary units) into byte counts, each a
// multiple of 4 (float32).
func ParseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(f)), "B"), "I")
		mult := 1
		switch {
		case strings.HasSuffix(f, "K"):
			mult = 1 << 10
		case strings.HasSuffix(f, "M"):
			mult = 1 << 20
		case strings.HasSuffix(f, "G"):
			mult = 1 << 30
		}
		if mult > 1 {
			f = f[:len(f)-1]
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n*mult%4 != 0 {
			return nil, fmt.Errorf("bench: size %q: want a positive multiple of 4 bytes like 4K, 1M, 64M", f)
		}
		sizes = append(sizes, n*mult)
	}
	return sizes, nil
}

// AllReduce checks and times a float32 sum all-reduce for each size. Every
// rank runs it; the per-iteration time is the slowest rank's (as the
// anchors do). iters ≤ 0 picks DefaultIters; warmup < 0 picks max(5, iters/10).
func AllReduce(g Group, sizes []int, iters, warmup int) ([]Row, error) {
	var rows []Row
	n := g.Size()
	for _, bytes := range sizes {
		count := bytes / 4
		buf := make([]float32, count)
		for i := range buf {
			buf[i] = float32(g.Rank() + 1)
		}
		if err := g.AllReduceSum(buf); err != nil {
			return nil, fmt.Errorf("all-reduce %d bytes: %w", bytes, err)
		}
		if want := float32(n * (n + 1) / 2); buf[0] != want || buf[count-1] != want {
			return nil, fmt.Errorf("all-reduce %d bytes gave %v…%v, want %v", bytes, buf[0], buf[count-1], want)
		}
		it := iters
		if it <= 0 {
			it = DefaultIters(bytes)
		}
		warm := warmup
		if warm < 0 {
			warm = max(5, it/10)
		}
		for range warm {
			if err := g.AllReduceSum(buf); err != nil {
				return nil, err
			}
		}
		if err := g.Barrier(); err != nil {
			return nil, err
		}
		times := make([]float32, it)
		for i := range times {
			t0 := time.Now()
			if err := g.AllReduceSum(buf); err != nil {
				return nil, err
			}
			times[i] = float32(time.Since(t0).Seconds() * 1e6)
		}
		if err := g.AllReduceMax(times); err != nil {
			return nil, err
		}
		rows = append(rows, summarize(bytes, n, warm, times))
		if err := g.Barrier(); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

func summarize(bytes, ranks, warm int, timesUS []float32) Row {
	sorted := slices.Clone(timesUS)
	slices.Sort(sorted)
	med := float64(sorted[len(sorted)/2])
	if len(sorted)%2 == 0 {
		med = (float64(sorted[len(sorted)/2-1]) + med) / 2
	}
	var sum float64
	for _, t := range timesUS {
		sum += float64(t)
	}
	algbw := float64(bytes) / (med / 1e6) / 1e9
	return Row{
		Bench: "allreduce", Impl: "cohort", Transport: "tcp-ring", Ranks: ranks, Dtype: "float32", Op: "sum",
		Bytes: bytes, Iters: len(timesUS), Warmup: warm,
		LatUSMedian: round2(med), LatUSMean: round2(sum / float64(len(timesUS))), LatUSMin: round2(float64(sorted[0])),
		AlgBW: round4(algbw), BusBW: round4(algbw * 2 * float64(ranks-1) / float64(ranks)), LoadAvg1: loadAvg(),
	}
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
func round4(v float64) float64 { return float64(int64(v*1e4+0.5)) / 1e4 }

// loadAvg is the 1-minute load average, recorded because these machines
// are shared (0 when /proc is unavailable).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

// Table formats rows like nccl-tests.
func Table(rows []Row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%12s %8s %12s %12s %12s\n", "size(B)", "iters", "time(us)", "algbw(GB/s)", "busbw(GB/s)")
	for _, r := range rows {
		fmt.Fprintf(&b, "%12d %8d %12.2f %12.3f %12.3f\n", r.Bytes, r.Iters, r.LatUSMedian, r.AlgBW, r.BusBW)
	}
	return b.String()
}
