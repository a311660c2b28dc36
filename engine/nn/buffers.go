package nn

// Stateful is a layer with non-learnable state that a checkpoint must
// save and that ranks must agree on, such as BatchNorm's running
// statistics (PyTorch's registered buffers). A buffer is a Param whose
// Grad is nil; its Name is the state_dict name.
type Stateful interface {
	// Buffers lists the state tensors, in state_dict order.
	Buffers() []*Param
}

// Buffers lists every buffer of l, in layer order: l's own when it is
// Stateful, its layers' when it is a *Sequential, none otherwise.
func Buffers(l Layer) []*Param {
	switch l := l.(type) {
	case Stateful:
		return l.Buffers()
	case *Sequential:
		var bs []*Param
		for _, sub := range l.Layers {
			bs = append(bs, Buffers(sub)...)
		}
		return bs
	}
	return nil
}

// Walk calls visit for l and then for every layer nested in it, depth
// first in forward order: the layers of a *Sequential, and the main branch
// then the shortcut of a *Residual. A trainer uses it to reach layers
// inside blocks, e.g. every *BatchNorm to set its stats reducer.
func Walk(l Layer, visit func(Layer)) {
	visit(l)
	switch l := l.(type) {
	case *Sequential:
		for _, sub := range l.Layers {
			Walk(sub, visit)
		}
	case *Residual:
		Walk(l.Main, visit)
		if l.Shortcut != nil {
			Walk(l.Shortcut, visit)
		}
	}
}
