package checkpoint

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cohort/engine/tensor"
)

const (
	crashDirEnv  = "COHORT_CHECKPOINT_CRASH_DIR"
	crashFileEnv = "COHORT_CHECKPOINT_CRASH_FILE" // which file stalls: 0 tensors, 1 record
)

// TestCrashChild is the process TestKilledMidWrite kills: run with
// crashDirEnv set, it saves checkpoint 2 in that folder and stalls halfway
// through one file, after telling the parent on fd 3 that it got there.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestKilledMidWrite")
	}
	// Stall 4 MiB into the tensors file, or 50 bytes into the record.
	stallFile, stallAt := 0, 4<<20
	if os.Getenv(crashFileEnv) == "1" {
		stallFile, stallAt = 1, 50
	}
	ready := os.NewFile(3, "ready")
	files := 0
	wrap := func(w io.Writer) io.Writer {
		files++
		if files-1 != stallFile {
			return w
		}
		return &stallingWriter{w: w, left: stallAt, ready: ready}
	}
	big := tensor.New(1<<20, 3) // 12 MiB, so the stall lands mid-file
	if _, err := save(dir, sampleMeta(2, 0), map[string]*tensor.Tensor{"model.big": big}, wrap); err != nil {
		t.Fatal(err)
	}
	t.Fatal("save finished; the parent should have killed this process")
}

// stallingWriter passes left bytes through (a part of p at most), then
// signals ready and blocks until the process is killed.
type stallingWriter struct {
	w     io.Writer
	left  int
	ready *os.File
}

func (s *stallingWriter) Write(p []byte) (int, error) {
	if len(p) <= s.left {
		s.left -= len(p)
		return s.w.Write(p)
	}
	if _, err := s.w.Write(p[:s.left]); err != nil {
		return 0, err
	}
	s.ready.Write([]byte{1})
	time.Sleep(time.Hour)
	return 0, io.ErrShortWrite
}

// A trainer SIGKILLed while saving (OOM killer, preemption without grace)
// must leave the previous checkpoint as the one to resume from, and only
// debris that Prune clears.
func TestKilledMidWrite(t *testing.T) {
	tests := []struct {
		name       string
		stallFile  string
		wantDebris int // temp files left by the kill
		wantOrphan bool
	}{
		{"while writing tensors", "0", 1, false},
		{"while writing the record", "1", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustSave(t, dir, 1, 0, 1)
			killChildMidSave(t, dir, tt.stallFile)

			ck, skipped, err := Latest(dir)
			if err != nil || len(skipped) > 0 || ck.Meta.PhaseIndex != 1 {
				t.Fatalf("after the kill Latest = %v, %v, %v; want checkpoint 1", ck, skipped, err)
			}
			assertTensorsEqual(t, ck.Tensors, sampleTensors(1))
			if n := countTemps(t, dir); n != tt.wantDebris {
				t.Fatalf("%d temp files after the kill, want %d: %v", n, tt.wantDebris, listDir(t, dir))
			}
			orphan := filepath.Join(dir, "checkpoint-000002.safetensors")
			if _, err := os.Stat(orphan); (err == nil) != tt.wantOrphan {
				t.Fatalf("orphan %s exists: %v, want %v", orphan, err == nil, tt.wantOrphan)
			}

			if err := Prune(dir, 3); err != nil {
				t.Fatal(err)
			}
			if n := countTemps(t, dir); n != 0 {
				t.Fatalf("Prune left temp files: %v", listDir(t, dir))
			}
			// A .safetensors newer than every record may be a save about to
			// commit, so it stays until a later commit shows it abandoned.
			if _, err := os.Stat(orphan); (err == nil) != tt.wantOrphan {
				t.Fatalf("after Prune orphan exists: %v, want %v", err == nil, tt.wantOrphan)
			}
			mustSave(t, dir, 3, 0, 3)
			// The coarse file clock could give the orphan and the new record
			// the same mtime; age the orphan as the real gap between saves would.
			if tt.wantOrphan {
				old := time.Now().Add(-time.Minute)
				if err := os.Chtimes(orphan, old, old); err != nil {
					t.Fatal(err)
				}
			}
			if err := Prune(dir, 3); err != nil {
				t.Fatal(err)
			}
			want := []string{"checkpoint-000001.json", "checkpoint-000001.safetensors", "checkpoint-000003.json", "checkpoint-000003.safetensors"}
			if got := listDir(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("folder holds %v, want %v", got, want)
			}
		})
	}
}

// killChildMidSave runs TestCrashChild in a child process and SIGKILLs it
// once it reports being in the middle of the save.
func killChildMidSave(t *testing.T, dir, stallFile string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashFileEnv+"="+stallFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close() // the child holds the only write end: EOF means it exited
	if _, err := r.Read(make([]byte, 1)); err != nil {
		cmd.Wait()
		t.Fatalf("child exited before stalling: %v\n%s", err, out.String())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

func countTemps(t *testing.T, dir string) int {
	n := 0
	for _, name := range listDir(t, dir) {
		if strings.Contains(name, tempMarker) {
			n++
		}
	}
	return n
}
