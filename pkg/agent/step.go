package agent

// The steps of a reconcile, the label values of
// nodebridge_agent_reconcile_errors_total{step}.
const (
	stepNodes       = "nodes"        // reading the Node cache
	stepClusterCIDR = "cluster-cidr" // the cluster CIDRs are not known yet
	stepPlan        = "plan"         // own Node, podCIDR or host addresses
	stepUnderlay    = "underlay"     // no underlay link for a family
	stepRules       = "rules"
	stepConflist    = "conflist"
	stepRoutes      = "routes"
	stepTunnels     = "tunnels"     // a VXLAN device or its entries
	stepUnreachable = "unreachable" // host-gw: peers not on-link
	stepOther       = "other"       // not tagged: should not happen
)

// reconcileSteps lists every step, in exposition order: the metric shows
// each, at 0 when it never failed.
func reconcileSteps() []string {
	return []string{stepNodes, stepClusterCIDR, stepPlan, stepUnderlay, stepRules, stepConflist, stepRoutes, stepTunnels, stepUnreachable, stepOther}
}

// stepError is a reconcile failure tagged with the step that failed; its
// message and chain are the wrapped error's.
type stepError struct {
	step string
	err  error
}

func (e stepError) Error() string { return e.err.Error() }
func (e stepError) Unwrap() error { return e.err }

// failedIn tags err with step; nil stays nil, so errors.Join drops it.
func failedIn(step string, err error) error {
	if err == nil {
		return nil
	}
	return stepError{step: step, err: err}
}

// failedSteps lists the steps a reconcile error came from, looking through
// errors.Join but not into a step's own error.
func failedSteps(err error) []string {
	switch e := err.(type) {
	case nil:
		return nil
	case stepError:
		return []string{e.step}
	case interface{ Unwrap() []error }:
		var out []string
		for _, x := range e.Unwrap() {
			out = append(out, failedSteps(x)...)
		}
		return out
	}
	return []string{stepOther}
}
