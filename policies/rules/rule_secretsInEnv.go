package rules

// secretsInEnv: no secret is hard-coded in a manifest. An env var whose name
// matches one of the policy's patterns (PASSWORD, SECRET, TOKEN, API_KEY...)
// must take its value from a Secret, not from a literal. Field:
// spec.*containers[*].env[*].value. The value itself never appears in a
// finding, a log line or a report. Default action warn. No fix.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	register(Definition{
		ID: "secretsInEnv", Order: 200, Action: v1alpha1.ActionWarn,
		Doc: `Env vars whose names match one of these regular expressions take their
value from a Secret (valueFrom.secretKeyRef), never from a literal value.`,
		CIS:    []string{"5.4.1"},
		Params: func() v1alpha1.RuleParams { return &SecretsInEnvParams{} },
		New:    newSecretsInEnv,
	})
}

const secretNameCacheSize = 4096

func newSecretsInEnv(p *v1alpha1.Policy) Rule {
	// One alternation matches in one pass, however many patterns there are.
	var alts []string
	for _, s := range params[*SecretsInEnvParams](p, "secretsInEnv").NamePatterns {
		alts = append(alts, "(?:"+s+")")
	}
	// The policy was validated, so every pattern compiles; an empty list
	// matches nothing.
	combined, err := regexp.Compile(strings.Join(alts, "|"))
	if err != nil || len(alts) == 0 {
		combined = regexp.MustCompile(`$^`)
	}
	// Env var names repeat across requests (LOG_LEVEL, POD_NAME...): remember
	// verdicts, up to a bound so that arbitrary names cannot grow memory.
	var seen sync.Map
	var size atomic.Int32
	looksSecret := func(name string) bool {
		if v, ok := seen.Load(name); ok {
			return v.(bool)
		}
		m := combined.MatchString(name)
		if size.Load() < secretNameCacheSize {
			size.Add(1)
			seen.Store(name, m)
		}
		return m
	}
	return Rule{
		ID:      "secretsInEnv",
		Summary: "env vars that look secret take their value from a Secret",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			for _, c := range t.Containers {
				for j, e := range c.Env {
					if e.Value == "" || !looksSecret(e.Name) {
						continue
					}
					envPath := c.Path().Child("env").Index(j)
					out = append(out, Finding{Type: field.ErrorTypeForbidden, Path: envPath.Child("value"),
						Message: fmt.Sprintf("container %q sets env var %s to a literal value in the manifest", c.Name, e.Name),
						Fix:     fmt.Sprintf("store it in a Secret and set %s.valueFrom.secretKeyRef instead of value", envPath)})
				}
			}
			return out
		},
	}
}

// SecretsInEnvParams are the secretsInEnv rule's parameters.
type SecretsInEnvParams struct {
	// NamePatterns are regular expressions (RE2); an env var whose name
	// matches one must not carry a literal value.
	NamePatterns []string `json:"namePatterns,omitempty"`
}

// DefaultSecretNamePatterns match env var names that look like they hold a secret.
var DefaultSecretNamePatterns = []string{
	`(?i)passw(or)?d`,
	`(?i)secret`,
	`(?i)token`,
	`(?i)api_?key`,
	`(?i)private_?key`,
	`(?i)access_?key`,
	`(?i)credential`,
}

// Default sets the name patterns when left out.
func (s *SecretsInEnvParams) Default() {
	if len(s.NamePatterns) == 0 {
		s.NamePatterns = slices.Clone(DefaultSecretNamePatterns)
	}
}

// Validate checks that every pattern compiles.
func (s *SecretsInEnvParams) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, pat := range s.NamePatterns {
		if _, err := regexp.Compile(pat); err != nil {
			errs = append(errs, field.Invalid(path.Child("namePatterns").Index(i), pat, "not a valid regular expression: "+err.Error()))
		}
	}
	return errs
}
