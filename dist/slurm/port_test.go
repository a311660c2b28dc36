package slurm

import (
	"strconv"
	"testing"
)

// Every port of the range but the reserved two is reachable, and nothing
// outside it: the hash's map stays onto the whole range.
func TestRendezvousPortRange(t *testing.T) {
	hits := map[int]int{}
	for job := range 200_000 {
		hits[RendezvousPort(strconv.Itoa(job), "0")]++
	}
	for port := range hits {
		if port < portBase || port >= portBase+portCount || port == torchrunRdzvPort || port == torchMasterPort {
			t.Fatalf("port %d is outside 20000–29999 or reserved", port)
		}
	}
	if want := portCount - 2; len(hits) != want {
		t.Fatalf("200000 jobs hit %d distinct ports, want all %d", len(hits), want)
	}
}

func TestRendezvousPortDeterministic(t *testing.T) {
	a := RendezvousPort("4242", "1")
	for range 3 {
		if p := RendezvousPort("4242", "1"); p != a {
			t.Fatalf("RendezvousPort(4242, 1) = %d then %d", a, p)
		}
	}
	if RendezvousPort("4242", "0") == a && RendezvousPort("4242", "2") == a {
		t.Fatalf("steps 0, 1 and 2 of a job share port %d", a)
	}
	// The separator keeps job 12 step 3 apart from job 1 step 23.
	if RendezvousPort("12", "3") == RendezvousPort("1", "23") {
		t.Fatal("job/step boundary is not part of the hash")
	}
}
