// Package manifest reads and writes the manifests the offline CLI judges:
// files, directories and stdin; multi-document YAML, JSON and Lists. It keeps
// each document's original bytes and a comment-preserving YAML tree, so
// documents podguard does not change come out byte-identical and changed ones
// keep their comments and key order.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Stdin is the path that means standard input.
const Stdin = "-"

// Document is one YAML or JSON document of an input file.
type Document struct {
	// Source is the file path, or "-" for stdin.
	Source string
	// Index counts the non-empty documents of the file from 0.
	Index int
	// Line is the line of the file where the document starts (1-based).
	Line int
	// Raw holds the document's bytes as read.
	Raw []byte
	// JSON is true for a JSON document (written back as JSON).
	JSON bool
	// Node is the parsed document; nil when Err is set.
	Node *yaml.Node
	// Err is why the document could not be parsed.
	Err error
	// changed is set once a change has been applied to Node.
	changed bool
}

// Name returns "<source>#<index>", the document's name in reports.
func (d *Document) Name() string { return fmt.Sprintf("%s#%d", d.Source, d.Index) }

// InputError is a problem with an input as a whole or with one document,
// named by file, document and line where known.
type InputError struct {
	Source string
	// Doc is the document index, or -1 for the file as a whole.
	Doc int
	// Line is the line in the file, or 0 when unknown.
	Line int
	Err  error
}

func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Doc >= 0 {
		fmt.Fprintf(&b, " (document %d", e.Doc)
		if e.Line > 0 {
			fmt.Fprintf(&b, ", line %d", e.Line)
		}
		b.WriteString(")")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *InputError) Unwrap() error { return e.Err }

// ErrNotExist is wrapped by the error for a path that does not exist.
var ErrNotExist = fs.ErrNotExist

// Expand resolves the -f arguments to files: a file as is, a directory
// recursively to its *.yaml, *.yml and *.json files in lexical order, "-"
// as stdin. A directory without manifests expands to nothing.
func Expand(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if p == Stdin {
			out = append(out, p)
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, &InputError{Source: p, Doc: -1, Err: err}
		}
		if !info.IsDir() {
			out = append(out, p)
			continue
		}
		var files []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, &InputError{Source: p, Doc: -1, Err: err}
		}
		sort.Strings(files)
		out = append(out, files...)
	}
	return out, nil
}

// ReadFile reads one expanded path ("-" reads stdin) and splits it.
func ReadFile(path string, stdin io.Reader) ([]*Document, error) {
	var data []byte
	var err error
	if path == Stdin {
		if stdin == nil {
			return nil, &InputError{Source: path, Doc: -1, Err: errors.New("no standard input")}
		}
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, &InputError{Source: path, Doc: -1, Err: err}
	}
	return Split(path, data)
}

// Split cuts a file into its documents and parses each one. A file that is
// not text is an error; a document that does not parse carries its error
// and its raw bytes, so callers can report it and still pass it through.
func Split(source string, data []byte) ([]*Document, error) {
	if bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data) {
		return nil, &InputError{Source: source, Doc: -1, Err: errors.New("binary file: not YAML or JSON text")}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	isJSON := strings.EqualFold(filepath.Ext(source), ".json") || (len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '['))
	var chunks []chunk
	if isJSON {
		chunks = []chunk{{line: 1, raw: data}}
	} else {
		chunks = splitYAML(data)
	}
	var docs []*Document
	for _, c := range chunks {
		d := &Document{Source: source, Index: len(docs), Line: c.line, Raw: c.raw, JSON: isJSON}
		var node yaml.Node
		err := yaml.NewDecoder(bytes.NewReader(c.raw)).Decode(&node)
		switch {
		case errors.Is(err, io.EOF):
			continue // empty or comments only: not a document
		case err != nil:
			d.Err = err
		case node.Kind == yaml.DocumentNode && len(node.Content) == 1 && node.Content[0].Kind == yaml.ScalarNode && node.Content[0].Tag == "!!null":
			continue // an explicit null document holds nothing
		default:
			d.Node = &node
		}
		docs = append(docs, d)
	}
	return docs, nil
}

type chunk struct {
	line int
	raw  []byte
}

// splitYAML cuts at "---" lines. In YAML a document marker at column 0 can
// be neither block-scalar content (which is indented) nor inside a quoted
// scalar, so cutting by lines is exact.
func splitYAML(data []byte) []chunk {
	var out []chunk
	start, startLine, line := 0, 1, 1
	for i := 0; i <= len(data); {
		end := bytes.IndexByte(data[i:], '\n')
		next := len(data) + 1
		var l []byte
		if end < 0 {
			l = data[i:]
		} else {
			l = data[i : i+end]
			next = i + end + 1
		}
		l = bytes.TrimRight(l, "\r")
		if isMarker(l) {
			out = append(out, chunk{line: startLine, raw: data[start:i]})
			rest := bytes.TrimLeft(l[3:], " \t")
			if len(rest) > 0 && rest[0] != '#' {
				// "--- {a: 1}": content on the marker line belongs to the next document.
				start = i + 3
				startLine = line
			} else {
				start = min(next, len(data))
				startLine = line + 1
			}
		}
		i = next
		line++
		if end < 0 {
			break
		}
	}
	out = append(out, chunk{line: startLine, raw: data[start:]})
	return out
}

func isMarker(l []byte) bool {
	if !bytes.HasPrefix(l, []byte("---")) && !bytes.HasPrefix(l, []byte("...")) {
		return false
	}
	return len(l) == 3 || l[3] == ' ' || l[3] == '\t'
}
