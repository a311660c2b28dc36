package train

// Comm is what the trainer needs from a process group. dist's TCP group
// implements it; a nil Comm means a single process.
type Comm interface {
	Rank() int
	Size() int
	AllReduceSum(buf []float32) error
	AllReduceMean(buf []float32) error
	AllReduceMax(buf []float32) error
	Broadcast(buf []float32, root int) error
	Barrier() error
}

// solo is the process group of one process: every collective is the identity.
type solo struct{}

func (solo) Rank() int                      { return 0 }
func (solo) Size() int                      { return 1 }
func (solo) AllReduceSum([]float32) error   { return nil }
func (solo) AllReduceMean([]float32) error  { return nil }
func (solo) AllReduceMax([]float32) error   { return nil }
func (solo) Broadcast([]float32, int) error { return nil }
func (solo) Barrier() error                 { return nil }
