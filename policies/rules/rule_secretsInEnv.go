package rules

// secretsInEnv: no secret is hard-coded in a manifest. Fields:
// spec.*containers[*].env[*].value, .command[*] and .args[*]. A literal is
// reported when a detector recognises a secret in it by its published
// format (PEM private keys, AWS access key IDs, GitHub, GitLab, Slack and
// Stripe tokens, Google API keys, JWTs, URLs with a password), or when it
// is given to an env var whose name matches one of the policy's patterns
// (PASSWORD, SECRET, TOKEN, API_KEY...) or to a flag named like one
// (--password=..., --token ...): detector secretName. References to values
// kept elsewhere ($(VAR), ${VAR}) and file paths are not secrets. The value
// itself never appears in a finding, a log line or a report: only the
// detector's name and the field. Default action warn. No fix.

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
	Register(Definition{
		Reads: podspec.Fields{"*containers.env", "*containers.command", "*containers.args"},
		ID:    "secretsInEnv", Order: 200, Action: v1alpha1.ActionWarn,
		Checklist: ItemSecrets,
		Doc: `No secret is hard-coded in env values, command or args. Detectors find
one by its value (pemPrivateKey, awsAccessKeyID, githubToken, gitlabToken,
slackToken, stripeLiveKey, googleAPIKey, jwt, urlPassword) or by its name
(secretName: any literal given to an env var matching namePatterns, or to a
flag such as --password). Put secrets in a Secret (valueFrom.secretKeyRef).`, CIS: []string{"5.4.1"},
		Params: func() v1alpha1.RuleParams { return &SecretsInEnvParams{} },
		New:    newSecretsInEnv,
		Native: nativeSecretsInEnv,
	})
}

// The cache of env var names' verdicts is bounded in entries and in
// bytes: names longer than secretNameCacheKeyMax (no real env var name
// comes near it) are matched each time, never kept, so a request cannot
// make podguard hold what it sent (a unique 1 MB name per review grew the
// webhook by 1 MB a review, for good). At most 4096 × 128 bytes of keys.
// The policy's patterns are case-insensitive regular expressions, about
// 270 ns a byte: only the first secretNameScanMax bytes of a name are
// read, or a name of a megabyte would cost a quarter of a second of CPU
// per request.
const (
	secretNameCacheSize   = 4096
	secretNameCacheKeyMax = 128
	secretNameScanMax     = 1024
)

func newSecretsInEnv(p *v1alpha1.Policy) Rule {
	cfg := params[*SecretsInEnvParams](p, "secretsInEnv")
	enabled := map[string]bool{}
	for _, d := range cfg.Detectors {
		enabled[d] = true
	}
	// One alternation matches in one pass, however many patterns there are.
	var alts []string
	for _, s := range cfg.NamePatterns {
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
		m := combined.MatchString(name[:min(len(name), secretNameScanMax)])
		if len(name) <= secretNameCacheKeyMax && size.Load() < secretNameCacheSize {
			size.Add(1)
			seen.Store(name, m)
		}
		return m
	}
	return Rule{
		ID:      "secretsInEnv",
		Summary: "no literal secrets in env, command or args; env vars that look secret take their value from a Secret",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			for _, c := range t.Containers {
				for j, e := range c.Env {
					if e.Value == "" {
						continue
					}
					envPath := c.Path().Child("env").Index(j)
					var msg string
					if d, found := detect(e.Value, enabled); found {
						msg = fmt.Sprintf("container %q sets env var %s to a literal that looks like %s (detector %s)", c.Name, e.Name, d.what, d.name)
					} else if enabled[secretNameDetector] && looksSecret(e.Name) && literalSecret(e.Value) {
						msg = fmt.Sprintf("container %q sets env var %s, whose name looks secret, to a literal value (detector %s)", c.Name, e.Name, secretNameDetector)
					} else {
						continue
					}
					out = append(out, Finding{Type: field.ErrorTypeForbidden, Field: envPath.Child("value").String(), Message: msg,
						Fix: fmt.Sprintf("store it in a Secret and set %s.valueFrom.secretKeyRef instead of value", envPath)})
				}
				for _, list := range []struct {
					name string
					args []string
				}{{"command", c.Command}, {"args", c.Args}} {
					for _, a := range argSecrets(list.args, enabled) {
						p := c.Path().Child(list.name).Index(a.index)
						var msg string
						if a.flag != "" {
							msg = fmt.Sprintf("container %q passes %s to --%s in %s[%d] (detector %s)", c.Name, a.detector.what, a.flag, list.name, a.index, a.detector.name)
						} else {
							msg = fmt.Sprintf("container %q has %s in %s[%d] (detector %s)", c.Name, a.detector.what, list.name, a.index, a.detector.name)
						}
						out = append(out, Finding{Type: field.ErrorTypeForbidden, Field: p.String(), Message: msg,
							Fix: fmt.Sprintf("store it in a Secret, set an env var from valueFrom.secretKeyRef, and write $(THAT_VAR) in %s", p)})
					}
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
	// Detectors are the detectors in use: secretName (the name patterns
	// above, and flags named like --password), pemPrivateKey,
	// awsAccessKeyID, githubToken, gitlabToken, slackToken, stripeLiveKey,
	// googleAPIKey, jwt, urlPassword. Default: all.
	Detectors []string `json:"detectors,omitempty"`
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

// Default sets the name patterns and turns every detector on when left out.
func (s *SecretsInEnvParams) Default() {
	if len(s.NamePatterns) == 0 {
		s.NamePatterns = slices.Clone(DefaultSecretNamePatterns)
	}
	if s.Detectors == nil {
		s.Detectors = DetectorNames()
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
	seen := map[string]bool{}
	for i, d := range s.Detectors {
		switch {
		case !slices.Contains(DetectorNames(), d):
			errs = append(errs, field.NotSupported(path.Child("detectors").Index(i), d, DetectorNames()))
		case seen[d]:
			errs = append(errs, field.Duplicate(path.Child("detectors").Index(i), d))
		}
		seen[d] = true
	}
	return errs
}

func nativeSecretsInEnv(*v1alpha1.Policy, NativeMode) Native {
	return Native{WebhookOnly: "its detectors decode JWT headers (base64url, then JSON), parse URLs and command-line flags, and match a policy's own regular expressions against every env var name: CEL cannot do all of that faithfully"}
}
