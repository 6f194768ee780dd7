// Package testenv is what nodebridge's tests, demos and benchmarks share
// about the machine they run on:
//   - throwaway network namespaces for nodes and pods (NewNS, NewNode, Run);
//   - the guard of the machine's own state: snapshots of the root netns's
//     network (links, addresses, routes, rules, forwarding), its named netns,
//     the files under /var/lib/cni and what a kubelet node could leave
//     (State, Kubelet, Diff), which Main takes before and after a test binary
//     runs and fails it on any difference;
//   - finding the tools scripts/install-deps.sh installs (FindTool, Tool).
package testenv
