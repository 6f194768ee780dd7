package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestSummaryKeepsPingStatistics(t *testing.T) {
	out := `PING 10.244.1.2 (10.244.1.2): 56 data bytes
64 bytes from 10.244.1.2: seq=0 ttl=62 time=0.134 ms

--- 10.244.1.2 ping statistics ---
2 packets transmitted, 2 packets received, 0% packet loss
round-trip min/avg/max = 0.134/0.146/0.159 ms
`
	want := "2 packets transmitted, 2 packets received, 0% packet loss; round-trip min/avg/max = 0.134/0.146/0.159 ms"
	if got := summary(out); got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
}

func TestAllReady(t *testing.T) {
	ready := func(ip string, s corev1.ConditionStatus) corev1.Pod {
		return corev1.Pod{Status: corev1.PodStatus{PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: s}}}}
	}
	tests := []struct {
		name string
		pods []corev1.Pod
		want bool
	}{
		{"all Ready", []corev1.Pod{ready("10.244.1.2", "True"), ready("10.244.2.2", "True")}, true},
		{"one short", []corev1.Pod{ready("10.244.1.2", "True")}, false},
		{"one not Ready", []corev1.Pod{ready("10.244.1.2", "True"), ready("10.244.2.2", "False")}, false},
		{"one without IP", []corev1.Pod{ready("10.244.1.2", "True"), ready("", "True")}, false},
		{"no condition yet", []corev1.Pod{ready("10.244.1.2", "True"), {}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := allReady(tt.pods, 2); got != tt.want {
				t.Errorf("allReady = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDemoPodsRepelEachOther(t *testing.T) {
	p := demoPod("demo-1")
	terms := p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if len(terms) != 1 || terms[0].TopologyKey != "kubernetes.io/hostname" ||
		terms[0].LabelSelector.MatchLabels["app"] != p.Labels["app"] {
		t.Errorf("anti-affinity %+v for labels %v: want one per node", terms, p.Labels)
	}
}

func TestIndent(t *testing.T) {
	if got := indent("a\nb\n"); got != "  a\n  b\n" {
		t.Errorf("indent = %q", got)
	}
}
