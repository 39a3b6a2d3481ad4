// Package imagescmd implements `podguard images verify`: per image, its
// digest and what the policy's imageSignatures trust entries make of its
// signatures, verified as the webhook verifies them (the `docker trust
// inspect` of a user of the hardening write-up, for Sigstore signatures).
package imagescmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"podguard.dev/podguard/cmd/podguard/internal/cli"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/policies/safetext"
	"podguard.dev/podguard/webhook/imageverify"
)

// Options are the flags of `podguard images verify`.
type Options struct {
	Output  string
	Policy  cli.PolicyOptions
	Digests cli.DigestOptions
}

// NewCommand returns the images command and its verify sub-command.
func NewCommand(s cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Inspect images as the policy's image rules see them",
		Args:  cobra.NoArgs,
	}
	o := &Options{}
	verify := &cobra.Command{
		Use:   "verify IMAGE [IMAGE ...] [--policy FILE]",
		Short: "Verify images' signatures as the webhook does, and print what was found",
		Long: `For each image (a reference as a pod spec writes it), print its digest
(a tag is resolved by its registry), the imageSignatures trust entries of
the policy that cover it, and each one's verdict: verified (and by whom),
unsigned (and why each authority's signatures do not count), or
unreachable; and for each imageVulnerabilities scan entry, the newest
scan attestation an authority signed, with its time and findings (whether
they pass, by age and severity, the rule decides at admission). Then each
signature and attestation the registry holds for the digest: its format,
who it names as its signer (a certificate's identity and issuer, or a key),
when (the transparency log's time, or notation's signing time), and which
of the covering entries' authorities it verifies under (not with
--offline).
Signatures and attestations are read from the image's registry (cosign's
legacy .sig tag and Sigstore bundle referrers) and verified against the
policy's keys and trusted roots, with the webhook's verifier.

Exit status: 0 when every covered image is verified (signed; a scan
attestation found), 1 when one is not,
2 on bad input (a bad reference, a policy that does not load), 130
interrupted.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context(), s, args) },
	}
	fs := verify.Flags()
	fs.StringVarP(&o.Output, "output", "o", "text", "output format: text or json")
	o.Policy.AddFlags(fs)
	o.Policy.AddTrustFlag(fs)
	o.Digests.AddRegistryFlags(fs)
	o.Digests.AddCacheFlags(fs)
	cmd.AddCommand(verify)
	return cmd
}

// Image is one image's report, as -o json writes it.
type Image struct {
	Image string `json:"image"`
	// Digest is the digest verified; empty when the tag did not resolve.
	Digest string `json:"digest,omitempty"`
	// Verdicts has one entry per trust entry covering the image; none
	// when no entry covers it (the webhook does not verify it).
	Verdicts []Verdict `json:"verdicts"`
	// Scans has one entry per imageVulnerabilities scan entry covering
	// the image, with the newest scan attestation verified.
	Scans []Verdict `json:"scans"`
	// Found lists each signature and attestation the registry holds for
	// the digest: who it names as its signer, when, and the authorities
	// of the covering entries it verifies under. Null offline, or when
	// the registry could not be asked (FoundError says why).
	Found      []imageverify.Found `json:"found"`
	FoundError string              `json:"foundError,omitempty"`
}

// Verdict is one trust entry's verdict on an image.
type Verdict struct {
	// Trust is the entry's index in rules.imageSignatures.trust.
	Trust       int      `json:"trust"`
	Images      []string `json:"images"`
	Require     string   `json:"require"`
	Authorities []string `json:"authorities"`
	imagetrust.Verdict
}

// Report is what -o json prints.
type Report struct {
	Images []Image `json:"images"`
}

// Run verifies the images and prints the report.
func (o *Options) Run(ctx context.Context, s cli.Streams, refs []string) error {
	if o.Output != "text" && o.Output != "json" {
		return cli.BadInput("--output %q: want text or json", o.Output)
	}
	for _, r := range refs {
		if _, err := name.ParseReference(r); err != nil {
			return cli.BadInput("image %s: %v", safetext.Line(r), err)
		}
	}
	o.Digests.Verify = true // what images verify does: the cache flags and TUF go with it
	if err := o.Digests.CheckCacheFlags(); err != nil {
		return err
	}
	o.Policy.TUF = o.Digests.TUFReader()
	enf, err := o.Policy.Enforcer(ctx)
	if err != nil {
		return err
	}
	ps, on := rules.ImageSignatures(enf.Policy())
	vs, vulnsOn := rules.ImageVulnerabilities(enf.Policy())
	if !on && !vulnsOn {
		return cli.BadInput("the policy has no imageSignatures trust entry nor imageVulnerabilities scan entry (or the rules are off): nothing to verify against")
	}
	if !on {
		ps = &rules.ImageSignaturesParams{}
	}
	resolver, verifier, err := o.Digests.Verifier()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Digests.Timeout)
	defer cancel()
	var tags []string
	for _, r := range refs {
		if !strings.Contains(r, "@") {
			tags = append(tags, r)
		}
	}
	digests := resolver.Resolve(ctx, tags)
	verdicts := verifier.Verify(ctx, ps, refs, digests)
	var scans imagetrust.Verdicts
	if vulnsOn {
		scans = verifier.VerifyScans(ctx, vs, refs, digests)
	}

	if err := o.Digests.Save(); err != nil {
		return err
	}
	rep := Report{Images: []Image{}}
	failed := false
	for _, r := range refs {
		img := Image{Image: r, Digest: digests[r], Verdicts: []Verdict{}, Scans: []Verdict{}}
		if i := strings.Index(r, "@"); i >= 0 {
			img.Digest = r[i+1:]
		}
		for _, i := range ps.Covers(r) {
			tr := ps.Trust[i]
			img.Verdicts = append(img.Verdicts, entryVerdict(verdicts, r, i, tr.Images, tr.Require, tr.Authorities))
		}
		if vulnsOn {
			for _, i := range vs.Covers(r) {
				// Whether the report passes (age, severities) is the
				// rule's to say, at admission: this prints what was found.
				sc := vs.Scans[i]
				img.Scans = append(img.Scans, entryVerdict(scans, r, i, sc.Images, rules.RequireAny, sc.Authorities))
			}
		}
		for _, v := range slices.Concat(img.Verdicts, img.Scans) {
			failed = failed || (v.Status != imagetrust.Verified && v.Status != imagetrust.Stale)
		}
		if img.Digest != "" && !o.Digests.Offline {
			img.Found, err = verifier.Inspect(ctx, r, map[string]string{r: img.Digest}, covering(ps, vs, vulnsOn, r))
			if err != nil {
				img.FoundError = err.Error()
			}
		}
		rep.Images = append(rep.Images, img)
	}
	if o.Output == "json" {
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printText(s.Out, rep)
	}
	if failed {
		return cli.Exit(cli.ExitDenied)
	}
	return nil
}

// covering lists the authorities of the trust and scan entries that
// cover r.
func covering(ps *rules.ImageSignaturesParams, vs *rules.ImageVulnerabilitiesParams, vulnsOn bool, r string) []rules.Authority {
	var out []rules.Authority
	for _, i := range ps.Covers(r) {
		out = append(out, ps.Trust[i].Authorities...)
	}
	if vulnsOn {
		for _, i := range vs.Covers(r) {
			out = append(out, vs.Scans[i].Authorities...)
		}
	}
	return out
}

// entryVerdict is the verdict of entry i (its images, require and
// authorities) on reference r, as the report lists it.
func entryVerdict(verdicts imagetrust.Verdicts, r string, i int, images []string, require string, authorities []rules.Authority) Verdict {
	v, ok := verdicts[imagetrust.Key{Ref: r, Trust: i}]
	if !ok {
		v = imagetrust.Verdict{Status: imagetrust.Unreachable, Detail: "not verified within --resolve-timeout"}
	}
	names := make([]string, len(authorities))
	for j, a := range authorities {
		names[j] = a.Name
	}
	return Verdict{Trust: i, Images: images, Require: require, Authorities: names, Verdict: v}
}

func printText(w io.Writer, rep Report) {
	for i, img := range rep.Images {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Image:   %s\n", safetext.Line(img.Image))
		digest := img.Digest
		if digest == "" {
			digest = "(not resolved)"
		}
		fmt.Fprintf(w, "Digest:  %s\n", safetext.Line(digest))
		printFound(w, img)
		if len(img.Verdicts) == 0 && len(img.Scans) == 0 {
			fmt.Fprintln(w, "Trust:   no trust or scan entry covers it: the webhook does not verify it")
			continue
		}
		for _, v := range img.Scans {
			fmt.Fprintf(w, "Scan %d:  images %s, an attestation by one of %s\n", v.Trust, safetext.Line(strings.Join(v.Images, ", ")), safetext.Line(fmt.Sprintf("%q", v.Authorities)))
			fmt.Fprintf(w, "  Verdict: %s\n", v.Status)
			if r := v.Scan; r != nil {
				notAffected := ""
				if r.NotAffected > 0 {
					notAffected = fmt.Sprintf(" (%d more listed as not affecting the image)", r.NotAffected)
				}
				fmt.Fprintf(w, "  Scanned: %s by %s, %d findings%s\n", r.FinishedAt.Format("2006-01-02T15:04:05Z"), safetext.Line(r.Scanner), len(r.Vulnerabilities), notAffected)
				for j, vu := range r.Vulnerabilities {
					if j == 10 {
						fmt.Fprintf(w, "    ... %d more (-o json lists them)\n", len(r.Vulnerabilities)-10)
						break
					}
					fmt.Fprintf(w, "    %s %s\n", safetext.Line(vu.ID), safetext.Line(vu.Severity))
				}
			}
			if v.Detail != "" {
				fmt.Fprintf(w, "  Detail:  %s\n", safetext.Line(v.Detail))
			}
		}
		for _, v := range img.Verdicts {
			var names []string
			for _, n := range v.Authorities {
				names = append(names, fmt.Sprintf("%q", n))
			}
			fmt.Fprintf(w, "Trust %d: images %s, require %s of %s\n", v.Trust, safetext.Line(strings.Join(v.Images, ", ")), v.Require, safetext.Line(strings.Join(names, ", ")))
			line := string(v.Status)
			if len(v.Signers) > 0 {
				var signers []string
				for _, n := range v.Signers {
					signers = append(signers, fmt.Sprintf("%q", n))
				}
				line += ", signed by " + strings.Join(signers, ", ")
			}
			if !v.VerifiedAt.IsZero() && v.Status == imagetrust.Stale {
				line += ", admitted on the verification of " + v.VerifiedAt.UTC().Format("2006-01-02T15:04:05Z")
			}
			fmt.Fprintf(w, "  Verdict: %s\n", safetext.Line(line))
			if v.Detail != "" {
				fmt.Fprintf(w, "  Detail:  %s\n", safetext.Line(v.Detail))
			}
		}
	}
}

// printFound lists what the registry holds for an image's digest, a line
// each: what it is, who it names, when, and whose authority verified it.
func printFound(w io.Writer, img Image) {
	switch {
	case img.FoundError != "":
		fmt.Fprintf(w, "Found:   not listed: %s\n", safetext.Line(img.FoundError))
		return
	case img.Found == nil:
		return
	case len(img.Found) == 0:
		fmt.Fprintln(w, "Found:   no signature or attestation")
		return
	}
	fmt.Fprintf(w, "Found:   %d %s\n", len(img.Found), safetext.Plural(len(img.Found), "signature or attestation", "signatures and attestations"))
	for _, f := range img.Found {
		what := f.Kind
		if f.PredicateType != "" {
			what += " " + f.PredicateType
		}
		line := fmt.Sprintf("%s (%s), by %s", what, f.Format, f.Signer)
		if f.SignedAt != nil {
			line += ", at " + f.SignedAt.Format("2006-01-02T15:04:05Z")
		}
		if len(f.VerifiedBy) == 0 {
			line += ": verified by none of the policy's authorities"
		} else {
			line += fmt.Sprintf(": verified by %q", f.VerifiedBy)
		}
		fmt.Fprintf(w, "  %s\n", safetext.Line(line))
	}
}
