package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/nodebridge/nodebridge/pkg/bridge"
)

// The CNI protocol side of the plugin: the call from the environment and
// stdin, the VERSION answer, the cniVersion each verb accepts, and the
// error object on stdout. It answers as the CNI library's skel does (the
// same variables required, the same codes), but stdin is decoded once, by
// bridge.Decode, where skel decodes it twice before the plugin does, and
// names are checked by bridge without skel's regular expressions: about
// 0.15 ms and 20 page faults of every call, in a process exec'd per pod.

// supported are the spec versions the plugin speaks.
var supported = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// call is one invocation: the verb, the pod from the environment (none for
// GC and STATUS, which have no attachment) and the network config.
type call struct {
	command string
	pod     bridge.Pod
	stdin   []byte
}

// envVars are the variables a verb cannot run without (CNI spec,
// "Parameters"), in the order an error lists them.
var envVars = []struct {
	name  string
	verbs []string
}{
	{"CNI_CONTAINERID", []string{"ADD", "CHECK", "DEL"}},
	{"CNI_NETNS", []string{"ADD", "CHECK"}},
	{"CNI_IFNAME", []string{"ADD", "CHECK", "DEL"}},
	{"CNI_PATH", []string{"ADD", "CHECK", "DEL", "GC", "STATUS"}},
}

// minVersion is the spec version that brought a verb younger than ADD
// and DEL.
var minVersion = map[string]string{"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}

// verbs maps each CNI_COMMAND but VERSION to its implementation.
var verbs = map[string]func(*call) error{
	"ADD": cmdAdd, "DEL": cmdDel, "CHECK": cmdCheck, "GC": cmdGC, "STATUS": cmdStatus,
}

// serve answers the call the environment and stdin describe and returns
// the process's exit status: 0, or 1 with a CNI error object on stdout.
func serve(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(getenv, stdin, stdout, stderr)
	if err == nil {
		return 0
	}
	te, ok := err.(*types.Error)
	if !ok {
		te = cniError(err).(*types.Error)
	}
	b, _ := json.MarshalIndent(te, "", "    ") // a types.Error always marshals
	fmt.Fprintf(stdout, "%s\n", b)
	return 1
}

// dispatch runs the call: VERSION is answered without reading stdin; a
// run by hand, with no CNI_COMMAND, is told what this is.
func dispatch(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	command := getenv("CNI_COMMAND")
	switch command {
	case "":
		fmt.Fprintf(stderr, "nodebridge %s: CNI bridge plugin with built-in host-local IPAM\nCNI protocol versions supported: %s\n",
			buildVersion, strings.Join(supported, ", "))
		return nil
	case "VERSION":
		if err := version.PluginSupports(supported...).Encode(stdout); err != nil {
			return types.NewError(types.ErrIOFailure, fmt.Sprintf("write the VERSION answer: %v", err), "")
		}
		return nil
	}
	verb, ok := verbs[command]
	if !ok {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("unknown CNI_COMMAND: %v", command), "")
	}
	var missing []string
	for _, v := range envVars {
		if slices.Contains(v.verbs, command) && getenv(v.name) == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		return types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("required env variables [%s] missing", strings.Join(missing, ",")), "")
	}
	data, err := io.ReadAll(io.LimitReader(stdin, bridge.MaxConfigSize+1)) // more is refused by Decode, by size
	if err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("read the network config from stdin: %v", err), "")
	}
	c := &call{command: command, stdin: data}
	if command != "GC" && command != "STATUS" {
		c.pod = bridge.Pod{ContainerID: getenv("CNI_CONTAINERID"), Netns: getenv("CNI_NETNS"),
			IfName: getenv("CNI_IFNAME"), Args: getenv("CNI_ARGS")}
	}
	return verb(c)
}

// checkVersion refuses a cniVersion the plugin does not speak, or older
// than the verb. A config without one is 0.1.0, as the spec's first
// version had none.
func checkVersion(command, v string) error {
	if v == "" {
		v = "0.1.0"
	}
	if min := minVersion[command]; min != "" {
		ok, err := version.GreaterThanOrEqualTo(v, min)
		if err != nil {
			return types.NewError(types.ErrDecodingFailure, fmt.Sprintf("cniVersion %q: %v", v, err), "")
		}
		if !ok {
			return types.NewError(types.ErrIncompatibleCNIVersion, fmt.Sprintf("config version does not allow %s", command),
				fmt.Sprintf("cniVersion is %q; %s needs %s or later", v, command, min))
		}
	}
	if !slices.Contains(supported, v) {
		return types.NewError(types.ErrIncompatibleCNIVersion, "incompatible CNI versions",
			fmt.Sprintf("cniVersion is %q, plugin supports %q", v, supported))
	}
	return nil
}
