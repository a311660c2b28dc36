package rendezvous

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOptionsNormalized(t *testing.T) {
	ok := Options{URL: "nats://127.0.0.1:4222", RunID: "job-12_3", WorldSize: 4, Rank: 3, Host: "n1"}
	tests := []struct {
		name string
		edit func(*Options)
		want string // substring of the error; "" for valid
	}{
		{"valid", func(*Options) {}, ""},
		{"arrival rank", func(o *Options) { o.Rank = -1 }, ""},
		{"no URL", func(o *Options) { o.URL = "" }, "empty NATS URL"},
		{"empty run", func(o *Options) { o.RunID = "" }, "run ID"},
		{"dotted run", func(o *Options) { o.RunID = "a.b" }, "run ID"},
		{"wildcard run", func(o *Options) { o.RunID = ">" }, "run ID"},
		{"long run", func(o *Options) { o.RunID = strings.Repeat("a", 65) }, "run ID"},
		{"no world", func(o *Options) { o.WorldSize = 0 }, "world size 0"},
		{"rank too big", func(o *Options) { o.Rank = 4 }, "rank 4 outside world size 4"},
		{"rank negative", func(o *Options) { o.Rank = -2 }, "rank -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			got, err := o.normalized()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.Timeout != DefaultTimeout {
					t.Errorf("Timeout = %s, want the default %s", got.Timeout, DefaultTimeout)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("normalized() = %v, want ErrInvalid with %q", err, tt.want)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{URL: "nats://x", RunID: "r", WorldSize: 1, Timeout: time.Second}.normalized()
	if err != nil {
		t.Fatal(err)
	}
	if o.Host == "" || o.Timeout != time.Second {
		t.Fatalf("normalized() = %+v, want the hostname filled and the timeout kept", o)
	}
}
