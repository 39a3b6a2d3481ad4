package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"podguard.dev/podguard/policies/manifest"
)

// DefaultMaxInputBytes caps one input file (or stdin). Manifests are
// small; the cap is there so /dev/zero or a runaway pipe ends with a clear
// error instead of exhausting memory.
const DefaultMaxInputBytes = 64 << 20

// InputOptions are the flags that select and bound the manifests read.
type InputOptions struct {
	// Files are the -f arguments: files, directories or "-".
	Files []string
	// MaxBytes caps each input.
	MaxBytes int64
}

// AddFlags registers -f and --max-input-bytes.
func (o *InputOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&o.Files, "filename", "f", nil, "file, directory or - (stdin); repeatable")
	fs.Int64Var(&o.MaxBytes, "max-input-bytes", DefaultMaxInputBytes, "largest input file (or stdin) read, in bytes; bigger ones are an error")
}

// Input is one file to read, found from the -f arguments.
type Input struct {
	// Path is the file's path as the user would name it ("-" for stdin).
	Path string
	// open is the path to open (the target of a followed symlink).
	open string
}

// Expand resolves the -f arguments to inputs: a file as is (a FIFO or a
// device named explicitly is read too, bounded, like stdin), a directory
// recursively to its *.yaml, *.yml and *.json regular files in lexical
// order, following symlinked directories once, "-" as stdin. What it passes
// over inside directories (FIFOs, sockets, devices named like manifests,
// symlink loops) is returned as notes. A path that does not exist is an
// error.
func (o *InputOptions) Expand() ([]Input, []string, error) {
	if len(o.Files) == 0 {
		return nil, nil, BadInput("no input: give at least one -f FILE, -f DIRECTORY or -f - (stdin)")
	}
	if o.MaxBytes <= 0 {
		return nil, nil, BadInput("--max-input-bytes must be greater than 0")
	}
	var out []Input
	var notes []string
	for _, p := range o.Files {
		if p == manifest.Stdin {
			out = append(out, Input{Path: p, open: p})
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, nil, &ExitError{Code: ExitBadInput, Err: &manifest.InputError{Source: p, Doc: -1, Err: err}}
		}
		if !info.IsDir() {
			out = append(out, Input{Path: p, open: p})
			continue
		}
		files, n, err := walk(p)
		if err != nil {
			return nil, nil, &ExitError{Code: ExitBadInput, Err: &manifest.InputError{Source: p, Doc: -1, Err: err}}
		}
		out = append(out, files...)
		notes = append(notes, n...)
	}
	return out, notes, nil
}

// walk lists the manifests below dir. Symlinked directories are followed
// (a real path is visited once, so loops end); reported paths keep the
// names the user sees.
func walk(dir string) ([]Input, []string, error) {
	var out []Input
	var notes []string
	seen := map[string]bool{}
	var visit func(shown, real string) error
	visit = func(shown, real string) error {
		if seen[real] {
			notes = append(notes, fmt.Sprintf("%s: skipped: a symlink back to a directory already read", shown))
			return nil
		}
		seen[real] = true
		entries, err := os.ReadDir(real)
		if err != nil {
			return err
		}
		for _, e := range entries {
			shownPath, realPath := filepath.Join(shown, e.Name()), filepath.Join(real, e.Name())
			mode := e.Type()
			if mode&fs.ModeSymlink != 0 {
				target, err := filepath.EvalSymlinks(realPath)
				if err != nil {
					notes = append(notes, fmt.Sprintf("%s: skipped: broken symlink", shownPath))
					continue
				}
				info, err := os.Stat(target)
				if err != nil {
					return err
				}
				realPath, mode = target, info.Mode().Type()
			}
			if mode.IsDir() {
				if err := visit(shownPath, realPath); err != nil {
					return err
				}
				continue
			}
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
			default:
				continue
			}
			if !mode.IsRegular() {
				notes = append(notes, fmt.Sprintf("%s: skipped: not a regular file (%s)", shownPath, describeMode(mode)))
				continue
			}
			out = append(out, Input{Path: shownPath, open: realPath})
		}
		return nil
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := visit(dir, real); err != nil {
		return nil, nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, notes, nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	}
	return m.String()
}

// ErrInterrupted is returned when a signal ends the command while it reads.
var ErrInterrupted = errors.New("interrupted")

// Read reads one input whole, up to MaxBytes, returning early with
// ErrInterrupted when ctx ends: opening a FIFO with no writer, or reading a
// terminal, blocks in the kernel, where nothing else could stop it.
func (o *InputOptions) Read(ctx context.Context, in Input, stdin io.Reader) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := o.read(in, stdin)
		done <- result{data, err}
	}()
	select {
	case r := <-done:
		return r.data, r.err
	case <-ctx.Done():
		return nil, ErrInterrupted
	}
}

func (o *InputOptions) read(in Input, stdin io.Reader) ([]byte, error) {
	fail := func(err error) error { return &manifest.InputError{Source: in.Path, Doc: -1, Err: err} }
	r := stdin
	if in.Path == manifest.Stdin {
		if stdin == nil {
			return nil, fail(errors.New("no standard input"))
		}
	} else {
		f, err := os.Open(in.open)
		if err != nil {
			return nil, fail(err)
		}
		defer f.Close()
		r = f
	}
	tooLarge := fail(fmt.Errorf("larger than %d bytes, the input limit; raise it with --max-input-bytes if this is really a manifest", o.MaxBytes))
	// A regular file of a size within the cap is read into one buffer of
	// that size.
	if f, ok := r.(*os.File); ok {
		if info, err := f.Stat(); err == nil && info.Mode().IsRegular() {
			if info.Size() > o.MaxBytes {
				return nil, tooLarge
			}
			buf := bytes.NewBuffer(make([]byte, 0, int(info.Size())+bytes.MinRead))
			if _, err := buf.ReadFrom(io.LimitReader(r, o.MaxBytes+1)); err != nil {
				return nil, fail(err)
			}
			if int64(buf.Len()) > o.MaxBytes {
				return nil, tooLarge // it grew while read
			}
			return buf.Bytes(), nil
		}
	}
	// Anything else (a pipe, stdin, a device such as /dev/zero) is read into
	// fixed chunks, joined once at the end: memory stays within the cap
	// plus a chunk while reading, and an input over the cap is refused
	// before anything is joined. A doubling buffer held 308 MB for a 64 MiB
	// cap on /dev/zero.
	const chunkSize = 1 << 20
	var chunks [][]byte
	total := int64(0)
	for {
		c := make([]byte, chunkSize)
		n, err := io.ReadFull(r, c)
		if n > 0 {
			chunks = append(chunks, c[:n])
			total += int64(n)
		}
		if total > o.MaxBytes {
			return nil, tooLarge
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, fail(err)
		}
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	data := make([]byte, 0, total)
	for i, c := range chunks {
		data = append(data, c...)
		chunks[i] = nil
	}
	return data, nil
}
