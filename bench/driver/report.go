package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/nodebridge/nodebridge/pkg/rules"
)

// report is everything a run measured: printed as tables, and written as
// JSON for tracking from run to run.
type report struct {
	Time        time.Time   `json:"time"`
	Machine     machine     `json:"machine"`
	Versions    []string    `json:"versions"` // the about lines of nodebridge and the reference plugins
	Network     string      `json:"network"`
	Storage     storage     `json:"datadir_storage"`
	Installed   string      `json:"binaries_installed_in"` // where the execs' copies were (install.go)
	FloorExecs  int         `json:"floor_execs"`
	Floors      floors      `json:"floors"`
	Rounds      []roundRow  `json:"rounds"`         // in an idle node
	Busy        *busyReport `json:"busy,omitempty"` // nil: no busy round
	Ratios      []ratioRow  `json:"ratios"`
	Targets     []target    `json:"targets"`
	IPAMPairs   int         `json:"ipam_pairs_per_fill"`
	IPAM        []scaleRow  `json:"ipam_scale"`
	RootChanges string      `json:"root_netns_and_var_lib_cni_changes"` // empty: untouched, as it must be
	Warnings    []string    `json:"warnings,omitempty"`
}

// writeJSON writes r to path, creating its directory.
func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("make directory for %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}

// print writes the report as tables; times are in milliseconds.
func (r *report) print(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "\n== nodebridge bench, %s: %d CPUs (%s), kernel %s, %s\n", r.Time.Format(time.RFC3339),
		r.Machine.CPUs, r.Machine.Model, r.Machine.Kernel, r.Machine.Go)
	for _, v := range r.Versions {
		fmt.Fprintf(w, "   %s\n", v)
	}
	fmt.Fprintf(w, "   load average at start %s, at end %s; CPU used by other work during the run: %.0f%%\n",
		r.Machine.LoadStart, r.Machine.LoadEnd, 100*r.Machine.OthersShare)
	fmt.Fprintf(w, "   network: %s\n", r.Network)
	fmt.Fprintf(w, "   dataDirs under %s\n", r.Storage)
	fmt.Fprintf(w, "   every binary exec'd is a copy written into %s, as a plugin is installed\n", r.Installed)
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "   WARNING: %s\n", s)
	}
	fmt.Fprintf(w, "\n== Floor: process start, %d execs each (ms)\n\tp50\tp90\tmax\n", r.FloorExecs)
	fmt.Fprintf(w, "do-nothing Go binary\t%v\t%v\t%v\n", r.Floors.Nop.P50, r.Floors.Nop.P90, r.Floors.Nop.Max)
	fmt.Fprintf(w, "nodebridge, no CNI_COMMAND\t%v\t%v\t%v\n", r.Floors.NoCommand.P50, r.Floors.NoCommand.P90, r.Floors.NoCommand.Max)
	w.Flush()
	r.printRounds(w)
	if r.Busy != nil {
		r.Busy.print(w, r.Rounds)
	}
	r.printRatios(w)
	r.printTargets(w)
	r.printIPAM(w)
	if r.RootChanges == "" {
		fmt.Fprintln(w, "\nroot netns, named netns and /var/lib/cni: unchanged")
	} else {
		fmt.Fprintf(w, "\nroot netns, named netns or /var/lib/cni CHANGED during the run:\n%s", r.RootChanges)
	}
}

