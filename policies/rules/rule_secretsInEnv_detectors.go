package rules

// The secretsInEnv rule's detectors: each recognises a hard-coded secret by
// a published, stable format of its value, or (secretName) by the name it
// is given. They report which detector fired; never the value or a piece
// of it.

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
)

// detector recognises one kind of secret in a literal value.
type detector struct {
	// name is the detector's ID in the policy (secretsInEnv.detectors).
	name string
	// what names the secret for people: "a PEM private key".
	what string
	// quick is a cheap test that must hold for match to be tried.
	quick string
	// match reports whether the value holds such a secret.
	match func(v string) bool
}

// secretNameDetector flags any non-empty literal given to an env var or a
// command-line flag whose name looks secret; it is not a value detector.
const secretNameDetector = "secretName"

// valueDetectors are the detectors of secrets by their value, in the order
// they are tried.
var valueDetectors = []detector{
	{name: "pemPrivateKey", what: "a PEM private key", match: pemPrivateKey},
	{name: "awsAccessKeyID", what: "an AWS access key ID", match: regexp.MustCompile(`(?:^|[^A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?:$|[^A-Z0-9])`).MatchString},
	{name: "githubToken", what: "a GitHub token", quick: "gh", match: regexp.MustCompile(`(?:^|[^A-Za-z0-9_])(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?:$|[^A-Za-z0-9_])`).MatchString},
	{name: "gitlabToken", what: "a GitLab personal access token", quick: "glpat-", match: regexp.MustCompile(`glpat-[A-Za-z0-9_-]{20,}`).MatchString},
	{name: "slackToken", what: "a Slack token", quick: "xox", match: regexp.MustCompile(`(?:^|[^A-Za-z0-9])xox[abposr]-[0-9]{6,}-[A-Za-z0-9-]{6,}`).MatchString},
	{name: "stripeLiveKey", what: "a Stripe live key", quick: "_live_", match: regexp.MustCompile(`(?:^|[^A-Za-z0-9])[sr]k_live_[A-Za-z0-9]{20,}`).MatchString},
	{name: "googleAPIKey", what: "a Google API key", quick: "AIza", match: regexp.MustCompile(`AIza[0-9A-Za-z_-]{35}`).MatchString},
	{name: "jwt", what: "a JSON Web Token", quick: "eyJ", match: isJWT},
	{name: "urlPassword", what: "a URL with a password", quick: "://", match: urlHasPassword},
}

// DetectorNames lists every detector, the name detector first.
func DetectorNames() []string {
	out := []string{secretNameDetector}
	for _, d := range valueDetectors {
		out = append(out, d.name)
	}
	return out
}

// pemPrivateKeyRE finds a private key's armour header in any dress: any
// number of dashes, spaces around and between the words, any case
// ("----BEGIN RSA PRIVATE KEY----", "----- begin private key -----"). A
// body that is not base64 does not matter: a header alone is reason
// enough to look (the rule warns).
var pemPrivateKeyRE = regexp.MustCompile(`(?i)-+[ \t]*BEGIN[ \t]+(?:[A-Z0-9]+[ \t]+)*PRIVATE[ \t]+KEY(?:[ \t]+BLOCK)?[ \t]*-+`)

func pemPrivateKey(v string) bool {
	// Cheap test first: most values hold no "private" at all.
	if !strings.Contains(v, "PRIVATE") && !strings.Contains(v, "private") && !strings.Contains(v, "Private") {
		return false
	}
	return pemPrivateKeyRE.MatchString(v)
}

