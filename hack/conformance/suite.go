package main

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab/kubelet"
)

// selection is the specs to run: those matching focus and not skip.
type selection struct {
	focus, skip string
}

// readSelection reads the focus file (a regexp a line) and the skip file
// (a regexp, then "# reason", a line; a skip without its reason is an
// error). Blank lines and lines starting with # are comments.
func readSelection(focusFile, skipFile string) (selection, error) {
	focus, err := patterns(focusFile, false)
	if err != nil {
		return selection{}, err
	}
	skip, err := patterns(skipFile, true)
	if err != nil {
		return selection{}, err
	}
	if len(focus) == 0 {
		return selection{}, fmt.Errorf("%s: no pattern", focusFile)
	}
	return selection{focus: strings.Join(focus, "|"), skip: strings.Join(skip, "|")}, nil
}

func patterns(file string, reasoned bool) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read spec patterns: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		re, reason, _ := strings.Cut(line, " # ")
		re = strings.TrimSpace(re)
		if reasoned && strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: %q has no reason (pattern # reason)", file, n, re)
		}
		if _, err := regexp.Compile(re); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		out = append(out, "(?:"+re+")")
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return out, nil
}

// result is one run of the suite.
type result struct {
	plugin, mode string
	run          int
	passed       []string
	failed       []string
	skipped      []string // skipped by the spec itself, with its reason
	took         time.Duration
	junit        string
	err          error // the run could not run or report
}

