package rules

import (
	"context"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestHostChoiceStampWithoutChoosing: a config without ipMasqBackend gets
// the host's choice, but its stamp, all an ADD with unchanged rules needs,
// is taken without probing the host, and equals the stamp of the backend
// the host would get. The fingerprint chooses, and names the choice.
func TestHostChoiceStampWithoutChoosing(t *testing.T) {
	if iptablesVariant() != variantNFT {
		t.Skip("iptables here is not the nf_tables variant: the stamp is empty and chooses nothing")
	}
	name := testenv.NewNode(t)
	b, err := Select("", nil)
	if err != nil {
		t.Fatal(err)
	}
	hc, ok := b.(*hostChoice)
	if !ok {
		t.Fatalf("Select(\"\") = %T, want *hostChoice", b)
	}
	n := Network{Name: "hc", Subnets: nil}
	err = ns.WithNetNSPath(testenv.Path(name), func(ns.NetNS) error {
		ctx := context.Background()
		before, err := hc.Stamp(ctx)
		if err != nil || before == "" {
			t.Fatalf("Stamp = %q, %v; want the generation", before, err)
		}
		if hc.chosen != nil {
			t.Error("Stamp chose the backend; it must not need to")
		}
		fp, err := hc.Fingerprint(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if hc.chosen == nil || !strings.HasPrefix(fp, hc.name+" ") {
			t.Errorf("Fingerprint = %q with choice %q: want the choice made and named first", fp, hc.name)
		}
		chosen, err := hc.chosen.Stamp(ctx)
		if err != nil || chosen != before {
			t.Errorf("chosen backend's stamp %q (%v), want the unchosen one, %q", chosen, err, before)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
