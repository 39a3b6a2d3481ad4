// Package release_test checks what make release builds.
package release_test

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"podguard.dev/podguard/hack/testenv"
)

// TestRelease runs the release script for a test version and checks each
// artefact: static binaries for each platform with the version stamped,
// SBOMs naming the modules, the chart with the matching appVersion, and
// checksums that verify.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles three binaries")
	}
	dist := t.TempDir()
	cmd := exec.Command(filepath.Join(testenv.Root(), "hack", "release", "release.sh"))
	cmd.Env = append(os.Environ(), "VERSION=v9.8.7-test.1", "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, _ := strings.Cut(line, "  ")
		data, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: checksum does not verify", name)
		}
		listed[name] = true
	}
	for _, target := range []string{"linux_amd64", "linux_arm64", "darwin_arm64"} {
		bin := "podguard_v9.8.7-test.1_" + target
		if !listed[bin] || !listed[bin+".cdx.json"] {
			t.Errorf("%s or its SBOM missing from SHA256SUMS: %v", bin, listed)
		}
		path := filepath.Join(dist, bin)
		if strings.HasPrefix(target, "linux") {
			f, err := elf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s is dynamically linked", bin)
				}
			}
			want := map[string]elf.Machine{"linux_amd64": elf.EM_X86_64, "linux_arm64": elf.EM_AARCH64}[target]
			if f.Machine != want {
				t.Errorf("%s is for %v", bin, f.Machine)
			}
			f.Close()
		} else {
			f, err := macho.Open(path)
			if err != nil || f.Cpu != macho.CpuArm64 {
				t.Errorf("%s is not a darwin/arm64 binary: %v", bin, err)
			} else {
				f.Close()
			}
		}
		var sbom struct {
			BOMFormat, SpecVersion string
			Metadata               struct {
				Component struct{ Name, Version string }
			}
			Components []struct{ Name, Version string }
		}
		raw, err := os.ReadFile(path + ".cdx.json")
		if err != nil || json.Unmarshal(raw, &sbom) != nil {
			t.Fatalf("%s.cdx.json: %v", bin, err)
		}
		names := ""
		for _, c := range sbom.Components {
			names += c.Name + "@" + c.Version + " "
		}
		if sbom.BOMFormat != "CycloneDX" || !strings.Contains(names, "k8s.io/api@v0.37") || !strings.Contains(names, "sigs.k8s.io/controller-runtime@v0.25") {
			t.Errorf("%s SBOM: format %q, components %s", bin, sbom.BOMFormat, names)
		}
	}
	out, err := exec.Command(filepath.Join(dist, "podguard_v9.8.7-test.1_linux_amd64"), "version", "-o", "json").Output()
	if err != nil || !strings.Contains(string(out), `"version": "v9.8.7-test.1"`) && !strings.Contains(string(out), `"version":"v9.8.7-test.1"`) {
		t.Errorf("version of the release binary: %v %s", err, out)
	}
	if !listed["podguard-9.8.7-test.1.tgz"] {
		t.Fatalf("no chart package: %v", listed)
	}
	f, err := os.Open(filepath.Join(dist, "podguard-9.8.7-test.1.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Name == "podguard/Chart.yaml" {
			b, _ := io.ReadAll(tr)
			found = strings.Contains(string(b), "appVersion: v9.8.7-test.1") && strings.Contains(string(b), "version: 9.8.7-test.1")
			if !found {
				t.Errorf("Chart.yaml of the package:\n%s", b)
			}
		}
	}
	if !found {
		t.Error("the chart package has no matching Chart.yaml")
	}
}
