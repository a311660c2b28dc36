package slurm

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func FuzzExpandHostlist(f *testing.F) {
	for _, s := range []string{
		"vm", "gpu[01-04,07],login-a1", "rack[1-2]-node[01-04]", "n[008-011]", "n[1-2]-ib",
		"a[3-1]", "a[x]", "a[1-2", "a,,b", "[1-2]", "a[1[2]]", "a[0-999999]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hosts, err := ExpandHostlist(s)
		if err != nil {
			if !errors.Is(err, ErrHostlist) || hosts != nil {
				t.Fatalf("ExpandHostlist(%q) = %d hosts, %v", s, len(hosts), err)
			}
			return
		}
		if len(hosts) == 0 || len(hosts) > MaxHosts {
			t.Fatalf("ExpandHostlist(%q) = %d hosts", s, len(hosts))
		}
		for _, h := range hosts {
			if h == "" || len(h) > MaxNameLen || strings.ContainsAny(h, "[],") {
				t.Fatalf("ExpandHostlist(%q) gave host %q", s, h)
			}
		}
		// A list without brackets is just its names.
		if !strings.ContainsAny(s, "[]") && strings.Join(hosts, ",") != s {
			t.Fatalf("ExpandHostlist(%q) = %q", s, hosts)
		}
	})
}

func FuzzExpandTasksPerNode(f *testing.F) {
	for _, s := range []string{"2(x3),1", "1", "8(x2),4", "2(x0)", "(x3)", "2(x3", "0", "1(x1000000)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		counts, err := ExpandTasksPerNode(s)
		if err != nil {
			if !errors.Is(err, ErrTasksPerNode) || counts != nil {
				t.Fatalf("ExpandTasksPerNode(%q) = %v, %v", s, counts, err)
			}
			return
		}
		if len(counts) == 0 || len(counts) > MaxHosts {
			t.Fatalf("ExpandTasksPerNode(%q) gave %d nodes", s, len(counts))
		}
		// Written out one node at a time, the counts read back the same.
		parts := make([]string, len(counts))
		for i, c := range counts {
			if c < 1 || c > MaxHosts {
				t.Fatalf("ExpandTasksPerNode(%q) gave count %d", s, c)
			}
			parts[i] = strconv.Itoa(c)
		}
		again, err := ExpandTasksPerNode(strings.Join(parts, ","))
		if err != nil || !slices.Equal(again, counts) {
			t.Fatalf("ExpandTasksPerNode(%q) = %v, but its expansion reads back as %d counts, %v", s, counts, len(again), err)
		}
	})
}
