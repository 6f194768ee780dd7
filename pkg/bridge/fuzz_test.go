package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// corpusDir is the hostile-input corpus the integration tests run through
// the binary; its cases seed the fuzzer.
const corpusDir = "../../testdata/corpus"

// FuzzParse feeds Parse, and ParseFor in the other modes, arbitrary stdin
// and pod environment. Neither may ever panic; every error must wrap a
// sentinel cmd maps to a CNI code and say something; a config Parse
// accepts must pass Validate again and, written back out as JSON, parse to
// the same config. What decodeFields decodes
// must be what json.Unmarshal decodes.
func FuzzParse(f *testing.F) {
	seeds := corpusSeeds(f)
	if len(seeds) < 50 {
		f.Fatalf("%d seeds from %s: the corpus is missing", len(seeds), corpusDir)
	}
	for _, s := range seeds {
		f.Add(s.stdin, s.pod.ContainerID, s.pod.IfName, s.pod.Args)
	}
	f.Fuzz(func(t *testing.T, stdin []byte, id, ifName, args string) {
		if opensFile(stdin) {
			t.Skip("ipam.resolvConf set: Parse would open whatever file it names, as root")
		}
		var fast, want Config
		if fast.decodeFields(stdin) {
			if err := json.Unmarshal(stdin, &want); err != nil || !reflect.DeepEqual(fast, want) {
				t.Fatalf("decodeFields gave %+v, json.Unmarshal %+v (%v)", fast, want, err)
			}
		}
		p := Pod{ContainerID: id, Netns: "/var/run/netns/nb-fuzz", IfName: ifName, Args: args}
		for _, m := range []Mode{ModeCheck, ModeStatus, ModeRelease} {
			if _, err := ParseFor(m, stdin, p); err != nil {
				wantSentinel(t, err)
			}
		}
		c, err := Parse(stdin, p)
		if err != nil {
			wantSentinel(t, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal parsed config: %v", err)
		}
		c2, err := Parse(again, p)
		if err != nil {
			t.Fatalf("config Parse accepted, written out, no longer parses: %v\n%s", err, again)
		}
		if out, _ := json.Marshal(c2); !bytes.Equal(out, again) {
			t.Fatalf("config changed meaning when written out and parsed again:\n%s\n%s", again, out)
		}
	})
}

// wantSentinel fails t unless err carries a message and a sentinel.
func wantSentinel(t *testing.T, err error) {
	t.Helper()
	if strings.TrimSpace(err.Error()) == "" {
		t.Fatalf("error with an empty message: %#v", err)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error wraps no sentinel, so cmd would answer 999: %v", err)
}

// opensFile reports whether Parse would open a file for stdin: only
// ipam.resolvConf does. Decoding as Parse does (case-insensitive keys,
// escapes) finds it however it is spelled. A fuzzer must not have a root
// process open device files of its choosing; the corpus covers resolvConf.
func opensFile(stdin []byte) bool {
	var c struct {
		IPAM struct {
			ResolvConf string `json:"resolvConf"`
		} `json:"ipam"`
	}
	return json.Unmarshal(stdin, &c) == nil && c.IPAM.ResolvConf != ""
}

// seed is one corpus case as Parse sees it.
type seed struct {
	stdin []byte
	pod   Pod
}

// corpusSeeds reads every case of the corpus: its stdin with the
// placeholders filled with harmless values, and the CNI_CONTAINERID,
// CNI_IFNAME and CNI_ARGS its header sets.
func corpusSeeds(f *testing.F) []seed {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*.case"))
	if err != nil {
		f.Fatal(err)
	}
	fill := strings.NewReplacer("@NAME@", "nb-fuzz", "@BRIDGE@", "nbfuzz0", "@DATADIR@", "/nonexistent/nb-fuzz",
		"@POD_NETNS@", "/var/run/netns/nb-fuzz", "@NODE_NETNS@", "/proc/self/ns/net",
		"@FILE@", "/nonexistent/file", "@DIR@", "/nonexistent/dir", "@FIFO@", "/nonexistent/fifo",
		"@PAD@", strings.Repeat("a", 1024), "@DEEP@", strings.Repeat("[", 10001)+strings.Repeat("]", 10001))
	var seeds []seed
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		s := seed{pod: Pod{ContainerID: "ctr-fuzz", IfName: "eth0"}}
		for len(b) > 0 && b[0] == '#' {
			var line []byte
			line, b, _ = bytes.Cut(b, []byte("\n"))
			if kv, ok := strings.CutPrefix(string(line), "# env: "); ok {
				applyEnv(&s.pod, fill.Replace(kv))
			}
		}
		s.stdin = []byte(fill.Replace(string(b)))
		seeds = append(seeds, s)
	}
	return seeds
}

// applyEnv applies one KEY=VALUE of a case's header to p.
func applyEnv(p *Pod, kv string) {
	k, v, _ := strings.Cut(kv, "=")
	switch k {
	case "CNI_CONTAINERID":
		p.ContainerID = v
	case "CNI_IFNAME":
		p.IfName = v
	case "CNI_ARGS":
		p.Args = v
	}
}
