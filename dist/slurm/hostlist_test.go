package slurm

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestExpandHostlist(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"vm", []string{"vm"}},
		{"node-1.cluster_a", []string{"node-1.cluster_a"}},
		{"gpu[01-04,07],login-a1", []string{"gpu01", "gpu02", "gpu03", "gpu04", "gpu07", "login-a1"}},
		{"rack[1-2]-node[01-02]", []string{"rack1-node01", "rack1-node02", "rack2-node01", "rack2-node02"}},
		{"x[1-2]y[3]z[4-5]", []string{"x1y3z4", "x1y3z5", "x2y3z4", "x2y3z5"}},
		{"n[008-011]", []string{"n008", "n009", "n010", "n011"}},
		{"n[8-11]", []string{"n8", "n9", "n10", "n11"}},
		{"n[98-100]", []string{"n98", "n99", "n100"}},
		{"n[1-2]-ib", []string{"n1-ib", "n2-ib"}},
		{"n[5]", []string{"n5"}},
		{"n[0-0]", []string{"n0"}},
		{"[1-2]", []string{"1", "2"}},
		{"a[3,1]", []string{"a3", "a1"}},
		{"a,a", []string{"a", "a"}},
		{"a[1,3],b[2-3],c", []string{"a1", "a3", "b2", "b3", "c"}},
		{"r[1-2]n[1,3-4]", []string{"r1n1", "r1n3", "r1n4", "r2n1", "r2n3", "r2n4"}},
	}
	for _, tt := range tests {
		got, err := ExpandHostlist(tt.in)
		if err != nil {
			t.Errorf("ExpandHostlist(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ExpandHostlist(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The largest allowed list expands fully; one more host is refused.
func TestExpandHostlistLimit(t *testing.T) {
	got, err := ExpandHostlist("a[1-1000]b[0001-1000]")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != MaxHosts || got[0] != "a1b0001" || got[len(got)-1] != "a1000b1000" {
		t.Fatalf("got %d hosts from %q to %q, want %d from a1b0001 to a1000b1000", len(got), got[0], got[len(got)-1], MaxHosts)
	}
	if _, err := ExpandHostlist("a[1-1000]b[0001-1000],c"); !errors.Is(err, ErrHostlist) {
		t.Fatalf("one host over the limit: err = %v, want ErrHostlist", err)
	}
}

func TestExpandHostlistMalformed(t *testing.T) {
	long := strings.Repeat("n", 194)
	tests := []struct {
		in       string
		wantText []string // the message must quote the offending part
	}{
		{"", []string{"empty"}},
		{"a[1-2", []string{`unclosed '[' in "a[1-2"`}},
		{"ok,a[1-2", []string{`"a[1-2"`}},
		{"a1-2]", []string{`']' without '[' in "a1-2]"`}},
		{"a]b[", []string{`']' without '['`}},
		{"a[1[2]]", []string{"nested", `"[1["`}},
		{"gpu[01-04],rack[3-1]", []string{"descending", `"3-1"`, `"rack[3-1]"`}},
		{"a[x]", []string{`"x"`, "not a number"}},
		{"a[1:2]", []string{`"1:2"`}},
		{"a[1-2-3]", []string{`"2-3"`}},
		{"a[]", []string{"empty brackets", `"a[]"`}},
		{"a[1-]", []string{"empty number", `"1-"`}},
		{"a[-2]", []string{"empty number", `"-2"`}},
		{"a[1,,2]", []string{"empty number", `"a[1,,2]"`}},
		{"a,,b", []string{"empty host name"}},
		{"a,", []string{"empty host name"}},
		{",a", []string{"empty host name"}},
		{"a b", []string{"blank", `"a b"`}},
		{"a[1- 2]", []string{"blank"}},
		{"a\tb", []string{"blank"}},
		{"a[1-2000000]", []string{"more than 1000000 hosts", `"a[1-2000000]"`}},
		{"a[1-1001]b[1-1000]", []string{"more than 1000000 hosts", `"a[1-1001]b[1-1000]"`}},
		{"a[0-999999],b[0-1]", []string{"more than 1000000 hosts", `"b[0-1]"`}},
		{"a[0-9223372036854775807]", []string{"more than"}},
		{"a[99999999999999999999]", []string{"too large", `"99999999999999999999"`}},
		{strings.Repeat("a", 256), []string{"longer than 255"}},
		{long + "[000000-399999]", []string{"in all"}},
	}
	for _, tt := range tests {
		got, err := ExpandHostlist(tt.in)
		if !errors.Is(err, ErrHostlist) {
			t.Errorf("ExpandHostlist(%q) = %d hosts, %v; want an error wrapping ErrHostlist", tt.in, len(got), err)
			continue
		}
		for _, w := range tt.wantText {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ExpandHostlist(%q): error %q does not contain %q", tt.in, err, w)
			}
		}
	}
}
