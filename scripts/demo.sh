#!/usr/bin/env bash
# demo.sh: shows nodebridge doing a pod's networking end to end, inside
# network namespaces it makes and removes again; the machine's own network is
# never touched. Run as root after `make build` (`make demo` does both).
#
#   outside netns (198.18.0.2/24, no route to pods)
#        | veth
#   node netns: uplink 198.18.0.1/24, bridge cni0 with 10.244.0.1/24
#        | veth            | veth
#   pod-a netns: eth0   pod-b netns: eth0
#
# The outside has no route back to 10.244.0.0/24, so a reply that reaches a
# pod proves the node masqueraded the request.
set -euo pipefail
cd "$(dirname "$0")/.."

plugin="$PWD/bin/nodebridge"
network=nodebridge-demo
uplink=nbup0
id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
node=nb-demo-node-$id
outside=nb-demo-out-$id
pods=(nb-demo-a-$id nb-demo-b-$id)
work=$(mktemp -d /tmp/nodebridge-demo.XXXXXX)
created=()
current="setup"

cleanup() {
	local rc=$?
	for ((i = ${#created[@]} - 1; i >= 0; i--)); do
		ip netns del "${created[i]}" 2>/dev/null || echo "demo: could not delete netns ${created[i]}" >&2
	done
	rm -rf "$work"
	if [ "$rc" -ne 0 ]; then
		echo "demo: FAILED in step: $current (exit $rc)" >&2
	else
		echo "demo: every step passed; namespaces and temp files removed"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { current="$*"; printf '\n==== %s ====\n' "$*"; }
show() { echo "+ $*"; "$@"; }
fail() { echo "demo: $*" >&2; exit 1; }
in_node() { ip netns exec "$node" "$@"; }

# netconf prints the network config; an argument adds one more top-level member.
netconf() {
	cat <<EOF
{
  "cniVersion": "1.1.0",
  "name": "$network",
  "type": "nodebridge",
  "bridge": "cni0",
  "isGateway": true,
  "ipMasq": true,
  "ipam": {
    "type": "host-local",
    "subnet": "10.244.0.0/24",
    "routes": [{ "dst": "0.0.0.0/0" }],
    "dataDir": "$work/ipam"
  }${1:+,
  $1}
}
EOF
}

# cni COMMAND POD CONF runs the plugin in the node netns as a runtime does.
cni() {
	in_node env CNI_COMMAND="$1" CNI_CONTAINERID="demo-$2" CNI_NETNS="/var/run/netns/$2" \
		CNI_IFNAME=eth0 CNI_PATH="$(dirname "$plugin")" "$plugin" <"$3"
}

new_netns() {
	ip netns add "$1"
	created+=("$1")
	ip netns exec "$1" ip link set lo up
}

pod_ip() { ip -n "$1" -4 -br addr show dev eth0 | awk '{ split($3, a, "/"); print a[1] }'; }

[ "$(id -u)" -eq 0 ] || fail "needs root (it makes network namespaces)"
[ -x "$plugin" ] || fail "$plugin not found: run make build (make demo does)"
netconf >"$work/net.conf"

step "Make the node, outside and pod network namespaces"
new_netns "$node"
new_netns "$outside"
for p in "${pods[@]}"; do new_netns "$p"; done
show in_node ip link add "$uplink" type veth peer name eth0 netns "$outside"
show in_node ip addr add 198.18.0.1/24 dev "$uplink"
show in_node ip link set "$uplink" up
show ip -n "$outside" addr add 198.18.0.2/24 dev eth0
show ip -n "$outside" link set eth0 up
# As on a hardened node: only the plugin's own FORWARD rules may carry pod traffic.
show in_node iptables -w -P FORWARD DROP
echo "config given to the plugin:"
cat "$work/net.conf"

for p in "${pods[@]}"; do
	step "ADD $p"
	cni ADD "$p" "$work/net.conf" | tee "$work/$p.result"
done

step "Addresses, routes and bridge ports"
show in_node ip -br addr
show in_node ip route
show in_node bridge link
for p in "${pods[@]}"; do
	show ip -n "$p" -br addr
	show ip -n "$p" route
done

step "Rules in the node"
show in_node iptables-save

a=${pods[0]} b=${pods[1]}
ip_a=$(pod_ip "$a") ip_b=$(pod_ip "$b")
step "Ping pod to pod ($ip_a <-> $ip_b)"
show ip netns exec "$a" ping -c1 -W2 "$ip_b"
show ip netns exec "$b" ping -c1 -W2 "$ip_a"

step "Ping pod to gateway (10.244.0.1)"
show ip netns exec "$a" ping -c1 -W2 10.244.0.1

step "Ping pod to outside (198.18.0.2, which has no route to the pods)"
show ip netns exec "$a" ping -c1 -W2 198.18.0.2
show ip netns exec "$b" ping -c1 -W2 198.18.0.2
masq=$(in_node iptables-save -c -t nat | grep -e '-j MASQUERADE' || true)
echo "MASQUERADE rule with its [packets:bytes] counter:"
echo "$masq"
packets=$(echo "$masq" | sed -n 's/^\[\([0-9]*\):.*/\1/p' | awk '{ n += $1 } END { print n + 0 }')
[ "$packets" -gt 0 ] || fail "the MASQUERADE rule counted no packet"

for p in "${pods[@]}"; do
	step "CHECK $p (prevResult = its ADD result)"
	netconf "\"prevResult\": $(cat "$work/$p.result")" >"$work/$p.check"
	cni CHECK "$p" "$work/$p.check"
	echo "CHECK passed"
done

for p in "${pods[@]}"; do
	step "DEL $p"
	cni DEL "$p" "$work/net.conf"
	echo "DEL passed"
done

step "Nothing is left"
# DEL answers with the pair down; its reaper deletes it just after (docs/configuration.md, Configuration).
pod_veths() { in_node ip -br link show type veth | awk '{ print $1 }' | grep -v "^$uplink@" || true; }
for _ in $(seq 50); do
	[ -z "$(pod_veths)" ] && break
	sleep 0.1
done
show in_node ip -br link
veths=$(pod_veths)
[ -z "$veths" ] || fail "veths left in the node 5 s after DEL: $veths"
echo "no pod veth in the node"
allocs=$(ls "$work/ipam/$network" 2>/dev/null | grep -v -e '^lock$' -e '^last_reserved_ip' || true)
[ -z "$allocs" ] || fail "allocations left in $work/ipam/$network: $allocs"
echo "no allocation file in $work/ipam/$network"
rules=$(in_node iptables-save | grep -e 'NB-' || true)
[ -z "$rules" ] || fail "rules left in the node: $rules"
echo "no NB- chain or jump in the node's iptables-save"
current="cleanup"