// runSuite runs ginkgo with e2e.test inside the lab netns, where the API
// server, the nodes and the pods are reachable, as the admin, and reads
// the JUnit file the e2e framework writes into out.
func runSuite(ctx context.Context, c config, cl *kubelet.Cluster, b *built, sel selection, out string) result {
	r := result{junit: filepath.Join(out, "junit_01.xml")}
	if err := os.MkdirAll(out, 0o755); err != nil {
		r.err = fmt.Errorf("make %s: %w", out, err)
		return r
	}
	kc, err := cl.Lab.AdminKubeconfig()
	if err != nil {
		r.err = err
		return r
	}
	argv := []string{"ip", "netns", "exec", cl.Lab.Netns, filepath.Join(b.k8sBin, "ginkgo"),
		"--nodes=" + strconv.Itoa(c.parallel), "--focus=" + sel.focus, "--skip=" + sel.skip,
		"--no-color", "--silence-skips", "--timeout=" + c.timeout.String(),
		filepath.Join(b.k8sBin, "e2e.test"), "--",
		"--kubeconfig=" + kc, "--provider=skeleton", "--num-nodes=" + strconv.Itoa(len(cl.Nodes)),
		"--kubectl-path=" + filepath.Join(b.k8sBin, "kubectl"), "--report-dir=" + out,
	}
	logf, err := os.Create(filepath.Join(out, "ginkgo.log"))
	if err != nil {
		r.err = fmt.Errorf("make ginkgo log: %w", err)
		return r
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = out
	cmd.Stdout = io.MultiWriter(os.Stdout, logf)
	cmd.Stderr = cmd.Stdout
	t0 := time.Now()
	runErr := cmd.Run()
	r.took = time.Since(t0)
	if err := r.readJUnit(); err != nil {
		r.err = errors.Join(fmt.Errorf("ginkgo: %v", runErr), err)
	}
	return r
}

// junitSuites is the part of a JUnit file this reads.
type junitSuites struct {
	Suites []struct {
		Cases []junitCase `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitCase struct {
	Name    string `xml:"name,attr"`
	Status  string `xml:"status,attr"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	Failure *struct {
		Message string `xml:"message,attr"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
	} `xml:"error"`
}

// readJUnit sorts the specs of r.junit into passed, failed and skipped.
// A spec the focus or skip filtered out is left out: its skip message is
// the bare "skipped". So is a suite node ([SynchronizedBeforeSuite], ...)
// that passed: it is no spec; one that failed counts as a failure.
func (r *result) readJUnit() error {
	b, err := os.ReadFile(r.junit)
	if err != nil {
		return fmt.Errorf("read JUnit of the run: %w", err)
	}
	var js junitSuites
	if err := xml.Unmarshal(b, &js); err != nil {
		return fmt.Errorf("parse %s: %w", r.junit, err)
	}
	for _, s := range js.Suites {
		for _, tc := range s.Cases {
			name := strings.TrimPrefix(tc.Name, "[It] ")
			switch {
			case tc.Failure != nil || tc.Error != nil:
				r.failed = append(r.failed, name)
			case suiteNode(name):
			case tc.Skipped != nil:
				if msg := strings.TrimSpace(strings.TrimPrefix(tc.Skipped.Message, "skipped")); msg != "" {
					r.skipped = append(r.skipped, name+" ("+firstLine(msg)+")")
				}
			default:
				r.passed = append(r.passed, name)
			}
		}
	}
	for _, l := range [][]string{r.passed, r.failed, r.skipped} {
		sort.Strings(l)
	}
	return nil
}

// suiteNode reports whether a JUnit case is one of ginkgo's suite nodes,
// named by its kind alone: "[SynchronizedBeforeSuite]", "[ReportAfterSuite] ...".
func suiteNode(name string) bool {
	kind, _, ok := strings.Cut(name, "]")
	return ok && strings.HasPrefix(kind, "[") && strings.HasSuffix(kind, "Suite")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimLeft(s, " -:\n"), "\n")
	return s
}

// printSummary prints, per run, the counts and every failed and skipped
// spec by name; then the specs that passed in every run.
func printSummary(w io.Writer, rs []result) {
	fmt.Fprintln(w, "\n== summary")
	for _, r := range rs {
		fmt.Fprintf(w, "%s, kube-proxy %s, run %d: %d passed, %d failed, %d skipped, %s (%s)\n",
			r.plugin, r.mode, r.run, len(r.passed), len(r.failed), len(r.skipped), r.took.Round(time.Second), r.junit)
		for _, n := range r.failed {
			fmt.Fprintf(w, "  FAILED  %s\n", n)
		}
		for _, n := range r.skipped {
			fmt.Fprintf(w, "  skipped %s\n", n)
		}
		if r.err != nil {
			fmt.Fprintf(w, "  ERROR   %v\n", r.err)
		}
	}
}

// writeSummaryJUnit writes every run's specs as one JUnit file: a suite a
// run, a case a spec.
func writeSummaryJUnit(path string, rs []result) error {
	type caseOut struct {
		Name    string    `xml:"name,attr"`
		Failure *struct{} `xml:"failure"`
		Skipped *struct {
			Message string `xml:"message,attr"`
		} `xml:"skipped"`
	}
	type suiteOut struct {
		Name     string    `xml:"name,attr"`
		Tests    int       `xml:"tests,attr"`
		Failures int       `xml:"failures,attr"`
		Skipped  int       `xml:"skipped,attr"`
		Cases    []caseOut `xml:"testcase"`
	}
	var suites []suiteOut
	for _, r := range rs {
		s := suiteOut{Name: fmt.Sprintf("%s kube-proxy=%s run %d", r.plugin, r.mode, r.run),
			Tests: len(r.passed) + len(r.failed) + len(r.skipped), Failures: len(r.failed), Skipped: len(r.skipped)}
		for _, n := range r.passed {
			s.Cases = append(s.Cases, caseOut{Name: n})
		}
		for _, n := range r.failed {
			s.Cases = append(s.Cases, caseOut{Name: n, Failure: &struct{}{}})
		}
		for _, n := range r.skipped {
			s.Cases = append(s.Cases, caseOut{Name: n, Skipped: &struct {
				Message string `xml:"message,attr"`
			}{"skipped by the spec"}})
		}
		suites = append(suites, s)
	}
	b, err := xml.MarshalIndent(struct {
		XMLName xml.Name   `xml:"testsuites"`
		Suites  []suiteOut `xml:"testsuite"`
	}{Suites: suites}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary JUnit: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("make %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, append([]byte(xml.Header), b...), 0o644); err != nil {
		return fmt.Errorf("write summary JUnit: %w", err)
	}
	return nil
}
