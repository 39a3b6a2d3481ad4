package testenv

import "testing"

// TestFreePortNeverRepeats: the kernel hands a closed port out again
// soon (dozens of repeats in a thousand listens on 0); FreePort must not,
// or two servers of one test are given the same port.
func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 1000 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d returned twice", p)
		}
		seen[p] = true
	}
}
