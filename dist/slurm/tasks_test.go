package slurm

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestExpandTasksPerNode(t *testing.T) {
	tests := []struct {
		in   string
		want []int
	}{
		{"1", []int{1}},
		{"2", []int{2}},
		{"2(x3),1", []int{2, 2, 2, 1}},
		{"4(x1)", []int{4}},
		{"8(x2),4,2(x2)", []int{8, 8, 4, 2, 2}},
		{"1,1000000", []int{1, 1000000}},
	}
	for _, tt := range tests {
		got, err := ExpandTasksPerNode(tt.in)
		if err != nil {
			t.Errorf("ExpandTasksPerNode(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ExpandTasksPerNode(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestExpandTasksPerNodeMalformed(t *testing.T) {
	tests := []struct {
		in       string
		wantText string
	}{
		{"", "empty"},
		{"0", `count "0"`},
		{"2(x0)", `count "0" in "2(x0)"`},
		{"2(3)", `"2(3)" is not a count`},
		{"(x3)", `count "" in "(x3)"`},
		{"2(x3", `"2(x3" lacks the closing ')'`},
		{"2(x3)1", `"2(x3)1" lacks`},
		{"2(x3))", `"3)" in "2(x3))"`},
		{"2(x)", `count "" in "2(x)"`},
		{"2x3", `"2x3"`},
		{"2,", `count "" in ""`},
		{",2", `count "" in ""`},
		{"a", `"a" in "a"`},
		{"-1", `"-1"`},
		{" 2", `" 2"`},
		{"99999999999999999999", "not in [1, 1000000]"},
		{"1(x1000001)", `"1000001"`},
		{"1(x600000),1(x600000)", "more than 1000000 nodes"},
	}
	for _, tt := range tests {
		got, err := ExpandTasksPerNode(tt.in)
		if !errors.Is(err, ErrTasksPerNode) {
			t.Errorf("ExpandTasksPerNode(%q) = %v, %v; want an error wrapping ErrTasksPerNode", tt.in, got, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantText) {
			t.Errorf("ExpandTasksPerNode(%q): error %q does not contain %q", tt.in, err, tt.wantText)
		}
	}
}
