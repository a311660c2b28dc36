package data

import "math/rand/v2"

// Sampler yields one rank's indices for an epoch, with the semantics of
// PyTorch's DistributedSampler: a permutation drawn from (seed, epoch) that
// is the same on every rank and for every world size, padded by wrapping to
// a multiple of the world size, rank r taking positions r, r+W, r+2W, …
// Because the permutation does not depend on W, W ranks with batch B see
// exactly the samples one rank sees with batch W·B.
type Sampler struct {
	N           int
	Shuffle     bool
	Seed        uint64
	Rank, World int
}

// PerRank is how many indices each rank gets per epoch.
func (s Sampler) PerRank() int { return (s.N + s.World - 1) / s.World }

// Epoch returns this rank's indices for the epoch, in order.
func (s Sampler) Epoch(epoch int) []int {
	perm := make([]int, s.N)
	for i := range perm {
		perm[i] = i
	}
	if s.Shuffle {
		rng := rand.New(rand.NewPCG(s.Seed, uint64(epoch)))
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	}
	out := make([]int, s.PerRank())
	for i := range out {
		out[i] = perm[(s.Rank+i*s.World)%s.N]
	}
	return out
}
