package rendezvous

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// maxListed caps how many workers an error message names.
const maxListed = 16

// progress says how far a join got, for the error when it ends early:
// "3/4 joined after 30s; missing rank 2; joined: 0@nodeA pid 123, ...".
func progress(held map[string]envelope[joinRecord], n int, elapsed time.Duration) string {
	after := elapsed.Round(100 * time.Millisecond)
	if elapsed < time.Second {
		after = elapsed.Round(time.Millisecond)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d joined after %s", len(held), n, after)
	if len(held) < n {
		fmt.Fprintf(&b, "; %s", missing(held, n))
	} else {
		var waiting []string
		for _, e := range sorted(held) {
			if e.State < complete {
				waiting = append(waiting, describe(e.Body))
			}
		}
		fmt.Fprintf(&b, " but not all confirmed (messages lost, or a worker died mid-rendezvous); unconfirmed: %s", capList(waiting))
	}
	fmt.Fprintf(&b, "; joined: %s", listJoined(held))
	return b.String()
}

// missing names the absent ranks when every joined worker has a fixed rank;
// with arrival ranks only the count is known.
func missing(held map[string]envelope[joinRecord], n int) string {
	claimed := make([]bool, n)
	for _, e := range held {
		if e.Body.Rank < 0 {
			return fmt.Sprintf("%d missing (ranks by arrival)", n-len(held))
		}
		claimed[e.Body.Rank] = true
	}
	var ranks []string
	for r, ok := range claimed {
		if !ok {
			ranks = append(ranks, fmt.Sprint(r))
		}
	}
	if len(ranks) == 1 {
		return "missing rank " + ranks[0]
	}
	return "missing ranks " + capList(ranks)
}

func listJoined(held map[string]envelope[joinRecord]) string {
	var out []string
	for _, e := range sorted(held) {
		out = append(out, describe(e.Body))
	}
	return capList(out)
}

// sorted orders records by rank (arrivals last), then host and pid.
func sorted(held map[string]envelope[joinRecord]) []envelope[joinRecord] {
	out := make([]envelope[joinRecord], 0, len(held))
	for _, e := range held {
		out = append(out, e)
	}
	key := func(r int) int {
		if r < 0 {
			return math.MaxInt
		}
		return r
	}
	slices.SortFunc(out, func(a, b envelope[joinRecord]) int {
		return cmp.Or(cmp.Compare(key(a.Body.Rank), key(b.Body.Rank)),
			cmp.Compare(a.Body.Host, b.Body.Host), cmp.Compare(a.Body.PID, b.Body.PID))
	})
	return out
}

// describe names a worker: "2@nodeA pid 123", or "nodeA pid 123" before it
// has a rank.
func describe(b joinRecord) string {
	if b.Rank < 0 {
		return fmt.Sprintf("%s pid %d", b.Host, b.PID)
	}
	return fmt.Sprintf("%d@%s pid %d", b.Rank, b.Host, b.PID)
}

func capList(items []string) string {
	if len(items) <= maxListed {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s, … and %d more", strings.Join(items[:maxListed], ", "), len(items)-maxListed)
}
