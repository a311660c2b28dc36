package rendezvous

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// state is a participant's progress in a round; it never decreases.
type state int

const (
	joining  state = iota // still collecting messages
	complete              // holds all n messages
	done                  // has seen all n complete with its own digest
)

const (
	// firstTick and maxTick bound the pause between periodic
	// rebroadcasts, which double from one to the other: they only repair
	// lost messages, and at n² deliveries each they must not swamp a
	// loaded machine.
	firstTick = 100 * time.Millisecond
	maxTick   = time.Second
)

// envelope is what a round publishes; Body is the round's payload.
type envelope[T any] struct {
	Run    string `json:"run"`
	From   string `json:"from"`
	State  state  `json:"state"`
	Digest string `json:"digest,omitempty"`
	// Failed, when set, says the sender's round failed and why, so that
	// everyone still joining fails at once with the same reason.
	Failed string `json:"failed,omitempty"`
	Body   T      `json:"body"`
}

// admitFunc decides whether a first message from a participant belongs in
// the round, given those already held (the own one included): false drops
// it silently (not ours), an error ends the round.
type admitFunc[T any] func(held map[string]*envelope[T], e *envelope[T]) (bool, error)

// round gathers one message from each of n participants on one subject and
// finishes when every participant holds the same n (see the package doc).
// Broadcasts carry a reply subject, the sender's inbox, so that answers
// meant for one participant cost one delivery, not n.
type round[T any] struct {
	nc      *nats.Conn
	subject string
	inbox   string
	n       int
	admit   admitFunc[T]
	// keep leaves the subscriptions open after everyone is done, so that a
	// late duplicate still hears from the members and fails clearly.
	keep bool

	mu       sync.Mutex
	self     envelope[T]
	held     map[string]*envelope[T] // by participant ID, self included
	err      error
	finished chan struct{} // closed when done or failed
	subs     []*nats.Subscription
}

func newRound[T any](nc *nats.Conn, subj string, n int, self envelope[T], admit admitFunc[T], keep bool) *round[T] {
	r := &round[T]{nc: nc, subject: subj, inbox: subj + ".in." + self.From, n: n, admit: admit, keep: keep,
		self: self, finished: make(chan struct{})}
	r.held = map[string]*envelope[T]{self.From: &r.self}
	return r
}

