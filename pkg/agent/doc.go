// Package agent is nodebridge-agent: the per-node daemon that routes pods
// across nodes the host-gw way, with the Kubernetes API as its only source of
// truth. From one informer on Nodes it derives the node's CNI config (its own
// podCIDRs), one route per other Node's podCIDR via that Node's InternalIP
// (route protocol 78, "nodebridge"), and a constant set of FORWARD accept
// rules for the cluster CIDRs; it applies the difference to the host and
// reports readiness on the Node's NetworkUnavailable condition and /readyz.
//
// The CNI plugin never imports this package: it is the only one that pulls
// in client-go.
package agent
