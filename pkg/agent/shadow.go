package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// eventShadowed is the reason of the Event on the own Node while another
// network's CNI config takes precedence over the agent's conflist.
const eventShadowed = "ConflistShadowed"

// shadowing returns the CNI config files of dir that sort before own: a
// runtime (libcni's ConfFiles, containerd, CRI-O) takes the first *.conf,
// *.conflist or *.json by name, so any of them wins over ours. A missing
// dir holds none.
func shadowing(dir, own string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CNI conf dir %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries { // sorted by name
		n := e.Name()
		if n >= own {
			break
		}
		if !e.IsDir() && slices.Contains([]string{".conf", ".conflist", ".json"}, filepath.Ext(n)) {
			out = append(out, n)
		}
	}
	return out, nil
}

// checkShadowing reports, at start and whenever the list changes, the CNI
// config files that sort before the agent's conflist: a log line, the
// metric, and an Event on the own Node. It does not touch readiness: the
// agent's own work is done; which network pods get is the operator's call
// (see docs/multi-node.md, Migrating).
func (a *agent) checkShadowing(nodes []*corev1.Node) {
	own := filepath.Base(a.cfg.confPath())
	names, err := shadowing(a.cfg.CNIConfDir, own)
	if err != nil {
		a.log.Warn("check CNI conf dir", "err", err)
		return
	}
	if a.shadows != nil && slices.Equal(names, *a.shadows) {
		return
	}
	first := a.shadows == nil
	a.shadows = &names
	a.metrics.update(func(m *Metrics) { m.conflistsShadowing = len(names) })
	if len(names) == 0 {
		if !first {
			a.log.Info("no other CNI config sorts before ours any more", "dir", a.cfg.CNIConfDir, "conflist", own)
		}
		return
	}
	a.log.Warn("another CNI config sorts before ours: runtimes use it, not ours", "dir", a.cfg.CNIConfDir,
		"files", names, "conflist", own)
	var node *corev1.Node
	for _, n := range nodes {
		if n.Name == a.cfg.NodeName {
			node = n
		}
	}
	a.events.nodeWarning(a.cfg.NodeName, node, eventShadowed,
		fmt.Sprintf("CNI config %s sorts before %s in the conf dir: runtimes use it, so new pods do not get nodebridge",
			strings.Join(names, ", "), own))
}

// nodeWarning queues a Warning Event on the own Node (n, when in the
// cache, gives its UID); a full queue drops it, counted.
func (r *eventRecorder) nodeWarning(name string, n *corev1.Node, reason, msg string) {
	if r == nil {
		return
	}
	ref := corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: name}
	if n != nil {
		ref.UID = n.UID
	}
	ev := r.warning(ref, reason, msg)
	select {
	case r.queue <- ev:
	default:
		r.metrics.update(func(m *Metrics) { m.apiErrors++; m.eventsFailed++ })
	}
}
