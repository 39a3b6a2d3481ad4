package versioncmd

import (
	"os"
	"regexp"
	"testing"
)

func TestKubernetesLineMatchesGoMod(t *testing.T) {
	data, err := os.ReadFile("../../../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`k8s.io/api v0\.(\d+)\.`).FindSubmatch(data)
	if m == nil || "1."+string(m[1]) != KubernetesLine {
		t.Errorf("go.mod's k8s.io/api is %q, KubernetesLine is %s", m, KubernetesLine)
	}
}
