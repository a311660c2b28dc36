package slurm

import "hash/fnv"

// The rendezvous port range: above the well-known and the usual
// SLURM/MPI ports (slurmctld 6817, slurmd 6818, MpiParams often 12000s)
// and below Linux's ephemeral range (32768–60999), so neither a daemon nor
// an outgoing connection is likely to hold the port.
const (
	portBase  = 20000
	portCount = 10000
)

// Defaults of tools that may run on the same node, which the derived port
// avoids.
const (
	torchrunRdzvPort = 29400
	torchMasterPort  = 29500
)

// RendezvousPort derives the rendezvous server's port from the job and step
// ids, so every task of a step agrees on it without talking: a FNV-1a hash
// into 20000–29999, skipping torchrun's and PyTorch's default ports.
// Distinct steps collide with probability 1/9998 per pair, which matters
// only when both put their server on the same node at the same time
// (concurrent steps of one job, or jobs sharing a node); the server's
// listen then fails with "address in use", which the caller should report
// along with a way to name a port explicitly. The same job and step ids
// always give the same port, so a requeued job reuses it.
func RendezvousPort(jobID, stepID string) int {
	h := fnv.New64a()
	h.Write([]byte(jobID))
	h.Write([]byte{0})
	h.Write([]byte(stepID))
	reserved := [...]int{torchrunRdzvPort, torchMasterPort} // ascending
	port := portBase + int(h.Sum64()%uint64(portCount-len(reserved)))
	// Shifting past each reserved port keeps the map onto the rest of the
	// range one-to-one, so no port is twice as likely as the others.
	for _, r := range reserved {
		if port >= r {
			port++
		}
	}
	return port
}
