package rendezvous

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// natsServerBinary finds a standalone nats-server: on PATH, or where the
// Debian package puts it (CI's PATH may lack /usr/sbin).
func natsServerBinary() (string, bool) {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, true
	}
	const debian = "/usr/sbin/nats-server"
	if _, err := os.Stat(debian); err == nil {
		return debian, true
	}
	return "", false
}

// TestExternalServer joins through a standalone nats-server, as a cluster
// whose NATS is run outside cohort would.
func TestExternalServer(t *testing.T) {
	url, _ := startExternal(t, "--auth", testToken)
	opts := fixed(url, "external", 2)
	checkAgreement(t, mustJoinAll(t, opts), opts)

	bad := worker(url, "external-auth", 1, 0, 0)
	bad.Token = "wrong"
	if _, err := Join(context.Background(), bad); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong token against nats-server: %v, want ErrAuth", err)
	}
}

// startExternal runs a standalone nats-server on a free loopback port with
// extra arguments until the test ends, and returns its URL; it skips the
// test where nats-server is not installed.
func startExternal(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	bin, ok := natsServerBinary()
	if !ok {
		t.Skip("nats-server not installed (Debian/Ubuntu: apt-get install nats-server); skipping the external-server test")
	}
	dir := t.TempDir()
	// -p -1 picks a free port; the ports file tells us which.
	cmd := exec.Command(bin, append([]string{"-a", "127.0.0.1", "-p", "-1", "--ports_file_dir", dir}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return waitPortsFile(t, filepath.Join(dir, filepath.Base(bin)+"_"+strconv.Itoa(cmd.Process.Pid)+".ports")), cmd
}

// waitPortsFile returns the client URL nats-server writes once listening.
func waitPortsFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var ports struct{ Nats []string }
		if data, err := os.ReadFile(path); err == nil && json.Unmarshal(data, &ports) == nil && len(ports.Nats) > 0 {
			return ports.Nats[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nats-server wrote no ports file %s", path)
	return ""
}
