package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// Limits issue 17 sets for a busy node.
const (
	wantBusyOverIdle = 1.5 // nodebridge ADD and DEL p50, busy node / idle node of as many pods
	wantBusySpeedup  = 3.0 // reference busy / nodebridge busy, ADD and DEL p50
)

// busyReport is the busy rounds: how their load was made, their rows, and
// each row against the idle round of as many pods.
type busyReport struct {
	Services int         `json:"services"`
	Resync   ms          `json:"resync_every_ms"`
	Pods     int         `json:"pods"`
	Shapes   []string    `json:"shapes"`
	Rounds   []roundRow  `json:"rounds"`
	Ratios   []busyRatio `json:"ratios"`
}

// busyRatio compares one plugin's row in a busy round with its row in the
// idle round of as many pods and, for a nodebridge row, with the
// reference's in the same busy round.
type busyRatio struct {
	Round           string  `json:"round"`      // "busy-ipt-30"
	Idle            string  `json:"idle_round"` // "seq-30"
	Plugin          string  `json:"plugin"`
	AddBusyOverIdle float64 `json:"add_p50_busy_over_idle"`
	DelBusyOverIdle float64 `json:"del_p50_busy_over_idle,omitempty"`                      // 0: no DEL
	AddRefOverNB    float64 `json:"add_p50_reference_busy_over_nodebridge_busy,omitempty"` // nodebridge rows only
	DelRefOverNB    float64 `json:"del_p50_reference_busy_over_nodebridge_busy,omitempty"`
}

// idleOf names the idle round a busy round is compared with.
func idleOf(s roundSpec) string { return roundName(s.Pods, 1) }

// busyRatios compares every row of the busy rounds in specs with the idle
// rows; a row whose plugin has no idle row is left out.
func busyRatios(busy, idle []roundRow, specs []roundSpec) []busyRatio {
	var out []busyRatio
	for _, s := range specs {
		ref := find(busy, s.Name, nameReference)
		for _, r := range busy {
			in := find(idle, idleOf(s), r.Plugin)
			if r.Round != s.Name || in == nil {
				continue
			}
			x := busyRatio{Round: s.Name, Idle: in.Round, Plugin: r.Plugin, AddBusyOverIdle: ratio(r.Add.P50, in.Add.P50)}
			if r.Del != nil && in.Del != nil {
				x.DelBusyOverIdle = ratio(r.Del.P50, in.Del.P50)
			}
			if isNodebridge(r.Plugin) && ref != nil && ref.Del != nil && r.Del != nil {
				x.AddRefOverNB, x.DelRefOverNB = ratio(ref.Add.P50, r.Add.P50), ratio(ref.Del.P50, r.Del.P50)
			}
			out = append(out, x)
		}
	}
	return out
}

func isNodebridge(plugin string) bool { return plugin == nameNodebridge || plugin == nameNodebridgeNFT }

// busyTargets checks, per busy round and nodebridge row, that a busy node
// costs nodebridge little more than an idle one, and that the reference
// stays well behind it there. A figure from rows with failed calls, or
// from a load that did not churn (no sync, or a failed one), never meets
// its target.
func busyTargets(busy, idle []roundRow, specs []roundSpec) []target {
	var out []target
	for _, s := range specs {
		ref := find(busy, s.Name, nameReference)
		for _, name := range nodebridgeNames() {
			nb, in := find(busy, s.Name, name), find(idle, idleOf(s), name)
			if nb == nil || nb.Del == nil {
				continue
			}
			if in != nil && in.Del != nil {
				clean := churned(nb) && in.Failures == 0
				for _, v := range []struct {
					verb       string
					busy, idle ms
				}{{"ADD", nb.Add.P50, in.Add.P50}, {"DEL", nb.Del.P50, in.Del.P50}} {
					t := atMost(fmt.Sprintf("%s: %s p50 %s busy / idle", s.Name, v.verb, name), ratio(v.busy, v.idle), wantBusyOverIdle, clean)
					t.Detail = fmt.Sprintf("%s idle %v ms, busy %v ms; %s", in.Round, v.idle, v.busy, loadDetail(nb))
					out = append(out, t)
				}
			}
			if ref != nil && ref.Del != nil {
				clean := churned(nb) && churned(ref)
				out = append(out,
					atLeast(fmt.Sprintf("%s: ADD p50 reference busy / %s busy", s.Name, name), ratio(ref.Add.P50, nb.Add.P50), wantBusySpeedup, clean),
					atLeast(fmt.Sprintf("%s: DEL p50 reference busy / %s busy", s.Name, name), ratio(ref.Del.P50, nb.Del.P50), wantBusySpeedup, clean))
			}
		}
	}
	return out
}

