package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func mustShape(t *testing.T, name string) loadShape {
	t.Helper()
	sh, err := shapeNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	return sh
}

// textChains is what a shape's text says about chains: those it makes,
// those it deletes, and those its rules jump or go to.
type textChains struct {
	made, deleted, targets []string
	rules                  int
}

// The two shapes' texts, read back with a regexp per shape.
func parseText(t *testing.T, shape, text string) textChains {
	t.Helper()
	var made, deleted, target, rule *regexp.Regexp
	switch shape {
	case "iptables":
		made, deleted = regexp.MustCompile(`(?m)^:(\S+) - \[0:0\]$`), regexp.MustCompile(`(?m)^-X (\S+)$`)
		target, rule = regexp.MustCompile(`(?m)-j (KUBE-\S+)`), regexp.MustCompile(`(?m)^-A `)
	case "nftables":
		made, deleted = regexp.MustCompile(`(?m)^add chain ip kube-proxy (\S+)`), regexp.MustCompile(`(?m)^delete chain ip kube-proxy (\S+)$`)
		target, rule = regexp.MustCompile(`(?:goto|jump) ([^\s,}]+)`), regexp.MustCompile(`(?m)^add rule `)
	}
	all := func(re *regexp.Regexp) []string {
		var out []string
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			out = append(out, m[1])
		}
		return out
	}
	return textChains{made: all(made), deleted: all(deleted), targets: all(target), rules: len(rule.FindAllString(text, -1))}
}

// validChain is what each tool takes as a chain name: iptables at most 28
// characters, nft an identifier that may hold / . _ and -.
func validChain(shape, name string) bool {
	if shape == "iptables" {
		return len(name) <= 28 && regexp.MustCompile(`^[A-Z][A-Z0-9-]*$`).MatchString(name)
	}
	return len(name) < 256 && regexp.MustCompile(`^[a-z][a-zA-Z0-9/._-]*$`).MatchString(name)
}

// The whole load: the rules each Service adds, chains named once and
// validly, every jump to a chain the text makes (or a built-in target).
func TestKubeProxyFull(t *testing.T) {
	tests := []struct {
		shape          string
		perService     int
		chainsPerSvc   int
		fixed, fixedCh int
	}{
		{"iptables", 7, 3, 23, 4 + 6},
		{"nftables", 5, 3, 22, 15},
	}
	for _, tt := range tests {
		for _, n := range []int{1, 3, 1500} {
			t.Run(fmt.Sprintf("%s/%d", tt.shape, n), func(t *testing.T) {
				sh := mustShape(t, tt.shape)
				got := parseText(t, tt.shape, string(sh.full(n)))
				if want := tt.fixed + n*tt.perService; got.rules != want || sh.rules(n) != want {
					t.Errorf("%d rules, rules(%d) = %d; want %d", got.rules, n, sh.rules(n), want)
				}
				if want := tt.fixedCh + n*tt.chainsPerSvc; len(got.made) != want {
					t.Errorf("%d chains made, want %d", len(got.made), want)
				}
				checkNames(t, tt.shape, got, n)
			})
		}
	}
}

// checkNames checks that the chains are named validly, once in each table,
// and that every jump goes to one of them.
func checkNames(t *testing.T, shape string, c textChains, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, name := range c.made {
		seen[name]++
		if !validChain(shape, name) {
			t.Errorf("chain name %q not valid for %s", name, shape)
		}
	}
	for name, k := range seen {
		// iptables: the fixed chains KUBE-SERVICES and KUBE-NODEPORTS are in nat and filter.
		if k > 1 && !(shape == "iptables" && k == 2 && (name == "KUBE-SERVICES" || name == "KUBE-NODEPORTS")) {
			t.Errorf("chain %q made %d times", name, k)
		}
	}
	for _, to := range c.targets {
		if seen[to] == 0 {
			t.Errorf("a rule jumps to %q, which the text does not make", to)
		}
	}
	if len(c.deleted) != 0 {
		t.Errorf("the full load deletes chains %v", c.deleted)
	}
}

// A sync of Service 4 at generation g makes its chains of g and deletes
// its endpoints' chains of g-1, which nothing jumps to any more.
func TestKubeProxySync(t *testing.T) {
	for _, shape := range []string{"iptables", "nftables"} {
		for _, gen := range []int{1, 2, 7} {
			t.Run(fmt.Sprintf("%s/gen-%d", shape, gen), func(t *testing.T) {
				sh := mustShape(t, shape)
				s, old := kpService{index: 4, gen: gen}, kpService{index: 4, gen: gen - 1}
				got := parseText(t, shape, string(sh.sync(s)))
				// The Service's own chains: iptables' KUBE-SERVICES entry stays.
				if want := map[string]int{"iptables": 6, "nftables": 5}[shape]; got.rules != want {
					t.Errorf("sync writes %d rules, want %d", got.rules, want)
				}
				var wantDeleted []string
				for j := range endpointsPerService {
					wantDeleted = append(wantDeleted, chainOf(shape, old, j))
					if chainOf(shape, old, j) == chainOf(shape, s, j) {
						t.Errorf("endpoint %d keeps its chain name %s across generations", j, chainOf(shape, s, j))
					}
				}
				if strings.Join(got.deleted, " ") != strings.Join(wantDeleted, " ") {
					t.Errorf("sync deletes %v, want %v", got.deleted, wantDeleted)
				}
				for _, to := range got.targets {
					if slices.Contains(wantDeleted, to) {
						t.Errorf("a rule jumps to %s, which the sync deletes", to)
					}
				}
			})
		}
	}
}

func chainOf(shape string, s kpService, j int) string {
	if shape == "iptables" {
		return s.sepChain(j)
	}
	return s.endpointChain(j)
}

// Each tool takes the texts: checked first (iptables-restore --test,
// nft -c), then loaded in a throwaway netns, where the count of rules is
// the one promised and stays so through syncs that go round the Services
// twice.
func TestKubeProxyLoads(t *testing.T) {
	tests := []struct {
		shape string
		check []string
	}{
		{"iptables", []string{"iptables-restore", "--test", "-w", "--noflush"}},
		{"nftables", []string{"nft", "-c", "-f", "-"}},
	}
	s := newTestNS(t)
	for _, tt := range tests {
		t.Run(tt.shape, func(t *testing.T) {
			const services = 200
			node := mustAdd(t, s, "node")
			sh := mustShape(t, tt.shape)
			checker := sh
			checker.argv = tt.check
			if err := inNetns(node, func() error { return checker.apply(context.Background(), node, sh.full(services)) }); err != nil {
				t.Fatalf("check the full load: %v", err)
			}
			if n, err := sh.count(node); err == nil && n != 0 {
				t.Fatalf("the check alone loaded %d rules", n)
			}
			run, err := sh.install(context.Background(), node, services)
			if err != nil || run.Rules != sh.rules(services) {
				t.Fatalf("install = %+v, %v; want %d rules", run, err, sh.rules(services))
			}
			for k := range 2 * 3 {
				svc := kpService{index: k % 3, gen: k/3 + 1}
				if err := inNetns(node, func() error { return sh.apply(context.Background(), node, sh.sync(svc)) }); err != nil {
					t.Fatalf("sync %d: %v", k, err)
				}
			}
			if n, err := sh.count(node); err != nil || n != sh.rules(services) {
				t.Errorf("after the syncs: %d rules, %v; want %d", n, err, sh.rules(services))
			}
		})
	}
}