// run subscribes and broadcasts until the round is done, fails, or ctx
// ends. On failure it stops listening; on success it keeps answering
// stragglers until they are all done (or, with keep, until the connection
// closes).
func (r *round[T]) run(ctx context.Context) error {
	if err := r.subscribe(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.advance() // a round of one is done at once
	out := r.encode()
	r.mu.Unlock()
	if err := r.broadcast(out); err != nil {
		r.unsubscribe()
		return err
	}
	pause := firstTick
	tick := time.NewTimer(pause + rand.N(pause))
	defer tick.Stop()
	for {
		select {
		case <-r.finished:
			return r.result()
		case <-ctx.Done():
			select {
			case <-r.finished: // finishing wins a tie with the deadline
				return r.result()
			default:
			}
			r.unsubscribe()
			return ctx.Err()
		case <-tick.C:
			r.mu.Lock()
			var out []byte
			if r.self.State != done && r.err == nil {
				out = r.encode()
			}
			r.mu.Unlock()
			if err := r.broadcast(out); err != nil {
				r.unsubscribe()
				return err
			}
			pause = min(2*pause, maxTick)
			tick.Reset(pause + rand.N(pause))
		}
	}
}

// subscribe listens on the round's subject and our inbox, and waits until
// the server has both: replies to our first broadcast must not miss us.
func (r *round[T]) subscribe(ctx context.Context) error {
	for _, subj := range []string{r.subject, r.inbox} {
		sub, err := r.nc.Subscribe(subj, r.handle)
		if err != nil {
			r.unsubscribe()
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		r.mu.Lock()
		r.subs = append(r.subs, sub)
		r.mu.Unlock()
	}
	if err := r.nc.FlushWithContext(ctx); err != nil {
		r.unsubscribe()
		return fmt.Errorf("subscribe %s: %w", r.subject, err)
	}
	return nil
}

func (r *round[T]) unsubscribe() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unsubscribeLocked()
}

func (r *round[T]) unsubscribeLocked() {
	for _, s := range r.subs {
		// An error means the connection is closing, which unsubscribes too.
		_ = s.Unsubscribe()
	}
	r.subs = nil
}

// result is the outcome of a finished round. A failed one stops listening,
// and if it found the conflict itself it tells the others, who may have
// missed the culprit's message.
func (r *round[T]) result() error {
	r.mu.Lock()
	err := r.err
	var notice []byte
	if err != nil {
		r.unsubscribeLocked()
		if r.self.Failed != "" {
			notice = r.encode()
		}
	}
	r.mu.Unlock()
	if notice != nil && r.broadcast(notice) == nil {
		_ = r.nc.FlushTimeout(time.Second) // best effort: we fail either way
	}
	return err
}

func (r *round[T]) broadcast(data []byte) error {
	if data == nil {
		return nil
	}
	if err := r.nc.PublishRequest(r.subject, r.inbox, data); err != nil {
		return fmt.Errorf("publish %s: %w", r.subject, err)
	}
	return nil
}

// handle receives one message, broadcast or addressed to our inbox; it runs
// on a subscription's goroutine.
func (r *round[T]) handle(msg *nats.Msg) {
	var e envelope[T]
	if json.Unmarshal(msg.Data, &e) != nil || e.Run != r.self.Run || e.From == r.self.From {
		return // not ours, or our own broadcast
	}
	r.mu.Lock()
	all, one := r.receive(&e, msg.Subject == r.subject)
	r.mu.Unlock()
	// Failed publishes mean the connection is closing; the loop sees it.
	_ = r.broadcast(all)
	if one != nil && msg.Reply != "" {
		_ = r.nc.Publish(msg.Reply, one)
	}
}

// receive records e and returns what to broadcast and what to answer its
// sender alone, either possibly nil. Only broadcasts get answers, so two
// participants never answer each other in a loop.
func (r *round[T]) receive(e *envelope[T], broadcast bool) (all, one []byte) {
	if r.err != nil {
		return nil, nil
	}
	if e.Failed != "" {
		r.failWith(fail(e.Failed, ErrConflict))
		return nil, nil
	}
	prev, known := r.held[e.From]
	switch {
	case known:
		if e.State > prev.State {
			prev.State, prev.Digest = e.State, e.Digest
		}
	case r.self.State == done:
		// Membership is settled; a newcomer only gets our answer below.
	default:
		ok, err := r.admit(r.held, e)
		if err != nil {
			r.self.Failed = err.Error()
			r.failWith(err)
			return nil, nil
		}
		if !ok {
			return nil, nil
		}
		r.held[e.From] = e
		// A newcomer has most likely missed our broadcasts.
		if broadcast {
			one = r.encode()
		}
	}
	if r.self.State != done {
		all = r.advance()
	}
	r.dropWhenAllDone()
	// Whoever is not done may be missing our message; only we can resend it.
	if broadcast && e.State < done && r.self.State == done {
		one = r.encode()
	}
	return all, one
}

// advance moves self forward as far as the held messages allow and returns
// the message announcing it, or nil if nothing changed.
func (r *round[T]) advance() []byte {
	before := r.self.State
	if r.self.State == joining && len(r.held) == r.n {
		r.self.State, r.self.Digest = complete, r.digest()
	}
	if r.self.State == complete && r.allAgree() {
		r.self.State = done
		close(r.finished)
	}
	if r.self.State == before {
		return nil
	}
	return r.encode()
}

// allAgree reports whether every participant is complete with our digest.
// A different digest means someone counts a worker we have not heard of
// (more than n started): we wait for its message, which admit turns into a
// named conflict.
func (r *round[T]) allAgree() bool {
	for _, e := range r.held {
		if e.State < complete || e.Digest != r.self.Digest {
			return false
		}
	}
	return true
}

func (r *round[T]) encode() []byte {
	data, err := json.Marshal(r.self)
	if err != nil {
		panic(fmt.Sprintf("rendezvous: encode %T: %v", r.self, err)) // plain structs always encode
	}
	return data
}

func (r *round[T]) failWith(err error) {
	if r.err == nil && r.self.State != done {
		r.err = err
		close(r.finished)
	}
}

// dropWhenAllDone stops listening once nobody can need our answer any more.
func (r *round[T]) dropWhenAllDone() {
	if r.keep || r.self.State != done {
		return
	}
	for _, e := range r.held {
		if e.State < done {
			return
		}
	}
	r.unsubscribeLocked()
}

// digest names the set of held participants.
func (r *round[T]) digest() string {
	ids := make([]string, 0, len(r.held))
	for id := range r.held {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(sum[:8])
}

// snapshot copies the held messages by participant ID.
func (r *round[T]) snapshot() map[string]envelope[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]envelope[T], len(r.held))
	for id, e := range r.held {
		out[id] = *e
	}
	return out
}
