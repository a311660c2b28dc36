package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Two real nodes: network namespaces joined by veth, 2 launchers × 2 ranks,
// must train to the weights of 4 ranks on one node (scripts/two-node-netns.sh).
func TestTwoNodesInNetworkNamespaces(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for ip netns")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	cmd := exec.Command("../../scripts/two-node-netns.sh", cfg, "num_epochs=2", "model.dropout=0")
	cmd.Env = append(os.Environ(), "COHORT_TEST_MAIN=1", "COHORT_BIN="+os.Args[0])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "data plane: 10.77.0.1:") || !strings.Contains(string(out), "10.77.0.2:") {
		t.Fatalf("data plane did not cross the veth:\n%s", out)
	}
	t.Log(string(out[strings.LastIndex(string(out), "final weights"):]))
}
