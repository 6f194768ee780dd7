package main

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestFlannelNetConf(t *testing.T) {
	b, err := flannelNetConf()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Network string
		Backend struct{ Type string }
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("net-conf %s: %v", b, err)
	}
	if got.Network != clusterCIDR.String() || got.Backend.Type != "host-gw" {
		t.Errorf("net-conf %s: want Network %s and Backend.Type host-gw", b, clusterCIDR)
	}
}

func TestFlannelArgs(t *testing.T) {
	got := flannelArgs("/x/flanneld", "/d/admin.kubeconfig", "/t/flannel")
	want := []string{"/x/flanneld", "--kube-subnet-mgr", "--kubeconfig-file=/d/admin.kubeconfig", "--iface=eth0",
		"--net-config-path=/t/flannel/net-conf.json", "--subnet-file=/t/flannel/subnet.env"}
	if !slices.Equal(got, want) {
		t.Errorf("flannelArgs:\n got %q\nwant %q", got, want)
	}
	env := flannelEnv("scale-0000")
	for _, kv := range []string{"NODE_NAME=scale-0000", "POD_NAMESPACE=kube-flannel", "KUBECONFIG="} {
		if !slices.Contains(env, kv) {
			t.Errorf("flannelEnv %q: no %s", env, kv)
		}
	}
}
