package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// The shipped lists parse, every skip has its reason, and they pick what
// the issue asks for: every sig-network [Conformance] spec, no Serial one.
func TestShippedSelection(t *testing.T) {
	sel, err := readSelection("../../testdata/conformance/focus.txt", "../../testdata/conformance/skip.txt")
	if err != nil {
		t.Fatal(err)
	}
	focus, skip := regexp.MustCompile(sel.focus), regexp.MustCompile(sel.skip)
	tests := []struct {
		spec string
		run  bool
	}{
		{"[sig-network] Services should serve a basic endpoint from pods [Conformance]", true},
		{"[sig-network] Proxy version v1 should proxy through a service and a pod [Conformance]", true},
		{"[sig-network] DNS should provide DNS for services [Conformance]", true},
		{"[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: http [NodeConformance] [Conformance]", true},
		{"[sig-network] Conntrack should be able to preserve UDP traffic when server pod cycles for a NodePort service", true},
		{"[sig-network] HostPort validates that there is no conflict between pods with same hostPort but different hostIP and protocol [LinuxOnly] [Conformance]", true},
		{"[sig-network] Services should work after restarting kube-proxy [Disruptive]", false},
		{"[sig-network] Services should be able to create a functioning NodePort service [Serial]", false},
		{"[sig-network] LoadBalancers should be able to change the type and ports of a TCP service [Slow]", false},
		{"[sig-network] Networking should provide Internet connection for containers [Feature:Networking-IPv4]", false},
		{"[sig-storage] CSI Volumes [Conformance]", false},
	}
	for _, tt := range tests {
		if got := focus.MatchString(tt.spec) && !skip.MatchString(tt.spec); got != tt.run {
			t.Errorf("%s: run %v, want %v", tt.spec, got, tt.run)
		}
	}
}

func TestSkipNeedsReason(t *testing.T) {
	dir := t.TempDir()
	focus, skip := filepath.Join(dir, "focus"), filepath.Join(dir, "skip")
	if err := os.WriteFile(focus, []byte("# comment\n\\[sig-network\\]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(skip, []byte("\\[Serial\\] # own job\n\n\\[Slow\\]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readSelection(focus, skip); err == nil || !strings.Contains(err.Error(), ":3:") {
		t.Errorf("error %v: want one naming line 3, the skip without a reason", err)
	}
	if err := os.WriteFile(skip, []byte("[Serial # own job\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readSelection(focus, skip); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Errorf("error %v: want one naming line 1, a bad regexp", err)
	}
}

func TestReadJUnit(t *testing.T) {
	dir := t.TempDir()
	r := result{junit: filepath.Join(dir, "junit_01.xml")}
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5">
  <testsuite name="Kubernetes e2e suite" tests="5">
    <testcase name="[It] [sig-network] B passes" status="passed"></testcase>
    <testcase name="[sig-network] A passes" status="passed"></testcase>
    <testcase name="[It] [sig-network] C fails" status="failed"><failure message="boom">trace</failure></testcase>
    <testcase name="[It] [sig-network] D skips itself" status="skipped"><skipped message="skipped - Only supported for node OS distro [gci ubuntu]&#xA;more"></skipped></testcase>
    <testcase name="[It] [sig-apps] E filtered out" status="skipped"><skipped message="skipped"></skipped></testcase>
    <testcase name="[SynchronizedBeforeSuite]" status="passed"></testcase>
    <testcase name="[ReportAfterSuite] Kubernetes e2e suite report" status="failed"><failure message="x"></failure></testcase>
  </testsuite>
</testsuites>`
	if err := os.WriteFile(r.junit, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.readJUnit(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"[sig-network] A passes", "[sig-network] B passes"}; !reflect.DeepEqual(r.passed, want) {
		t.Errorf("passed %q, want %q", r.passed, want)
	}
	if want := []string{"[ReportAfterSuite] Kubernetes e2e suite report", "[sig-network] C fails"}; !reflect.DeepEqual(r.failed, want) {
		t.Errorf("failed %q, want %q", r.failed, want)
	}
	if want := []string{"[sig-network] D skips itself (Only supported for node OS distro [gci ubuntu])"}; !reflect.DeepEqual(r.skipped, want) {
		t.Errorf("skipped %q, want %q", r.skipped, want)
	}
	out := filepath.Join(dir, "sum", "summary.xml")
	if err := writeSummaryJUnit(out, []result{r}); err != nil {
		t.Fatal(err)
	}
	back := result{junit: out}
	if err := back.readJUnit(); err != nil {
		t.Fatal(err)
	}
	if len(back.passed) != 2 || len(back.failed) != 2 || len(back.skipped) != 1 {
		t.Errorf("summary read back: %d passed, %d failed, %d skipped; want 2, 2, 1", len(back.passed), len(back.failed), len(back.skipped))
	}
}
