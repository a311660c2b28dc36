package meter

import (
	"math"
	"testing"

	"cohort/engine/tensor"
)

func TestAccuracyTopK(t *testing.T) {
	logits := tensor.FromData([]float32{
		0.1, 0.7, 0.2, // label 1: top1
		0.5, 0.3, 0.2, // label 1: top2
		0.2, 0.3, 0.5, // label 0: top3
		0.4, 0.4, 0.2, // label 1: tie with 0 counts as top1
	}, 4, 3)
	acc, err := NewAccuracy([]int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	acc.Update(logits, []int32{1, 1, 0, 1}, 0)
	v := acc.Values()
	if len(v) != 2 || v["accuracy"] != 0.5 || v["top2"] != 0.75 {
		t.Fatalf("values %v", v)
	}
	if _, err := NewAccuracy([]int{0}); err == nil {
		t.Fatal("top-0 accepted")
	}
}

func TestMetersMergeBySummingState(t *testing.T) {
	a, b := &Loss{}, &Loss{}
	a.Update(tensor.New(2, 3), nil, 1.0)
	b.Update(tensor.New(6, 3), nil, 3.0)
	sa, sb := a.State(), b.State()
	for i := range sa {
		sa[i] += sb[i]
	}
	a.SetState(sa)
	if got := a.Values()["loss"]; math.Abs(got-2.5) > 1e-9 {
		t.Fatalf("merged loss %v, want (2·1+6·3)/8 = 2.5", got)
	}
	a.Reset()
	if a.Values()["loss"] != 0 {
		t.Fatal("reset")
	}
}
