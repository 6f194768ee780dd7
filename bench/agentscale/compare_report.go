package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// comparison is the side-by-side run of the agent and flanneld, or why it
// did not run.
type comparison struct {
	Skipped string            `json:"skipped,omitempty"`
	Error   string            `json:"error,omitempty"` // a failure part-way; Results holds what finished
	Results []contenderResult `json:"results,omitempty"`
	Rows    []row             `json:"rows,omitempty"`
}

// row is one figure of both contenders; lower is better on every row.
type row struct {
	Name      string  `json:"name"`
	Unit      string  `json:"unit"`
	Agent     float64 `json:"agent"`
	Flannel   float64 `json:"flannel"`
	AgentOK   bool    `json:"agent_ok"`   // measured; false: did not converge within the timeout
	FlannelOK bool    `json:"flannel_ok"` // the same for flannel
	Met       bool    `json:"met"`        // the agent at or ahead of flannel
}

// newRow judges one figure: the agent meets the target when it finished
// and took no more than flannel, or flannel did not finish.
func newRow(name, unit string, agent, flannel float64, agentOK, flannelOK bool) row {
	return row{Name: name, Unit: unit, Agent: agent, Flannel: flannel, AgentOK: agentOK, FlannelOK: flannelOK,
		Met: agentOK && (!flannelOK || agent <= flannel)}
}

// compareRows lines up the agent's figures (a) and flannel's (f).
func compareRows(a, f contenderResult) []row {
	conv := func(name string, ac, fc convergence) row {
		return newRow(name, "ms", ac.AfterLastMs, fc.AfterLastMs, ac.Converged, fc.Converged)
	}
	const mib = 1024.0
	return []row{
		newRow(fmt.Sprintf("single create -> route (p50 of %d)", len(a.CreateMs)), "ms", p50(a.CreateMs), p50(f.CreateMs), true, true),
		newRow(fmt.Sprintf("single delete -> route gone (p50 of %d)", len(a.DeleteMs)), "ms", p50(a.DeleteMs), p50(f.DeleteMs), true, true),
		conv(fmt.Sprintf("%d-Node batch -> all routes, after the last create", a.Batch.Changes), a.Batch, f.Batch),
		conv(fmt.Sprintf("churn %d deletes + %d creates -> converged, after the last", a.Churn.Changes/2, a.Churn.Changes/2), a.Churn, f.Churn),
		newRow(fmt.Sprintf("repair: route deleted by hand -> back (p50 of %d)", len(a.RepairMs)), "ms", p50(a.RepairMs), p50(f.RepairMs), true, true),
		newRow("peak RSS (VmHWM) at the end", "MiB", float64(a.PeakRSSKiB)/mib, float64(f.PeakRSSKiB)/mib, true, true),
		newRow("CPU over the churn (utime+stime)", "s", a.ChurnCPUSeconds, f.ChurnCPUSeconds, true, true),
	}
}

// figure formats one side of a row.
func (r row) figure(v float64, ok bool) string {
	prec := 0
	switch {
	case r.Unit != "ms":
		prec = 2
	case v < 100:
		prec = 1 // single changes take a few ms: whole ms would hide the difference
	}
	s := fmt.Sprintf("%.*f %s", prec, v, r.Unit)
	if !ok {
		s = "not within " + s
	}
	return s
}

// ratio is agent over flannel, "-" when it means nothing.
func (r row) ratio() string {
	if !r.AgentOK || !r.FlannelOK || r.Flannel == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r.Agent/r.Flannel)
}

// print writes the side-by-side table.
func (c *comparison) print(out io.Writer) {
	if c == nil {
		return
	}
	fmt.Fprintln(out, "\n== nodebridge-agent beside flanneld (host-gw), the same lab and Node objects, one after the other")
	if c.Skipped != "" {
		fmt.Fprintf(out, "   skipped: %s\n", c.Skipped)
		return
	}
	if c.Error != "" {
		fmt.Fprintf(out, "   FAILED part-way: %s\n", c.Error)
	}
	if len(c.Rows) == 0 {
		return
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintln(w, "FIGURE\tAGENT\tFLANNEL\tAGENT/FLANNEL\tTARGET: AGENT AT OR AHEAD OF FLANNEL")
	for _, r := range c.Rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.figure(r.Agent, r.AgentOK), r.figure(r.Flannel, r.FlannelOK), r.ratio(), metWord(r.Met))
	}
	fmt.Fprintln(w, "\nroutes counted for both: via a gateway into the cluster CIDR, any protocol; seen with")
	for _, res := range c.Results {
		fmt.Fprintf(w, "   %s: proto %s\n", res.Name, strings.Join(res.Protocols, ", "))
	}
}
