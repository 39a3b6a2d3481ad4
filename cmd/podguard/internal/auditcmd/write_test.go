package auditcmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteAtomicReplacesOnlyRegularFiles: the baseline is written by
// renaming a temporary file over its path, which would replace a device
// (/dev/null, as root) or a symlink's link instead of its target.
func TestWriteAtomicReplacesOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(regular, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(regular, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "new" {
		t.Errorf("regular file holds %q", b)
	}
	if err := writeAtomic(filepath.Join(dir, "fresh.yaml"), []byte("x")); err != nil {
		t.Errorf("a new file: %v", err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{os.DevNull, link} {
		err := writeAtomic(p, []byte("x"))
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("writeAtomic(%s): %v", p, err)
		}
	}
	if fi, err := os.Lstat(os.DevNull); err != nil || fi.Mode().IsRegular() {
		t.Fatalf("%s is no longer a device: %v %v", os.DevNull, fi, err)
	}
}
