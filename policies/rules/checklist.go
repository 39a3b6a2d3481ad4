package rules

// ChecklistItem is an item of the hardened Docker setup's checklist, as
// Kubernetes can prove it: a rule names the item it proves
// (Definition.Checklist), and the audit's checklist lists the items of the
// registered rules, in Order.
type ChecklistItem struct {
	// ID is the item's stable name in reports.
	ID string
	// Title is the item for people.
	Title string
	// Order places it in the checklist.
	Order int
}

// The checklist items of podguard's rules. A rule for something new names
// an item of its own, declared beside it in its file.
var (
	ItemNonRoot             = ChecklistItem{ID: "nonRoot", Title: "Run as the non-root user and group (the image's appuser)", Order: 10}
	ItemCapabilities        = ChecklistItem{ID: "capabilities", Title: "All capabilities dropped", Order: 20}
	ItemPrivilegeEscalation = ChecklistItem{ID: "privilegeEscalation", Title: "No privileged containers, no privilege escalation (no-new-privileges)", Order: 30}
	ItemLimits              = ChecklistItem{ID: "limits", Title: "CPU and memory limits", Order: 40}
	ItemReadOnlyRoot        = ChecklistItem{ID: "readOnlyRoot", Title: "Read-only root filesystem", Order: 50}
	ItemHostAccess          = ChecklistItem{ID: "hostAccess", Title: "No host paths, host namespaces, host ports or host processes", Order: 60}
	ItemKernelHardening     = ChecklistItem{ID: "kernelHardening", Title: "seccomp, AppArmor and SELinux profiles; safe sysctls; /proc masked", Order: 70}
	ItemProbes              = ChecklistItem{ID: "probes", Title: "Health checks (liveness and readiness probes)", Order: 80}
	ItemSecrets             = ChecklistItem{ID: "secrets", Title: "No literal secrets in env, command or args", Order: 90}
	ItemImages              = ChecklistItem{ID: "images", Title: "Pinned images", Order: 100}
	ItemTokens              = ChecklistItem{ID: "tokens", Title: "No service account token where the API is not used", Order: 110}
)

// Checklist returns the items the registered rules prove, in Order.
func Checklist() []ChecklistItem {
	seen := map[string]bool{}
	var out []ChecklistItem
	for _, d := range Definitions() {
		if !seen[d.Checklist.ID] {
			seen[d.Checklist.ID] = true
			out = append(out, d.Checklist)
		}
	}
	sortItems(out)
	return out
}

func sortItems(items []ChecklistItem) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].Order < items[j-1].Order; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}
