package natsserver

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("Start(%+v): %v", opts, err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func TestTokenAuth(t *testing.T) {
	s := start(t, Options{Token: "s3cret"})
	if !strings.HasPrefix(s.URL(), "nats://127.0.0.1:") || strings.HasSuffix(s.URL(), ":0") {
		t.Fatalf("URL() = %q, want nats://127.0.0.1:<bound port>", s.URL())
	}
	tests := []struct {
		name    string
		opts    []nats.Option
		wantErr error
	}{
		{"right token", []nats.Option{nats.Token("s3cret")}, nil},
		{"wrong token", []nats.Option{nats.Token("nope")}, nats.ErrAuthorization},
		{"no token", nil, nats.ErrAuthorization},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(s.URL(), tt.opts...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Connect: %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer nc.Close()
			sub, err := nc.SubscribeSync("x")
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Publish("x", []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "hi" {
				t.Fatalf("round trip: %v %v", m, err)
			}
		})
	}
}

func TestNoTokenOffLoopback(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "::", "10.1.2.3", "node07"} {
		_, err := Start(Options{Host: host})
		if !errors.Is(err, ErrNoToken) || !strings.Contains(err.Error(), "COHORT_JOB_TOKEN") {
			t.Errorf("Start(Host %q, no token) = %v, want ErrNoToken naming COHORT_JOB_TOKEN", host, err)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	tests := map[string]bool{
		"127.0.0.1": true, "127.0.0.2": true, "localhost": true, "::1": true,
		"0.0.0.0": false, "::": false, "192.168.1.4": false, "node07": false,
	}
	for host, want := range tests {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = Start(Options{Port: port})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:") {
		t.Fatalf("Start on a busy port = %v, want an error naming the address", err)
	}
}

func TestShutdownReleasesPort(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL(), "nats://"))
	s.Shutdown()
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("port %s still held after Shutdown: %v", port, err)
	}
	l.Close()
}

func TestDebugStarts(t *testing.T) {
	// Debug installs a writing logger; startup must not depend on quietness.
	start(t, Options{Debug: true})
}

func TestLogger(t *testing.T) {
	var buf strings.Builder
	loud, quiet := newLogger(&buf), newLogger(nil)
	for _, l := range []*logger{loud, quiet} {
		l.Noticef("listening on %d", 4222)
		l.Fatalf("listen: %s", "in use")
		l.Fatalf("second")
		select {
		case err := <-l.fatal:
			if err.Error() != "listen: in use" {
				t.Errorf("first fatal = %q", err)
			}
		default:
			t.Error("Fatalf did not report an error")
		}
	}
	if !strings.Contains(buf.String(), "[INF] listening on 4222") || !strings.Contains(buf.String(), "[FTL] second") {
		t.Errorf("debug log = %q", buf.String())
	}
}
