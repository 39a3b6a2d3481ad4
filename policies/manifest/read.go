// Package manifest reads and writes the manifests the offline CLI judges:
// multi-document YAML, JSON streams and Lists, from bytes it is handed (the
// CLI does the file I/O). It keeps each document's original bytes and a
// comment-preserving YAML tree, so documents podguard does not change come
// out byte-identical and changed ones keep their comments and key order.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
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
	// JSON is true for a document read as JSON (written back as JSON).
	JSON bool
	// Node is the parsed document; nil when Err is set.
	Node *yaml.Node
	// Err is why the document could not be parsed.
	Err error
	// changed is set once a change has been applied to Node.
	changed bool
	// json is the document as kubectl sends it, once converted.
	json []byte
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

// Split cuts a whole input into its documents and parses each one; see
// Splitter for the rules. Callers that handle large inputs should use a
// Splitter, which parses one document at a time.
func Split(source string, data []byte) ([]*Document, error) {
	s, err := NewSplitter(source, data)
	if err != nil {
		return nil, err
	}
	var docs []*Document
	for {
		d, ok := s.Next()
		if !ok {
			return docs, nil
		}
		docs = append(docs, d)
	}
}

// Splitter yields the documents of one input in order, parsing each only
// when asked, so memory holds the input's bytes and one document's tree,
// not a tree per object.
//
// It cuts the input exactly where kubectl's decoder
// (k8s.io/apimachinery/pkg/util/yaml.YAMLOrJSONDecoder) does, so every
// document kubectl would apply is judged: an input whose first non-space
// byte is "{" is read as a stream of JSON values; once more than one has
// been read, the stream is JSON to the end. If the first or second value
// does not parse as JSON (flow-style YAML, or a "---" after one JSON
// object), the rest of the input is YAML, cut at "---" lines. A YAML chunk
// that holds more than one document without a "---" is an error, never a
// silently shortened input.
type Splitter struct {
	source string
	data   []byte
	pos    int // next unread byte
	line   int // line of data[pos]
	json   bool
	nJSON  int
	index  int
	// broken is set when a JSON stream of more than one value breaks.
	broken bool
}

// NewSplitter returns a Splitter over data. A file that is not text is an
// error.
func NewSplitter(source string, data []byte) (*Splitter, error) {
	if bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data) {
		return nil, &InputError{Source: source, Doc: -1, Err: errors.New("binary file: not YAML or JSON text")}
	}
	s := &Splitter{source: source, data: data, line: 1}
	s.json = bytes.HasPrefix(bytes.TrimLeftFunc(data, unicode.IsSpace), []byte("{"))
	return s, nil
}

// Next returns the next non-empty document, or false at the end.
func (s *Splitter) Next() (*Document, bool) {
	for s.pos < len(s.data) {
		var raw []byte
		var line int
		isJSON := false
		if s.json {
			raw, line, isJSON = s.nextJSON()
		}
		if !isJSON {
			if raw == nil && s.pos >= len(s.data) {
				return nil, false
			}
			if raw == nil {
				var cutErr error
				if raw, line, cutErr = s.nextYAML(); cutErr != nil {
					d := &Document{Source: s.source, Index: s.index, Line: line, Raw: raw, Err: cutErr}
					s.index++
					return d, true
				}
				if raw == nil {
					return nil, false
				}
			}
		}
		d := &Document{Source: s.source, Index: s.index, Line: line, Raw: raw, JSON: isJSON}
		if s.broken {
			s.broken = false
			d.JSON = false
			d.Err = fmt.Errorf("line 1: after %d JSON objects the stream goes on with something that is not JSON (kubectl stops here too)", s.nJSON)
			s.index++
			return d, true
		}
		if !s.parse(d) {
			continue // empty, comments only or an explicit null: not a document
		}
		s.index++
		return d, true
	}
	return nil, false
}

