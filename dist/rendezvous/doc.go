// Package rendezvous forms a Cohort run's membership over NATS and watches it:
// Join gathers every worker's record and agrees on ranks, StartLiveness
// exchanges heartbeats and aborts, Exchange all-gathers small blobs (an NCCL
// unique id). NATS carries only this control traffic, never tensors.
//
// Every subject lives under cohort.<RunID>., nats.go's request inboxes
// included (cohort.<RunID>._INBOX), and every message also carries the run
// ID and is dropped if it names another run, so two runs sharing a server
// never mix.
//
// # Jobs sharing a server
//
// Apart from the shared token, a job may present a NATS user of its own
// (Auth). A server whose users may publish and subscribe only under their
// job's prefix (Permissions; AuthorizationConfig writes the block) keeps
// jobs from even seeing each other's subjects. A subject the server denies
// fails the worker at once with ErrPermission, naming the subject and the
// pattern to allow, rather than at the rendezvous timeout.
//
// # Protocol
//
// Join and Exchange are both a "round" on one subject. Each participant
// subscribes (to the subject and to its own inbox under it), then
// broadcasts its message tagged with a state that only grows: joining
// (still collecting), complete (holds all n messages; also carries a digest
// of which n), done (has seen all n complete with its own digest). A
// participant answers a newcomer's broadcast at once, directly to the
// newcomer's inbox, since the newcomer most likely missed earlier
// broadcasts; it rebroadcasts on every change of state, and otherwise at
// pauses doubling from 100 ms to 1 s to repair lost messages (core NATS
// delivers at most once). A participant that turns done stops broadcasting
// but answers any broadcast that is not done yet, so nobody is stranded.
// A participant turns done only when every digest equals its own, so a
// race with a surplus worker ends in a named conflict (or a timeout), never
// in two workers settling on different memberships. A worker that finds a
// conflict (a rank claimed twice, another world size, too many workers)
// broadcasts it, and every worker still joining fails with that message.
//
// # Ranks by arrival
//
// A worker with Rank -1 takes its rank by arrival. Without a sequencer (core
// NATS has no atomic counter, and ordering between publishers is not the
// same at every subscriber), arrival is the wall-clock time at which each
// worker called Join, as it reports it, with ties broken by its random ID.
// Every worker sorts the same n records the same way, so ranks are distinct
// and agreed without another message; only workers arriving within the
// nodes' clock skew may swap places, which no correctness depends on. Fixed
// and arrival ranks may be mixed: arrivals fill the ranks nobody claimed.
package rendezvous
