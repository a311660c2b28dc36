//go:build cuda

package gpu

import (
	"fmt"
	"slices"

	"cohort/cuda"
	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// hostParams maps model's parameters to the device slots by name, checking
// that model has the device model's shapes.
func (m *Model) hostParams(model *nn.Sequential) ([]*nn.Param, error) {
	return matchSlots("parameter", m.slots, model.Params())
}

// hostBuffers maps model's buffers to the device's buffer slots likewise.
func (m *Model) hostBuffers(model *nn.Sequential) ([]*nn.Param, error) {
	return matchSlots("buffer", m.states, nn.Buffers(model))
}

// matchSlots returns, for each slot, the tensor of host with its name and
// shape.
func matchSlots(what string, slots []Slot, host []*nn.Param) ([]*nn.Param, error) {
	byName := paramsByName(host)
	out := make([]*nn.Param, len(slots))
	for i, s := range slots {
		p := byName[s.Name]
		if p == nil || !slices.Equal(p.Value.Shape, s.Shape) {
			return nil, fmt.Errorf("%w: host model has no %s %s of shape %v", ErrInput, what, s.Name, s.Shape)
		}
		out[i] = p
	}
	return out, nil
}

// writeParams uploads ps (in slot order) into the flat parameters.
func (m *Model) writeParams(q *cuda.Queue, ps []*nn.Param) {
	for i, s := range m.slots {
		cuda.Upload(q, view(m.params, s), ps[i].Value.Data)
	}
}

// writeBuffers uploads bs (in buffer slot order) into the buffers area.
func (m *Model) writeBuffers(q *cuda.Queue, bs []*nn.Param) {
	for i, s := range m.states {
		cuda.Upload(q, view(m.state, s), bs[i].Value.Data)
	}
}

// ParamsToHost copies the device parameters into the Value tensors of a
// CPU model with the same parameter names and shapes (the one New read, or
// one built the same way), for checkpoints and evaluation on the host.
func (m *Model) ParamsToHost(dst *nn.Sequential) error {
	ps, err := m.hostParams(dst)
	if err != nil {
		return err
	}
	return m.transfer("params to host", func(q *cuda.Queue) {
		for i, s := range m.slots {
			cuda.Download(q, ps[i].Value.Data, view(m.params, s))
		}
	})
}

// ParamsFromHost replaces the device parameters with src's values (a
// resumed checkpoint, or rank 0's weights).
func (m *Model) ParamsFromHost(src *nn.Sequential) error {
	ps, err := m.hostParams(src)
	if err != nil {
		return err
	}
	return m.transfer("params from host", func(q *cuda.Queue) { m.writeParams(q, ps) })
}

// BuffersToHost copies the device's buffers (BatchNorm's running
// statistics and batch counts) into those of a CPU model with the same
// buffer names and shapes, for checkpoints and the trainer's broadcast.
func (m *Model) BuffersToHost(dst *nn.Sequential) error {
	bs, err := m.hostBuffers(dst)
	if err != nil {
		return err
	}
	return m.transfer("buffers to host", func(q *cuda.Queue) {
		for i, s := range m.states {
			cuda.Download(q, bs[i].Value.Data, view(m.state, s))
		}
	})
}

// BuffersFromHost replaces the device's buffers with src's (a resumed
// checkpoint, or rank 0's statistics).
func (m *Model) BuffersFromHost(src *nn.Sequential) error {
	bs, err := m.hostBuffers(src)
	if err != nil {
		return err
	}
	return m.transfer("buffers from host", func(q *cuda.Queue) { m.writeBuffers(q, bs) })
}

// ReadGrad copies the flat gradient (NumParams float32s, in Layout order)
// to dst, after the work enqueued before it.
func (m *Model) ReadGrad(dst []float32) error {
	if len(dst) != m.nparams {
		return fmt.Errorf("%w: gradient of %d values, the model has %d", ErrInput, len(dst), m.nparams)
	}
	return m.transfer("read gradient", func(q *cuda.Queue) { cuda.Download(q, dst, m.grads) })
}

// WriteGrad replaces the flat gradient with src (e.g. after an all-reduce).
func (m *Model) WriteGrad(src []float32) error {
	if len(src) != m.nparams {
		return fmt.Errorf("%w: gradient of %d values, the model has %d", ErrInput, len(src), m.nparams)
	}
	return m.transfer("write gradient", func(q *cuda.Queue) { cuda.Upload(q, m.grads, src) })
}

// MomentumState returns copies of the momentum buffers named
// "<param>.momentum_buffer", as the CPU optimizer's optim.SGD.State does
// (empty without momentum), so checkpoints look the same from both.
func (m *Model) MomentumState() (map[string]*tensor.Tensor, error) {
	out := map[string]*tensor.Tensor{}
	if m.momentum.IsZero() {
		return out, nil
	}
	for _, s := range m.slots {
		out[s.Name+".momentum_buffer"] = tensor.New(s.Shape...)
	}
	err := m.transfer("momentum to host", func(q *cuda.Queue) {
		for _, s := range m.slots {
			cuda.Download(q, out[s.Name+".momentum_buffer"].Data, view(m.momentum, s))
		}
	})
	return out, err
}

// LoadMomentum restores MomentumState's output. Every buffer must be there
// with its shape and nothing else; on error nothing changes.
func (m *Model) LoadMomentum(src map[string]*tensor.Tensor) error {
	want := 0
	if !m.momentum.IsZero() {
		want = len(m.slots)
		for _, s := range m.slots {
			t := src[s.Name+".momentum_buffer"]
			if t == nil || !slices.Equal(t.Shape, s.Shape) {
				return fmt.Errorf("%w: momentum state lacks %s.momentum_buffer of shape %v", ErrInput, s.Name, s.Shape)
			}
		}
	}
	if len(src) != want {
		return fmt.Errorf("%w: momentum state has %d tensors, the optimizer %d", ErrInput, len(src), want)
	}
	if want == 0 {
		// No buffer to fill: a view of the zero Buffer would panic on the
		// device thread and take the process with it.
		return nil
	}
	return m.transfer("momentum from host", func(q *cuda.Queue) {
		for _, s := range m.slots {
			cuda.Upload(q, view(m.momentum, s), src[s.Name+".momentum_buffer"].Data)
		}
	})
}

func (m *Model) transfer(what string, f func(q *cuda.Queue)) error {
	if err := m.dev.Do(func(q *cuda.Queue) error { f(q); return nil }); err != nil {
		return fmt.Errorf("gpu: %s: %w", what, err)
	}
	return nil
}
