package agent

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestParsePodSubnet(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
		err        string
	}{
		{name: "IPv4", text: "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/12\n",
			want: []string{"10.244.0.0/16"}},
		{name: "dual stack, spaces, unmasked", text: "networking:\n  podSubnet: \"10.244.0.1/16, fd00:10:244::/56\"\n",
			want: []string{"10.244.0.0/16", "fd00:10:244::/56"}},
		{name: "no podSubnet", text: "networking:\n  serviceSubnet: 10.96.0.0/12\n", err: "networking.podSubnet: empty"},
		{name: "not YAML", text: "networking: [", err: "decode ConfigMap kube-system/kubeadm-config ClusterConfiguration"},
		{name: "not a prefix", text: "networking:\n  podSubnet: 10.244.0.0\n", err: `networking.podSubnet "10.244.0.0"`},
		{name: "everything", text: "networking:\n  podSubnet: 0.0.0.0/0\n", err: "networking.podSubnet 0.0.0.0/0: zero length"},
		{name: "IPv6 everything", text: "networking:\n  podSubnet: 10.244.0.0/16,::/0\n", err: "networking.podSubnet ::/0: zero length"},
		{name: "v4-mapped", text: "networking:\n  podSubnet: ::ffff:10.244.0.0/112\n", err: "IPv4-mapped"},
		{name: "two IPv4", text: "networking:\n  podSubnet: 10.244.0.0/16,10.245.0.0/16\n", err: "a second IPv4 prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePodSubnet(tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("got %v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, pfx(t, tc.want...)) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// kubeadmConfig is the ConfigMap kubeadm writes, with the given ClusterConfiguration.
func kubeadmConfig(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubeadm-config"}, Data: data}
}

func TestDiscoverClusterCIDRs(t *testing.T) {
	ctx := context.Background()
	if _, err := discoverClusterCIDRs(ctx, fake.NewClientset()); err == nil || !strings.Contains(err.Error(), "get ConfigMap kube-system/kubeadm-config") {
		t.Errorf("no ConfigMap: got %v", err)
	}
	cs := fake.NewClientset(kubeadmConfig(map[string]string{"ClusterStatus": "x"}))
	if _, err := discoverClusterCIDRs(ctx, cs); err == nil || !strings.Contains(err.Error(), "no key ClusterConfiguration") {
		t.Errorf("no ClusterConfiguration: got %v", err)
	}
	cs = fake.NewClientset(kubeadmConfig(map[string]string{"ClusterConfiguration": "networking:\n  podSubnet: 10.244.0.0/16,fd00:10:244::/56\n"}))
	got, err := discoverClusterCIDRs(ctx, cs)
	if err != nil || !slices.Equal(got, pfx(t, "10.244.0.0/16", "fd00:10:244::/56")) {
		t.Errorf("got %v, %v", got, err)
	}
}

// Discovery is tried on every call until it succeeds, then never again.
func TestClusterCIDRsRetry(t *testing.T) {
	calls := 0
	fail := errors.New("connection refused")
	c := clusterCIDRs{discover: func(context.Context) ([]netip.Prefix, error) {
		calls++
		if calls < 3 {
			return nil, fail
		}
		return pfx(t, "10.244.0.0/16"), nil
	}}
	for i := 1; i <= 2; i++ {
		if _, err := c.get(context.Background()); !errors.Is(err, errClusterCIDRUnknown) || !errors.Is(err, fail) {
			t.Fatalf("call %d: got %v", i, err)
		}
	}
	for range 3 {
		if got, err := c.get(context.Background()); err != nil || !slices.Equal(got, pfx(t, "10.244.0.0/16")) {
			t.Fatalf("got %v, %v", got, err)
		}
	}
	if calls != 3 {
		t.Errorf("discover called %d times, want 3", calls)
	}
	if _, err := (&clusterCIDRs{}).get(context.Background()); !errors.Is(err, errClusterCIDRUnknown) {
		t.Errorf("no flag, no API: got %v", err)
	}
}
