#!/bin/sh
# Removes nodebridge from a cluster installed with deploy/nodebridge.yaml,
# with kubectl only (no ssh to the nodes):
#
#   scripts/uninstall-cluster.sh
#
# 1. Rolls the DaemonSet out once more, on every node at once, as its own
#    uninstall, with the image and flags it runs with: the init container
#    removes the binaries it installed into /opt/cni/bin (those listed in
#    .nodebridge-installed); the agent, given the host's
#    /var/lib/cni/networks for this run only, runs --uninstall --hold,
#    removing the routes to the other nodes' pods (proto 78), its FORWARD
#    accepts, the conflist, and, once no pod is left, the bridge and the
#    network's IPAM state; then it answers ready.
# 2. Deletes every object of the manifest.
#
# Delete the pods on the pod network first (drain the nodes, or delete
# their workloads): a pod left running keeps its address, veth and the
# bridge, and its kubelet can no longer run the plugin to remove them.
set -eu
ns=kube-system
ds=nodebridge-agent

name=$(kubectl -n "$ns" get daemonset "$ds" -o jsonpath='{.spec.template.spec.containers[0].name}')
if [ "$name" != agent ]; then
	echo "daemonset $ns/$ds: first container is \"$name\", want \"agent\"" >&2
	exit 1
fi
kubectl -n "$ns" patch daemonset "$ds" --type=json -p '[
 {"op": "add", "path": "/spec/template/spec/initContainers/0/env", "value": [{"name": "NODEBRIDGE_UNINSTALL", "value": "1"}]},
 {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--uninstall"},
 {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--hold"},
 {"op": "add", "path": "/spec/template/spec/volumes/-", "value": {"name": "ipam-data", "hostPath": {"path": "/var/lib/cni/networks", "type": "DirectoryOrCreate"}}},
 {"op": "add", "path": "/spec/template/spec/containers/0/volumeMounts/-", "value": {"name": "ipam-data", "mountPath": "/var/lib/cni/networks"}},
 {"op": "replace", "path": "/spec/updateStrategy/rollingUpdate/maxUnavailable", "value": "100%"}
]'
kubectl -n "$ns" rollout status daemonset "$ds" --timeout=10m
kubectl delete --ignore-not-found \
	-n "$ns" daemonset/"$ds" configmap/nodebridge-config serviceaccount/"$ds" role/"$ds" rolebinding/"$ds"
kubectl delete --ignore-not-found clusterrole/"$ds" clusterrolebinding/"$ds"
# Events were granted by a Role in default until the policy Events moved
# that grant to the ClusterRole; an upgraded cluster may still hold it.
kubectl delete --ignore-not-found -n default role/nodebridge-agent-events rolebinding/nodebridge-agent-events
echo "nodebridge removed"