func (r *report) printRounds(w *tabwriter.Writer) {
	fmt.Fprint(w, "\n== Rounds: N ADDs then N DELs, each a process; sequential rounds take the plugins in turn, call by call\n")
	fmt.Fprint(w, "   (ms; total = the plugin's ADDs and DELs: the sum of its calls when sequential, wall time when parallel;\n")
	fmt.Fprintf(w, "   rules = -A lines of iptables-save and ip6tables-save, for %s plus the rules of nft table inet %s)\n",
		nameNodebridgeNFT, rules.NFTTable)
	fmt.Fprint(w, "round\tplugin\tADD p50\tp90\tmax\tDEL p50\tp90\tmax\ttotal\tops/s\tfirst10\tlast10\trules 0/add/del\tfailed\n")
	for _, x := range r.Rounds {
		del := [3]string{"-", "-", "-"}
		if x.Del != nil {
			del = [3]string{x.Del.P50.String(), x.Del.P90.String(), x.Del.Max.String()}
		}
		rules := fmt.Sprintf("%d/%d/%d", x.Rules.Base, x.Rules.AfterAdd, x.Rules.AfterDel)
		if x.Del == nil {
			rules = fmt.Sprintf("%d/%d/-", x.Rules.Base, x.Rules.AfterAdd)
		}
		fmt.Fprintf(w, "%s\t%s\t%v\t%v\t%v\t%s\t%s\t%s\t%v\t%.0f\t%v\t%v\t%s\t%d\n", x.Round, x.Plugin,
			x.Add.P50, x.Add.P90, x.Add.Max, del[0], del[1], del[2], x.Total, x.OpsPerSec, x.First10, x.Last10, rules, x.Failures)
	}
	w.Flush()
	fmt.Fprint(w, "\n== After the DELs: veths in the node when the last DEL had answered, and ms until none was left\n")
	fmt.Fprint(w, "   (nodebridge's DEL sets the pair down and leaves its deletion, an RCU barrier in the kernel, to a reaper)\n")
	fmt.Fprint(w, "round\tplugin\tveths left\tall gone after\n")
	for _, x := range r.Rounds {
		if x.Veths != nil {
			fmt.Fprintf(w, "%s\t%s\t%d\t%v\n", x.Round, x.Plugin, x.Veths.Left, x.Veths.GoneMs)
		}
	}
	w.Flush()
	for _, x := range r.Rounds {
		if x.FirstError != "" {
			fmt.Fprintf(w, "first failure of %s in %s: %s\n", x.Plugin, x.Round, x.FirstError)
		}
	}
}

func (r *report) printRatios(w *tabwriter.Writer) {
	fmt.Fprint(w, "\n== Ratios (reference / nodebridge row: above 1 means that nodebridge row is faster)\n")
	fmt.Fprint(w, "round\tnodebridge row\tADD p50\tDEL p50\ttotal\tops/s nb/ref\tADD p50 nodebridge / floor-add\n")
	for _, x := range r.Ratios {
		floor := "-"
		if x.FloorAdd > 0 {
			floor = fmt.Sprintf("%.2fx", x.FloorAdd)
		}
		fmt.Fprintf(w, "%s\t%s\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t%s\n", x.Round, x.Plugin, x.AddP50, x.DelP50, x.Total, x.Throughput, floor)
	}
	w.Flush()
	fmt.Fprintf(w, "ADD p50 over the do-nothing binary's start, per round:")
	for _, x := range r.Rounds {
		if slices.Contains(nodebridgeNames(), x.Plugin) {
			fmt.Fprintf(w, " %s %s %.1fx;", x.Round, x.Plugin, ratio(x.Add.P50, r.Floors.Nop.P50))
		}
	}
	fmt.Fprintln(w)
	w.Flush()
}

func (r *report) printTargets(w *tabwriter.Writer) {
	fmt.Fprint(w, "\n== Targets\n")
	for _, t := range r.Targets {
		verdict := "NOT met"
		if t.Met {
			verdict = "target met"
		}
		detail := ""
		if t.Detail != "" {
			detail = "  (" + t.Detail + ")"
		}
		fmt.Fprintf(w, "%s\t%.2f\t%s\t%s%s\n", t.Name, t.Value, t.Want, verdict, detail)
	}
	w.Flush()
}

func (r *report) printIPAM(w *tabwriter.Writer) {
	fmt.Fprintf(w, "\n== IPAM scale: one process per op, %d ADD+DEL pairs per fill of a /16 (ms p50; first = untimed warm-up ADD)\n", r.IPAMPairs)
	fmt.Fprint(w, "allocations\thost-local ADD\tDEL\tfirst\tnodebridge ipam-op ADD\tDEL\tfirst\tref/nb ADD\tref/nb DEL\n")
	for _, x := range r.IPAM {
		ref, nb := x.Reference, x.Nodebridge
		fmt.Fprintf(w, "%d\t%v\t%v\t%v\t%v\t%v\t%v\t%.2fx\t%.2fx\n", x.Fill, ref.Add.P50, ref.Del.P50, ref.First,
			nb.Add.P50, nb.Del.P50, nb.First, ratio(ref.Add.P50, nb.Add.P50), ratio(ref.Del.P50, nb.Del.P50))
	}
	if n := len(r.IPAM); n >= 2 {
		lo, hi := r.IPAM[0], r.IPAM[n-1]
		fmt.Fprintf(w, "%d / %d\t%.2fx\t%.2fx\t\t%.2fx\t%.2fx\n", hi.Fill, lo.Fill,
			ratio(hi.Reference.Add.P50, lo.Reference.Add.P50), ratio(hi.Reference.Del.P50, lo.Reference.Del.P50),
			ratio(hi.Nodebridge.Add.P50, lo.Nodebridge.Add.P50), ratio(hi.Nodebridge.Del.P50, lo.Nodebridge.Del.P50))
	}
	w.Flush()
}