// churned reports whether r's calls all succeeded in a node whose load
// synced throughout, and never failed to.
func churned(r *roundRow) bool {
	return r.Failures == 0 && r.Load != nil && r.Load.Syncs > 0 && r.Load.SyncFailures == 0
}

func loadDetail(r *roundRow) string {
	if r.Load == nil {
		return "no load"
	}
	return fmt.Sprintf("%d %s rules, %d syncs, %d failed", r.Load.Rules, r.Load.Shape, r.Load.Syncs, r.Load.SyncFailures)
}

// print writes the busy rounds beside their idle rounds: per row the load
// and its syncs, ADD and DEL p50 idle and busy; then reference busy over
// each nodebridge row busy.
func (b *busyReport) print(w *tabwriter.Writer, idle []roundRow) {
	fmt.Fprintf(w, "\n== Busy node: kube-proxy's rules for %d Services in every node (%s), one Service rewritten every %v\n",
		b.Services, strings.Join(b.Shapes, ", "), time.Duration(b.Resync))
	fmt.Fprint(w, "   during the ADDs and DELs; idle = the same plugin in the sequential round of as many pods (ms; load rules as loaded)\n")
	fmt.Fprint(w, "round\tplugin\tload rules\tsyncs\tsync p50\tADD p50 idle\tbusy\tbusy/idle\tbusy p90\tDEL p50 idle\tbusy\tbusy/idle\tbusy p90\tfailed\n")
	for _, x := range b.Ratios {
		r, in := find(b.Rounds, x.Round, x.Plugin), find(idle, x.Idle, x.Plugin)
		del := [4]string{"-", "-", "-", "-"}
		if r.Del != nil && in.Del != nil {
			del = [4]string{in.Del.P50.String(), r.Del.P50.String(), fmt.Sprintf("%.2fx", x.DelBusyOverIdle), r.Del.P90.String()}
		}
		load := [3]string{"-", "-", "-"}
		if r.Load != nil {
			load = [3]string{fmt.Sprint(r.Load.Rules), fmt.Sprint(r.Load.Syncs), r.Load.SyncP50.String()}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%v\t%v\t%.2fx\t%v\t%s\t%s\t%s\t%s\t%d\n", x.Round, x.Plugin, load[0], load[1], load[2],
			in.Add.P50, r.Add.P50, x.AddBusyOverIdle, r.Add.P90, del[0], del[1], del[2], del[3], r.Failures)
	}
	w.Flush()
	fmt.Fprint(w, "round\tnodebridge row\tADD p50 reference busy / nodebridge busy\tDEL p50\n")
	for _, x := range b.Ratios {
		if x.AddRefOverNB > 0 {
			fmt.Fprintf(w, "%s\t%s\t%.2fx\t%.2fx\n", x.Round, x.Plugin, x.AddRefOverNB, x.DelRefOverNB)
		}
	}
	w.Flush()
	for _, r := range b.Rounds {
		if r.FirstError != "" {
			fmt.Fprintf(w, "first failure of %s in %s: %s\n", r.Plugin, r.Round, r.FirstError)
		}
		if r.Load != nil && r.Load.FirstError != "" {
			fmt.Fprintf(w, "%d of the kube-proxy syncs in %s's node in %s failed, the first: %s\n", r.Load.SyncFailures, r.Plugin, r.Round, r.Load.FirstError)
		}
	}
}
