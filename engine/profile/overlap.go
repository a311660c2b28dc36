package profile

import (
	"cmp"
	"slices"
)

// Overlaps reports whether, on some rank, a complete span of category catA
// and one of catB overlap in time (sharing only an end point does not
// count, nor do spans of zero duration): e.g. that gradient all-reduce ran
// during backward.
func Overlaps(events []Event, catA, catB string) bool {
	type interval struct{ start, end float64 }
	byPid := map[int]*[2][]interval{}
	for _, e := range events {
		if e.Ph != "X" || e.Dur <= 0 || (e.Cat != catA && e.Cat != catB) {
			continue
		}
		lists := byPid[e.Pid]
		if lists == nil {
			lists = new([2][]interval)
			byPid[e.Pid] = lists
		}
		iv := interval{e.TS, e.TS + e.Dur}
		if e.Cat == catA {
			lists[0] = append(lists[0], iv)
		}
		if e.Cat == catB {
			lists[1] = append(lists[1], iv)
		}
	}
	byStart := func(x, y interval) int { return cmp.Compare(x.start, y.start) }
	for _, lists := range byPid {
		a, b := lists[0], lists[1]
		slices.SortFunc(a, byStart)
		slices.SortFunc(b, byStart)
		// Sweep: with both lists sorted by start, the interval that ends
		// first cannot overlap anything later in the other list.
		for i, j := 0, 0; i < len(a) && j < len(b); {
			if a[i].start < b[j].end && b[j].start < a[i].end {
				return true
			}
			if a[i].end <= b[j].end {
				i++
			} else {
				j++
			}
		}
	}
	return false
}