var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`)

// isJWT finds three base64url segments whose first decodes to a JSON
// object with an "alg": a JWT's header.
func isJWT(v string) bool {
	for _, m := range jwtRE.FindAllString(v, 4) {
		header, err := base64.RawURLEncoding.DecodeString(m[:strings.IndexByte(m, '.')])
		if err != nil {
			continue
		}
		var h map[string]any
		if json.Unmarshal(header, &h) == nil && h["alg"] != nil {
			return true
		}
	}
	return false
}

// urlHasPassword finds a URL whose userinfo carries a password, unless the
// password is a reference resolved elsewhere: $(VAR) (Kubernetes expands
// it from another env var, which may come from a Secret), ${VAR}, {{ }}.
func urlHasPassword(v string) bool {
	for _, field := range strings.Fields(v) {
		i := strings.Index(field, "://")
		if i < 0 {
			continue
		}
		// Start at the scheme: letters, digits, + - . before "://".
		start := i
		for start > 0 && strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.", rune(field[start-1])) {
			start--
		}
		u, err := url.Parse(field[start:])
		if err != nil || u.User == nil {
			continue
		}
		if pw, ok := u.User.Password(); ok && pw != "" && !isReference(pw) {
			return true
		}
	}
	return false
}

// referenceRE matches values that only refer to a secret kept elsewhere.
var referenceRE = regexp.MustCompile(`^(?:\$\([A-Za-z_][A-Za-z0-9_.-]*\)|\$\{[^}]+\}|\{\{.*\}\})$`)

func isReference(v string) bool { return referenceRE.MatchString(strings.TrimSpace(v)) }

// detect returns the first enabled value detector that fires on v.
func detect(v string, enabled map[string]bool) (detector, bool) {
	for _, d := range valueDetectors {
		if !enabled[d.name] || (d.quick != "" && !strings.Contains(v, d.quick)) {
			continue
		}
		if d.match(v) {
			return d, true
		}
	}
	return detector{}, false
}

// secretFlagWords end the names of command-line flags that carry secrets
// (--password, --db-password, --auth-token, --api-key, --client-secret).
// The flag's last word (or last two) must be one: --token-ttl and
// --password-file carry none, and a bare "secret" word usually names a
// Secret object (--cert-secret=podguard-webhook-cert), so only the
// compounds that mean a secret value count.
var secretFlagWords = map[string]bool{"password": true, "passwd": true, "pwd": true, "pass": true, "token": true, "secret": true,
	"apikey": true, "api-key": true, "secretkey": true, "secret-key": true, "accesskey": true, "access-key": true, "privatekey": true, "private-key": true,
	"client-secret": true, "shared-secret": true, "jwt-secret": true, "app-secret": true, "api-secret": true, "hmac-secret": true}

// secretFlag reports whether a flag name (without dashes) carries a secret.
func secretFlag(name string) bool {
	name = strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	if secretFlagWords[name] {
		return true
	}
	words := strings.Split(name, "-")
	last := words[len(words)-1]
	if last != "secret" && secretFlagWords[last] {
		return true
	}
	return len(words) >= 2 && secretFlagWords[words[len(words)-2]+"-"+last]
}

// literalSecret reports whether a value given to a secret-looking name is
// a hard-coded secret: not empty, not a reference, not a file path.
func literalSecret(v string) bool {
	v = strings.TrimSpace(v)
	return v != "" && !isReference(v) && !strings.HasPrefix(v, "/")
}

// flagNameRE is what a command-line flag's name looks like.
var flagNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// argSecret is a secret found in a container's command or args.
type argSecret struct {
	index    int    // the element holding the value
	flag     string // the flag's name, or ""
	detector detector
}

// argSecrets scans command or args: "--flag=value" and "--flag value"
// with a secret-looking flag name, and every element for secret values.
func argSecrets(args []string, enabled map[string]bool) []argSecret {
	var out []argSecret
	for i := 0; i < len(args); i++ {
		a := args[i]
		// "--flag=value": only when what precedes "=" is a flag's name. A
		// PEM key passed as one element starts with dashes too and holds
		// "=" (base64 padding): read as a flag, its header was missed.
		if name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); ok && strings.HasPrefix(a, "-") && flagNameRE.MatchString(name) {
			if d, found := detect(value, enabled); found {
				out = append(out, argSecret{index: i, flag: name, detector: d})
				continue
			} else if enabled[secretNameDetector] && secretFlag(name) && literalSecret(value) {
				out = append(out, argSecret{index: i, flag: name, detector: detector{name: secretNameDetector, what: "a literal value for a secret-looking flag"}})
				continue
			}
		}
		if strings.HasPrefix(a, "-") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			name := strings.TrimLeft(a, "-")
			if enabled[secretNameDetector] && secretFlag(name) && literalSecret(args[i+1]) {
				if d, found := detect(args[i+1], enabled); found {
					out = append(out, argSecret{index: i + 1, flag: name, detector: d})
				} else {
					out = append(out, argSecret{index: i + 1, flag: name, detector: detector{name: secretNameDetector, what: "a literal value for a secret-looking flag"}})
				}
				i++
				continue
			}
		}
		if d, found := detect(a, enabled); found {
			out = append(out, argSecret{index: i, detector: d})
		}
	}
	return out
}
