package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"cohort/dist/natsserver"
)

func TestDoctorReportsEachProblem(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Options{Token: "doctor-token-0123456"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, token string
		args        []string
		code        int
		want        string
	}{
		{"all good", "doctor-token-0123456", []string{"--rdzv-endpoint", srv.URL()}, 0, "token accepted"},
		{"wrong token", "wrong-token-xxxxxxx", []string{"--rdzv-endpoint", srv.URL()}, ExitUsage, "rejected the token"},
		{"unreachable", "", []string{"--rdzv-endpoint", fmt.Sprintf("nats://127.0.0.1:%d", freePort(t)), "--timeout", "300ms"}, ExitUsage, "unreachable"},
		{"missing dataset", "", []string{"-c", "../../configs/mnist_mlp.yaml", "--data-root", filepath.Join(dir, "nothing")}, ExitUsage, "make data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("COHORT_JOB_TOKEN", tc.token)
			code, out, stderr := cohort(append([]string{"doctor", "--env", "none"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", code, tc.code, tc.want, out, stderr)
			}
			if !strings.Contains(out, "data plane") || !strings.Contains(out, "gpu") {
				t.Fatalf("report lacks checks:\n%s", out)
			}
		})
	}
}

func TestPlotRedrawsARun(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "metrics.jsonl", `{"phase":"train","epoch":1,"loss":1.0,"accuracy":0.5,"samples_per_s":100}
{"phase":"test","epoch":1,"loss":0.9,"accuracy":0.6}
{"phase":"train","epoch":2,"loss":0.5,"accuracy":0.8,"samples_per_s":120}
{"phase":"te`)
	code, out, stderr := cohort("plot", dir)
	if code != 0 || !strings.Contains(out, "loss.png") {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	if code, _, _ := cohort("plot", t.TempDir()); code != ExitUsage {
		t.Fatalf("plot of an empty folder: exit %d", code)
	}
}
