package servecmd

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
)

// cgroupMemoryFiles hold a container's memory limit (cgroup v2, then v1).
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// setMemoryLimit gives the Go runtime a soft memory limit of 90% of the
// container's limit, unless GOMEMLIMIT says otherwise: the garbage
// collector then works harder near the limit instead of letting garbage
// push the process into the OOM killer under a burst of large requests.
func setMemoryLimit(log logr.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	for _, f := range cgroupMemoryFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		limit, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || limit <= 0 || limit >= 1<<50 { // "max", or v1's "no limit"
			return
		}
		soft := limit / 10 * 9
		debug.SetMemoryLimit(soft)
		log.Info("Go soft memory limit set from the container's limit", "limitBytes", limit, "softLimitBytes", soft)
		return
	}
}
