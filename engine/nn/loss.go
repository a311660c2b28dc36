package nn

import (
	"errors"
	"fmt"
	"math"

	"cohort/engine/tensor"
)

// ErrLabel reports a label outside [0, classes) or a label count that does
// not match the batch.
var ErrLabel = errors.New("nn: bad label")

// SoftmaxCrossEntropy is softmax followed by the negative log-likelihood,
// fused so that it is stable for any logits and its gradient is the
// closed form (softmax - onehot)/N. It is PyTorch's CrossEntropyLoss with
// mean reduction.
type SoftmaxCrossEntropy struct {
	prob   *tensor.Tensor // softmax of the last Forward's logits
	grad   *tensor.Tensor
	labels []int32
}

// NewSoftmaxCrossEntropy returns the loss.
func NewSoftmaxCrossEntropy() *SoftmaxCrossEntropy { return &SoftmaxCrossEntropy{} }

// Forward returns the mean over the batch of -log softmax(logits)[label]
// for N×C logits and N labels, and keeps the softmax for Backward. Rows are
// shifted by their max before exponentiating, and sums are kept in float64.
func (c *SoftmaxCrossEntropy) Forward(logits *tensor.Tensor, labels []int32) (float32, error) {
	n, k := logits.Rows(), logits.Cols()
	if len(labels) != n {
		return 0, fmt.Errorf("%w: %d labels for a batch of %d", ErrLabel, len(labels), n)
	}
	for i, y := range labels {
		if y < 0 || int(y) >= k {
			return 0, fmt.Errorf("%w: label %d at index %d not in [0, %d)", ErrLabel, y, i, k)
		}
	}
	prob := tensor.Ensure(&c.prob, n, k)
	var total float64
	for i := 0; i < n; i++ {
		x := logits.Data[i*k : (i+1)*k]
		p := prob.Data[i*k : (i+1)*k]
		m := x[0]
		for _, v := range x[1:] {
			m = max(m, v)
		}
		var sum float64
		for j, v := range x {
			e := math.Exp(float64(v - m))
			p[j] = float32(e)
			sum += e
		}
		inv := float32(1 / sum)
		for j := range p {
			p[j] *= inv
		}
		total += math.Log(sum) - float64(x[labels[i]]-m)
	}
	c.labels = append(c.labels[:0], labels...)
	return float32(total / float64(n)), nil
}

// Backward returns dLoss/dlogits = (softmax - onehot)/N for the last
// Forward, owned by the loss.
func (c *SoftmaxCrossEntropy) Backward() *tensor.Tensor {
	n, k := c.prob.Rows(), c.prob.Cols()
	g := tensor.Ensure(&c.grad, n, k)
	scale := 1 / float32(n)
	for i, p := range c.prob.Data {
		g.Data[i] = p * scale
	}
	for i, y := range c.labels {
		g.Data[i*k+int(y)] -= scale
	}
	return g
}
