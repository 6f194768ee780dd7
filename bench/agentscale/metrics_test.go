package main

import (
	"os"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP nodebridge_agent_peers Other Nodes with podCIDRs.
# TYPE nodebridge_agent_peers gauge
nodebridge_agent_peers 999
nodebridge_agent_reconcile_duration_seconds_sum 0.25
nodebridge_agent_reconcile_duration_seconds_count 12
apiserver_request_total{code="200",resource="nodes",verb="LIST"} 3 1700000000000
weird{path="a\"b,c}",x="y\\z\n"} 1.5e-3
not a metric line
broken{code="200" 4
`
	got := parseMetrics(text)
	if len(got) != 5 {
		t.Fatalf("parsed %d samples, want 5: %+v", len(got), got)
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nodebridge_agent_peers", nil, 999},
		{"nodebridge_agent_reconcile_duration_seconds_count", nil, 12},
		{"apiserver_request_total", map[string]string{"verb": "LIST", "resource": "nodes"}, 3},
		{"apiserver_request_total", map[string]string{"verb": "WATCH"}, 0},
		{"weird", map[string]string{"path": `a"b,c}`, "x": "y\\z\n"}, 1.5e-3},
	}
	for _, tt := range tests {
		if v := sum(got, tt.name, tt.labels); v != tt.want {
			t.Errorf("sum(%s, %v) = %v, want %v", tt.name, tt.labels, v, tt.want)
		}
	}
}

func TestNodeRequests(t *testing.T) {
	text := `apiserver_request_total{resource="nodes",verb="LIST",code="200"} 2
apiserver_request_total{resource="nodes",verb="WATCH",code="200"} 1
apiserver_request_total{resource="nodes",verb="POST",code="201"} 1000
apiserver_request_total{resource="nodes",verb="DELETE",code="200"} 100
apiserver_request_total{resource="nodes",subresource="status",verb="PATCH",code="200"} 1
apiserver_request_total{resource="nodes",verb="GET",code="200"} 4
apiserver_request_total{resource="pods",verb="LIST",code="200"} 50
apiserver_longrunning_requests{resource="nodes",verb="WATCH"} 2
apiserver_longrunning_requests{resource="pods",verb="WATCH"} 9
`
	got := nodeRequests(parseMetrics(text))
	want := serverNodeRequests{ListWatch: 3, OpenWatches: 2, Other: 5, Admin: 1100}
	if got != want {
		t.Errorf("nodeRequests = %+v, want %+v", got, want)
	}
	base := serverNodeRequests{ListWatch: 1, OpenWatches: 1, Other: 1, Admin: 100}
	if d := got.minus(base); d != (serverNodeRequests{ListWatch: 2, OpenWatches: 2, Other: 4, Admin: 1000}) {
		t.Errorf("minus = %+v: want counters subtracted and the open-watch gauge kept", d)
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    memory
		wantErr bool
	}{
		{"both", "Name:\tnodebridge-agent\nVmHWM:\t   35100 kB\nVmRSS:\t   32700 kB\nThreads:\t9\n", memory{VmRSSKiB: 32700, VmHWMKiB: 35100}, false},
		{"missing HWM", "VmRSS:\t 1 kB\n", memory{}, true},
		{"bad unit", "VmRSS:\t 1 MB\nVmHWM:\t 1 kB\n", memory{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus(tt.text)
			if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
				t.Errorf("parseStatus = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	// A name with a space and a parenthesis, as /proc shows it.
	const tail = " S 1 2 3 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 500 1000 200"
	tests := []struct {
		name, text string
		want       float64
		ok         bool
	}{
		{"plain", "1234 (flanneld)" + tail, 3.25, true},
		{"odd name", "1234 (a b) c)" + tail, 3.25, true},
		{"no name end", "1234 (flanneld" + tail, 0, false},
		{"too short", "1234 (flanneld) S 1 2 3", 0, false},
		{"not a number", "1234 (x) S 1 2 3 0 -1 4194560 100 0 0 0 x 75", 0, false},
	}
	for _, tt := range tests {
		got, err := parseStat(tt.text)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%s: parseStat = %v, %v; want %v, ok %v", tt.name, got, err, tt.want, tt.ok)
		}
	}
}

func TestReadCPUSelf(t *testing.T) {
	if _, err := readCPU(os.Getpid()); err != nil {
		t.Fatalf("readCPU of this process: %v", err)
	}
}
