package cli

import (
	"context"
	"fmt"
	"io"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/manifest"
)

// ReadExceptions reads the PodGuardExceptions in paths (files, directories,
// - for stdin), as a cluster would hold them; other kinds are passed over.
// A document that is not a valid PodGuardException is an error naming
// file, document and line.
func ReadExceptions(ctx context.Context, paths []string, stdin io.Reader, maxBytes int64) ([]v1alpha1.PodGuardException, error) {
	in := InputOptions{Files: paths, MaxBytes: maxBytes}
	var out []v1alpha1.PodGuardException
	var problems []error
	err := in.EachObject(ctx, stdin, func(string) {}, func(err error) { problems = append(problems, err) }, func(o *manifest.Object) {
		if o.GroupKind.Group != v1alpha1.GroupName || o.Kind != v1alpha1.ExceptionKind {
			return
		}
		if o.APIVersion != v1alpha1.APIVersion {
			problems = append(problems, fmt.Errorf("%s: PodGuardException: apiVersion %s is not served; use %s", o.Source(), o.APIVersion, v1alpha1.APIVersion))
			return
		}
		var x v1alpha1.PodGuardException
		if err := o.DecodeStrict(&x); err != nil {
			problems = append(problems, err)
			return
		}
		out = append(out, x)
	})
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, &ExitError{Code: ExitBadInput, Err: fmt.Errorf("reading exceptions: %w", problems[0])}
	}
	return out, nil
}
