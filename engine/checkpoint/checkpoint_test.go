package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "folder") // Save creates it
	meta := sampleMeta(3, 120)
	path, err := Save(dir, meta, sampleTensors(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "checkpoint-000003-step120.json"); path != want {
		t.Fatalf("path %s, want %s", path, want)
	}
	if got, want := listDir(t, dir), []string{"checkpoint-000003-step120.json", "checkpoint-000003-step120.safetensors"}; !slices.Equal(got, want) {
		t.Fatalf("folder holds %v, want %v", got, want)
	}
	data, err := os.ReadFile(filepath.Join(dir, "checkpoint-000003-step120.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	for _, p := range []string{path, strings.TrimSuffix(path, ".json") + ".safetensors"} {
		ck, err := Load(p)
		if err != nil {
			t.Fatalf("Load(%s): %v", p, err)
		}
		if ck.Path != path {
			t.Errorf("Path %s, want %s", ck.Path, path)
		}
		want := meta
		want.Format = FormatVersion
		want.TensorsFile = "checkpoint-000003-step120.safetensors"
		want.SHA256 = hex.EncodeToString(sum[:])
		want.Size = int64(len(data))
		want.CreatedAt = ck.Meta.CreatedAt
		// The record is indented for people, raw JSON values with it.
		got := ck.Meta
		got.Config = compact(t, got.Config)
		got.HookState["progress"] = compact(t, got.HookState["progress"])
		if !reflect.DeepEqual(got, want) {
			t.Errorf("meta\n%+v\nwant\n%+v", got, want)
		}
		if time.Since(ck.Meta.CreatedAt) > time.Hour || ck.Meta.CreatedAt.After(time.Now()) {
			t.Errorf("CreatedAt %v is not the save time", ck.Meta.CreatedAt)
		}
		assertTensorsEqual(t, ck.Tensors, sampleTensors(1))
	}
	_, st, err := ReadSafetensors(strings.NewReader(string(data)), int64(len(data)))
	if err != nil || st["producer"] != "cohort" || st["format"] != "pt" {
		t.Errorf("safetensors metadata %v (err %v), want format=pt producer=cohort", st, err)
	}
}

func TestSaveReplacesSameName(t *testing.T) {
	dir := t.TempDir()
	mustSave(t, dir, 2, 0, 1)
	path := mustSave(t, dir, 2, 0, 5)
	ck, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	assertTensorsEqual(t, ck.Tensors, sampleTensors(5))
}

func TestLoadDetectsCorruption(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, tensorsPath, metaPath string)
		wantErr error
		want    string
	}{
		{"flipped data byte", func(t *testing.T, p, _ string) { flipByte(t, p, -1) }, ErrCorrupt, "checksum mismatch: expected "},
		{"flipped header byte", func(t *testing.T, p, _ string) { flipByte(t, p, 20) }, ErrCorrupt, "checksum mismatch: expected "},
		{"truncated by one byte", func(t *testing.T, p, _ string) { truncate(t, p, -1) }, ErrCorrupt, "size mismatch: expected "},
		{"truncated to zero", func(t *testing.T, p, _ string) { truncate(t, p, math.MinInt32) }, ErrCorrupt, "size mismatch"},
		{"tensors file missing", func(t *testing.T, p, _ string) { remove(t, p) }, ErrCorrupt, "tensors file missing"},
		{"record truncated", func(t *testing.T, _, m string) { truncate(t, m, -40) }, ErrCorrupt, "metadata"},
		{"record from another phase", func(t *testing.T, _, m string) { editRecord(t, m, `"phase_index": 4`, `"phase_index": 5`) }, ErrCorrupt, "records phase 5 step 0, its name says phase 4"},
		{"record points elsewhere", func(t *testing.T, _, m string) { editRecord(t, m, `"tensors_file": "`, `"tensors_file": "../`) }, ErrCorrupt, "is not a file name"},
		{"newer format", func(t *testing.T, _, m string) { editRecord(t, m, `"format": 1`, `"format": 2`) }, ErrFormat, "format 2, this build reads up to 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			metaPath := mustSave(t, dir, 4, 0, 1)
			tensorsPath := filepath.Join(dir, "checkpoint-000004.safetensors")
			tt.damage(t, tensorsPath, metaPath)
			_, err := Load(metaPath)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.want)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestLoadNotFound(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "checkpoint-000001.safetensors"))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
	if _, err := Load(filepath.Join(dir, "model.pt")); err == nil || !strings.Contains(err.Error(), "not a checkpoint file name") {
		t.Errorf("err = %v, want a bad-name error", err)
	}
}