// nextJSON reads one JSON value. ok is false when the stream turns out to
// be YAML from here on (s.json is then false); raw is then nil, or the
// erroneous rest of an unambiguous JSON stream.
func (s *Splitter) nextJSON() (raw []byte, line int, ok bool) {
	rest := s.data[s.pos:]
	skip := len(rest) - len(bytes.TrimLeftFunc(rest, unicode.IsSpace))
	if skip == len(rest) {
		s.advance(len(rest))
		return nil, 0, false
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	var v json.RawMessage
	err := dec.Decode(&v)
	if err == nil {
		end := int(dec.InputOffset())
		s.advance(skip)
		line = s.line
		raw = rest[skip:end]
		s.advance(end - skip)
		s.nJSON++
		return raw, line, true
	}
	if s.nJSON > 1 {
		// An unambiguous JSON stream that breaks: kubectl stops with an error
		// here too. Hand the rest over as one document that fails to parse.
		s.advance(skip)
		line = s.line
		raw = rest[skip:]
		s.advance(len(rest) - skip)
		s.json = false
		s.broken = true
		return raw, line, true
	}
	// Not JSON after all: YAML from here, after the white space up to and
	// including the first line break, as kubectl's decoder does.
	s.json = false
	for i, r := range string(rest) {
		if !unicode.IsSpace(r) {
			s.advance(i)
			break
		}
		if r == '\n' {
			s.advance(i + 1)
			break
		}
	}
	return nil, 0, false
}

// nextYAML cuts the next chunk exactly as kubectl's YAML reader
// (k8s.io/apimachinery/pkg/util/yaml.YAMLReader) does: a line that starts
// with "---" ends the chunk when what follows it, trimmed, is empty or a
// comment ("---", "--- # x", "---#"); any other text after "---" ("--- a",
// "----") is an error that stops kubectl, reported here for that chunk.
// "..." is not a separator for kubectl: a chunk holding one is parsed as a
// whole (and refused if it holds a second document). Empty chunks (two
// separators in a row) are skipped. FuzzSplitLikeKubectl holds the cut
// equal to the reader's.
func (s *Splitter) nextYAML() (raw []byte, line int, err error) {
	for s.pos < len(s.data) {
		start, startLine := s.pos, s.line
		i := s.pos
		cut := false
		for i < len(s.data) {
			end := bytes.IndexByte(s.data[i:], '\n')
			next := len(s.data)
			if end >= 0 {
				next = i + end + 1
			}
			l := s.data[i:next]
			if bytes.HasPrefix(l, []byte(yamlSeparator)) {
				rest := strings.TrimSpace(string(l[len(yamlSeparator):]))
				if rest != "" && rest[0] != '#' {
					raw = s.data[start:i]
					// The line in the document, as yaml errors count them.
					sepLine := bytes.Count(raw, []byte("\n")) + 1
					s.advance(next - s.pos)
					return raw, startLine, fmt.Errorf("line %d: invalid document separator %q: only a comment may follow --- on its line (kubectl stops here too)", sepLine, truncateText(rest, 40))
				}
				raw = s.data[start:i]
				s.advance(next - s.pos)
				cut = true
				break
			}
			i = next
		}
		if !cut {
			raw = s.data[start:]
			s.advance(len(s.data) - s.pos)
		}
		if len(raw) > 0 {
			return raw, startLine, nil
		}
	}
	return nil, s.line, nil
}

// yamlSeparator starts a line that ends a document, as in kubectl's reader.
const yamlSeparator = "---"

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// advance moves n bytes on, counting lines.
func (s *Splitter) advance(n int) {
	s.line += bytes.Count(s.data[s.pos:s.pos+n], []byte("\n"))
	s.pos += n
}

// parse fills d.Node or d.Err; false means the chunk holds no document.
func (s *Splitter) parse(d *Document) bool {
	dec := yaml.NewDecoder(bytes.NewReader(d.Raw))
	var node yaml.Node
	err := dec.Decode(&node)
	switch {
	case errors.Is(err, io.EOF):
		return false
	case err != nil:
		d.Err = err
		return true
	}
	// yaml.v3 reports trouble after the first document (a second flow
	// mapping, a second document without "---") only on the next call.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.Err = fmt.Errorf("line %d: a second document without a --- separator", extra.Line)
		return true
	case !errors.Is(err, io.EOF):
		d.Err = err
		return true
	}
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 && node.Content[0].Kind == yaml.ScalarNode && node.Content[0].Tag == "!!null" {
		return false // an explicit null document holds nothing
	}
	d.Node = &node
	return true
}
