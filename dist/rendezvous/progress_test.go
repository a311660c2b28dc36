package rendezvous

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// records builds held join records; rank -1 takes its arrival time from the
// position in the list.
func records(ranks ...int) map[string]envelope[joinRecord] {
	held := map[string]envelope[joinRecord]{}
	for i, r := range ranks {
		id := fmt.Sprintf("id%02d", i)
		held[id] = envelope[joinRecord]{From: id, State: joining, Body: joinRecord{
			Rank: r, World: 4, Host: fmt.Sprintf("node%c", 'A'+i), PID: 100 + i, Since: int64(10 * (len(ranks) - i)),
		}}
	}
	return held
}

func TestAssignRanks(t *testing.T) {
	tests := []struct {
		name  string
		ranks []int
		want  []string // host per rank
	}{
		// Arrivals by Since: the last listed arrived first.
		{"fixed", []int{2, 0, 3, 1}, []string{"nodeB", "nodeD", "nodeA", "nodeC"}},
		{"arrival", []int{-1, -1, -1, -1}, []string{"nodeD", "nodeC", "nodeB", "nodeA"}},
		{"mixed", []int{-1, 0, -1, 2}, []string{"nodeB", "nodeC", "nodeD", "nodeA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peers := assignRanks(records(tt.ranks...), 4)
			for r, p := range peers {
				if p.Rank != r || p.Host != tt.want[r] {
					t.Errorf("rank %d: %+v, want host %s", r, p, tt.want[r])
				}
			}
		})
	}
}

func TestAssignRanksTieBreak(t *testing.T) {
	held := records(-1, -1)
	for id, e := range held {
		e.Body.Since = 5
		held[id] = e
	}
	if p := assignRanks(held, 2); p[0].ID != "id00" || p[1].ID != "id01" {
		t.Fatalf("equal arrival times: ranks %+v, want the smaller ID first", p)
	}
}

func TestProgress(t *testing.T) {
	confirmed := records(0, 1, 2, 3)
	for id, e := range confirmed {
		if e.Body.Rank != 2 {
			e.State = complete
			confirmed[id] = e
		}
	}
	many := make([]int, 40)
	for i := range many {
		many[i] = i
	}
	tests := []struct {
		name  string
		held  map[string]envelope[joinRecord]
		n     int
		after time.Duration
		want  string
	}{
		{"missing one", records(0, 1, 3), 4, 30 * time.Second,
			"3/4 joined after 30s; missing rank 2; joined: 0@nodeA pid 100, 1@nodeB pid 101, 3@nodeC pid 102"},
		{"missing several", records(1), 4, 1234 * time.Millisecond,
			"1/4 joined after 1.2s; missing ranks 0, 2, 3; joined: 1@nodeA pid 100"},
		{"by arrival", records(-1, 0), 4, 250 * time.Millisecond,
			"2/4 joined after 250ms; 2 missing (ranks by arrival); joined: 0@nodeB pid 101, nodeA pid 100"},
		{"unconfirmed", confirmed, 4, time.Minute,
			"4/4 joined after 1m0s but not all confirmed (messages lost, or a worker died mid-rendezvous); unconfirmed: 2@nodeC pid 102; joined: 0@nodeA pid 100, 1@nodeB pid 101, 2@nodeC pid 102, 3@nodeD pid 103"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := progress(tt.held, tt.n, tt.after); got != tt.want {
				t.Errorf("progress =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	got := progress(records(many...), 64, time.Second)
	if !strings.Contains(got, "… and 24 more") || strings.Count(got, "@") != maxListed {
		t.Errorf("long lists are not capped at %d: %s", maxListed, got)
	}
}
