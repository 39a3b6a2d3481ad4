package cli

import (
	"encoding/xml"
	"io"
	"strings"
)

// JUnitSuites is a JUnit XML report as CI systems read it (GitLab, Jenkins,
// GitHub test-report actions): validate writes one testsuite per input
// file, test one per test file.
type JUnitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is one testsuite.
type JUnitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []JUnitCase `xml:"testcase"`
}

// JUnitCase is one testcase; Failure is nil when it passed.
type JUnitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *JUnitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

// JUnitFailure says why a testcase failed.
type JUnitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// Add appends a testcase and counts it.
func (s *JUnitSuite) Add(c JUnitCase) {
	s.Tests++
	if c.Failure != nil {
		s.Failures++
	}
	s.Cases = append(s.Cases, c)
}

// WriteJUnit writes the report through encoding/xml, which escapes every
// string from a manifest, a policy or a test file; characters XML 1.0
// cannot hold at all are dropped first.
func WriteJUnit(w io.Writer, r JUnitSuites) error {
	for i := range r.Suites {
		s := &r.Suites[i]
		s.Name = xmlText(s.Name)
		for j := range s.Cases {
			c := &s.Cases[j]
			c.Name, c.Classname, c.SystemOut = xmlText(c.Name), xmlText(c.Classname), xmlText(c.SystemOut)
			if c.Failure != nil {
				c.Failure.Message, c.Failure.Text = xmlText(c.Failure.Message), xmlText(c.Failure.Text)
			}
		}
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(r); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r != 0xFFFE && r != 0xFFFF) {
			return r
		}
		return -1
	}, s)
}
