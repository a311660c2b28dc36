package rendezvous

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// exchangeAll runs Exchange on every member at once.
func exchangeAll(ms []*Member, key string, value func(rank int) []byte) ([][][]byte, []error) {
	got, errs := make([][][]byte, len(ms)), make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() { got[i], errs[i] = m.Exchange(context.Background(), key, value(m.Rank())) })
	}
	wg.Wait()
	return got, errs
}

func TestExchange(t *testing.T) {
	url := startServer(t)
	ms := mustJoinAll(t, fixed(url, "xchg", 4))
	values := []func(rank int) []byte{
		func(r int) []byte { return []byte(fmt.Sprintf("nccl-id-of-%d", r)) },
		// The same key again: the earlier round must not leak into this one.
		func(r int) []byte { return bytes.Repeat([]byte{byte(r)}, MaxExchange) },
		func(int) []byte { return nil },
	}
	for round, value := range values {
		got, errs := exchangeAll(ms, "nccl", value)
		for i := range ms {
			if errs[i] != nil {
				t.Fatalf("round %d, member %d: %v", round, i, errs[i])
			}
			for r, v := range got[i] {
				if !bytes.Equal(v, value(r)) {
					t.Fatalf("round %d, member %d: value of rank %d = %.20q…, want %.20q…", round, i, r, v, value(r))
				}
			}
		}
	}
}

func TestExchangeInvalid(t *testing.T) {
	url := startServer(t)
	m := mustJoinAll(t, fixed(url, "xbad", 1))[0]
	tests := []struct {
		name, key string
		size      int
	}{
		{"too large", "id", MaxExchange + 1},
		{"empty key", "", 1},
		{"dotted key", "a.b", 1},
		{"wildcard key", "*", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Exchange(context.Background(), tt.key, make([]byte, tt.size)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Exchange(%q, %d bytes) = %v, want ErrInvalid", tt.key, tt.size, err)
			}
		})
	}
}

func TestExchangeTimeoutNamesMissing(t *testing.T) {
	url := startServer(t)
	ms := mustJoinAll(t, fixed(url, "xlate", 3))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { _, errs[i] = ms[i].Exchange(ctx, "addr", []byte("x")) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "2/3 values") ||
			!strings.Contains(err.Error(), "missing 2@node2 pid ") {
			t.Fatalf("member %d: %v, want ErrTimeout naming rank 2", i, err)
		}
	}
}