func TestLatest(t *testing.T) {
	dir := t.TempDir()
	// Saved out of order: Latest orders by position, not by time.
	for _, p := range []position{{2, 50}, {10, 0}, {1, 0}, {2, 0}} {
		mustSave(t, dir, p.phase, p.step, float32(p.phase*100+p.step))
	}
	if err := os.WriteFile(filepath.Join(dir, "checkpoint-11.json"), []byte("not canonical"), 0o644); err != nil {
		t.Fatal(err)
	}
	ck, skipped, err := Latest(dir)
	if err != nil || len(skipped) != 0 {
		t.Fatalf("Latest: %v, skipped %v", err, skipped)
	}
	if ck.Meta.PhaseIndex != 10 {
		t.Fatalf("Latest is phase %d, want 10", ck.Meta.PhaseIndex)
	}

	// The newest two broken in different ways: Latest falls back to (2, 50)
	// and says why it passed over each.
	flipByte(t, filepath.Join(dir, "checkpoint-000010.safetensors"), -2)
	mustSave(t, dir, 3, 7, 1)
	truncate(t, filepath.Join(dir, "checkpoint-000003-step7.safetensors"), -100)
	ck, skipped, err = Latest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := (position{ck.Meta.PhaseIndex, ck.Meta.StepInPhase}); got != (position{2, 50}) {
		t.Fatalf("Latest is %+v, want phase 2 step 50", got)
	}
	assertTensorsEqual(t, ck.Tensors, sampleTensors(250))
	if len(skipped) != 2 {
		t.Fatalf("skipped %v, want 2", skipped)
	}
	for i, want := range []string{"checkpoint-000010.safetensors: checkpoint: corrupt: checksum mismatch", "checkpoint-000003-step7.safetensors: checkpoint: corrupt: size mismatch"} {
		if !errors.Is(skipped[i], ErrCorrupt) || !strings.Contains(skipped[i].Error(), want) {
			t.Errorf("skipped[%d] = %v, want ErrCorrupt containing %q", i, skipped[i], want)
		}
	}
}

func TestLatestNotFound(t *testing.T) {
	empty := t.TempDir()
	broken := t.TempDir()
	mustSave(t, broken, 1, 0, 1)
	flipByte(t, filepath.Join(broken, "checkpoint-000001.safetensors"), -1)
	tests := []struct {
		name        string
		dir         string
		wantSkipped int
	}{
		{"no folder", filepath.Join(empty, "missing"), 0},
		{"empty folder", empty, 0},
		{"only corrupt", broken, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ck, skipped, err := Latest(tt.dir)
			if !errors.Is(err, ErrNotFound) || ck != nil || len(skipped) != tt.wantSkipped {
				t.Fatalf("Latest = %v, %v, %v; want ErrNotFound with %d skipped", ck, skipped, err, tt.wantSkipped)
			}
		})
	}
}

func TestSaveErrors(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	nanMeta := sampleMeta(2, 0)
	nanMeta.Meters = map[string]float64{"loss": math.NaN()}
	tests := []struct {
		name     string
		dir      string // "" means a fresh folder holding checkpoint 1
		meta     Meta
		wrap     func(io.Writer) io.Writer
		rootless bool // permission bits do not stop root
		wantErr  error
		want     string
	}{
		{name: "folder is a file", dir: notDir, wantErr: syscall.ENOTDIR, want: "checkpoint folder " + notDir + " is not a directory"},
		{name: "parent is a file", dir: filepath.Join(notDir, "sub"), wantErr: syscall.ENOTDIR, want: "is not a directory"},
		{name: "read-only folder", rootless: true, wantErr: os.ErrPermission, want: "is not writable"},
		{name: "disk full in tensors", wrap: failAfter(100, 0, syscall.ENOSPC), wantErr: syscall.ENOSPC, want: "is out of space"},
		{name: "permission lost before the record", wrap: failAfter(10, 1, syscall.EACCES), wantErr: syscall.EACCES, want: "is not writable"},
		{name: "unencodable meter", meta: nanMeta, want: "unsupported value: NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir
			if dir == "" {
				dir = t.TempDir()
				mustSave(t, dir, 1, 0, 1)
			}
			if tt.rootless {
				if os.Geteuid() == 0 {
					t.Skip("running as root, which ignores permission bits; the injected EACCES case covers the message")
				}
				if err := os.Chmod(dir, 0o500); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(dir, 0o700) })
			}
			meta := tt.meta
			if meta.Version == "" {
				meta = sampleMeta(2, 0)
			}
			_, err := save(dir, meta, sampleTensors(2), tt.wrap)
			if err == nil || !strings.Contains(err.Error(), tt.want) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.want)
			}
			if tt.dir != "" {
				return
			}
			assertNoDebris(t, dir, "checkpoint-000002")
			if ck, skipped, err := Latest(dir); err != nil || len(skipped) > 0 || ck.Meta.PhaseIndex != 1 {
				t.Errorf("after the failed save Latest = %v, %v, %v; want checkpoint 1", ck, skipped, err)
			}
		})
	}
}

// failAfter returns a wrap whose file number skip (0 = tensors, 1 = the
// record) fails with err once n bytes have gone through.
func failAfter(n int, skip int, err error) func(io.Writer) io.Writer {
	files := 0
	return func(w io.Writer) io.Writer {
		files++
		if files-1 != skip {
			return w
		}
		return &failingWriter{w: w, left: n, err: err}
	}
}

type failingWriter struct {
	w    io.Writer
	left int
	err  error
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		n, _ := f.w.Write(p[:f.left])
		f.left = 0
		return n, f.err
	}
	f.left -= len(p)
	return f.w.Write(p)
}

func compact(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at += int64(len(data))
	}
	data[at] ^= 0x10
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// truncate shortens path by -by bytes (to zero at most).
func truncate(t *testing.T, path string, by int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, max(0, st.Size()+by)); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func editRecord(t *testing.T, path, old, replacement string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q:\n%s", path, old, data)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, replacement, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}
