package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// pod is a watched pod with its Ready condition set to ready.
func pod(name string, ready corev1.ConditionStatus) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:   corev1.PodSpec{NodeName: "node-1"},
		Status: corev1.PodStatus{PodIP: "10.244.1.9", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}}
}

func TestWaitReady(t *testing.T) {
	tests := []struct {
		name      string
		events    func(w *watch.FakeWatcher)
		createErr error
		wantErr   string
		wantReady []string
	}{
		{
			name: "first Ready of each pod counts, not-Ready ignored",
			events: func(w *watch.FakeWatcher) {
				w.Add(pod("a", corev1.ConditionFalse))
				w.Modify(pod("a", corev1.ConditionTrue))
				w.Modify(pod("a", corev1.ConditionTrue))
				w.Modify(pod("b", corev1.ConditionTrue))
			},
			wantReady: []string{"a", "b"},
		},
		{
			name:      "a failed create ends the wait",
			events:    func(w *watch.FakeWatcher) {},
			createErr: errors.New("create pod ps-1-01: forbidden"),
			wantErr:   "forbidden",
		},
		{
			name:    "a closed watch ends it",
			events:  func(w *watch.FakeWatcher) { w.Modify(pod("a", corev1.ConditionTrue)); w.Stop() },
			wantErr: "watch ended with 1 of 2 pods Ready",
		},
		{
			name:    "an error event ends it",
			events:  func(w *watch.FakeWatcher) { w.Error(&metav1.Status{Message: "too old"}) },
			wantErr: "ERROR event",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			w := watch.NewFake()
			createDone := make(chan error, 1)
			createDone <- tt.createErr
			go tt.events(w)
			t0 := time.Now()
			ready, err := waitReady(ctx, w, 2, createDone)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("waitReady: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range tt.wantReady {
				p, ok := ready[name]
				if !ok || p.node != "node-1" || p.ip != "10.244.1.9" || p.at.Before(t0) {
					t.Errorf("pod %s: %+v (seen %v)", name, p, ok)
				}
			}
			if len(ready) != len(tt.wantReady) {
				t.Errorf("ready %v, want %v", ready, tt.wantReady)
			}
		})
	}
}

func TestBenchPodSpreadsOverNodes(t *testing.T) {
	p := benchPod(3, 4, "node-2")
	if p.Name != "ps-3-04" || p.Labels["podstart-round"] != "3" || p.Spec.NodeSelector["kubernetes.io/hostname"] != "node-2" {
		t.Errorf("pod %s labels %v selector %v", p.Name, p.Labels, p.Spec.NodeSelector)
	}
	if c := p.Spec.Containers[0]; c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("image pull policy %q: no registry is reachable", c.ImagePullPolicy)
	}
}
