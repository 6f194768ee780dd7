// Package agent is nodebridge-agent: the per-node daemon that routes pods
// across nodes the host-gw way, with the Kubernetes API as its only source of
// truth. From one informer on Nodes it derives the node's CNI config (its own
// podCIDRs), one route per other Node's podCIDR via that Node's InternalIP
// (route protocol 78, "nodebridge"), and a constant set of FORWARD accept
// rules for the cluster CIDRs; it applies the difference to the host and
// reports readiness on the Node's NetworkUnavailable condition and /readyz.
//
// The cluster CIDRs are known, never guessed: --cluster-cidr (at most one
// per family), else networking.podSubnet of the ConfigMap
// kube-system/kubeadm-config. Until they are known the agent routes nothing,
// writes nothing and is not ready. They alone make the conflist's
// nonMasqueradeCIDRs and the FORWARD accepts for the cluster CIDRs (through
// pkg/rules, in the backend the plugin uses).
//
// A Node's podCIDR is untrusted input. A peer's is routed only when it is a
// plain prefix (not /0, not IPv4-mapped) inside the cluster CIDR of its
// family, overlaps neither the own podCIDRs, nor a prefix connected on this
// node, nor a default route's gateway, nor an older Node's routed podCIDR,
// and its Node's InternalIP is on-link. Every rejection is logged once,
// counted in nodebridge_agent_podcidr_rejected{reason} and recorded as a
// PodCIDRRejected Warning Event on the Node. An own podCIDR outside the
// cluster CIDRs keeps the node not ready.
//
// /healthz fails when the reconcile loop has completed no pass for
// max(3 resync periods, 1 min); every command it runs has a deadline.
//
// Package routes installs the routes; this package decides which, and
// drives it. cmd/nodebridge-agent owns the flags and the
// client-go configuration, and hands the agent its dependencies in Deps.
// The CNI plugin never imports this package: only the agent links client-go.
package agent
