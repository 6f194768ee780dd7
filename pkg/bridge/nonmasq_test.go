package bridge

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/nodebridge/nodebridge/pkg/rules"
)

func TestParseNonMasquerade(t *testing.T) {
	for _, tc := range []struct {
		name string
		list string
		want []string
	}{
		{"absent", "", nil},
		{"empty", `"nonMasqueradeCIDRs": []`, nil},
		{"both families, host bits masked", `"nonMasqueradeCIDRs": ["10.244.7.1/16", "fd00:10:244::/56"]`,
			[]string{"10.244.0.0/16", "fd00:10:244::/56"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields := []string{`"ipMasq": true`}
			if tc.list != "" {
				fields = append(fields, tc.list)
			}
			c := mustParse(t, conf(fields...), testPod)
			var want []netip.Prefix
			for _, s := range tc.want {
				want = append(want, netip.MustParsePrefix(s))
			}
			if !slices.Equal(c.NonMasquerade, want) {
				t.Errorf("NonMasquerade = %v, want %v", c.NonMasquerade, want)
			}
			if n := ruleNetwork(c, nil); !slices.Equal(n.NonMasquerade, want) {
				t.Errorf("ruleNetwork NonMasquerade = %v, want %v", n.NonMasquerade, want)
			}
		})
	}
}

func TestParseNonMasqueradeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, list string
		frags      []string
	}{
		{"no prefix length", `["10.244.0.0"]`, []string{`nonMasqueradeCIDRs[0] "10.244.0.0": not a CIDR`}},
		{"second of two", `["10.244.0.0/16", "10.300.0.0/16"]`, []string{`nonMasqueradeCIDRs[1] "10.300.0.0/16"`}},
		{"IPv4 past /32", `["10.0.0.0/33"]`, []string{`nonMasqueradeCIDRs[0] "10.0.0.0/33"`}},
		{"IPv6 past /128", `["fd00::/129"]`, []string{`nonMasqueradeCIDRs[0] "fd00::/129"`}},
		{"zone", `["fe80::%eth0/64"]`, []string{`nonMasqueradeCIDRs[0] "fe80::%eth0/64"`}},
		{"empty string", `[""]`, []string{`nonMasqueradeCIDRs[0] ""`}},
		{"every bad entry", `["x", "10.1.0.0/16", "y/8"]`, []string{`nonMasqueradeCIDRs[0] "x"`, `nonMasqueradeCIDRs[2] "y/8"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(conf(`"ipMasq": true`, `"nonMasqueradeCIDRs": `+tc.list), testPod)
			wantOnly(t, err, ErrInvalid, tc.frags...)
		})
	}
	_, err := Parse(conf(`"nonMasqueradeCIDRs": "10.0.0.0/8"`), testPod)
	wantOnly(t, err, ErrDecode, "field nonMasqueradeCIDRs: cannot use string")
}

// fixedStamp is a Fingerprinter whose rules never change.
type fixedStamp string

var _ rules.Fingerprinter = fixedStamp("")

func (s fixedStamp) Stamp(context.Context) (string, error) { return string(s), nil }

func (s fixedStamp) Fingerprint(context.Context, rules.Network) (string, error) {
	return "fp " + string(s), nil
}

// TestStampCoversNonMasquerade: the record that lets an ADD skip the rules
// must not survive a change of nonMasqueradeCIDRs, whose rules then differ.
func TestStampCoversNonMasquerade(t *testing.T) {
	c := mustParse(t, conf(`"ipMasq": true`, `"nonMasqueradeCIDRs": ["10.244.0.0/16"]`, dualStack), testPod)
	base := stamp(t.Context(), &Host{}, fixedStamp("gen 7"), ruleNetwork(c, nil))
	other := mustParse(t, conf(`"ipMasq": true`, `"nonMasqueradeCIDRs": ["10.244.0.0/16", "fd00:10:244::/56"]`, dualStack), testPod)
	if changed := stamp(t.Context(), &Host{}, fixedStamp("gen 7"), ruleNetwork(other, nil)); changed == base {
		t.Errorf("stamp %q unchanged by another nonMasqueradeCIDRs", base)
	}
	if again := stamp(t.Context(), &Host{}, fixedStamp("gen 7"), ruleNetwork(c, nil)); again != base {
		t.Errorf("stamp %q then %q for the same config", base, again)
	}
	fp := fingerprint(t.Context(), &Host{}, fixedStamp("gen 7"), ruleNetwork(c, nil))
	if changed := fingerprint(t.Context(), &Host{}, fixedStamp("gen 7"), ruleNetwork(other, nil)); changed == fp {
		t.Errorf("fingerprint %q unchanged by another nonMasqueradeCIDRs", fp)
	}
}

// TestAddPassesNonMasquerade: ADD ensures the rules with the parsed list.
func TestAddPassesNonMasquerade(t *testing.T) {
	tn := newTestNet(t, `,"nonMasqueradeCIDRs":["10.0.0.0/8","fd00::/8"]`)
	if err := tn.add(tn.pod(t, "ctr1")); err != nil {
		t.Fatalf("Add: %v", err)
	}
	n, ok := tn.rules.Network("unit")
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	if !ok || !slices.Equal(n.NonMasquerade, want) {
		t.Errorf("rules ensured: %+v, %v; want NonMasquerade %v", n, ok, want)
	}
}
