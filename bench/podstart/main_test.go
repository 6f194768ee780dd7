package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr []string // each must be in the error; none: no error
	}{
		{"defaults", nil, nil},
		{"reversed order", []string{"-networks", "reference,nodebridge"}, nil},
		{"unknown network", []string{"-networks", "nodebridge,flannel"}, []string{`"flannel"`}},
		{"network twice", []string{"-networks", "reference,reference"}, []string{`"reference"`}},
		{"every problem at once", []string{"-nodes", "0", "-pods", "0", "-timeout", "0s"},
			[]string{"-nodes 0", "-pods 0", "-timeout 0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args)
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("parseFlags(%q): %v", tt.args, err)
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("parseFlags(%q) = %v, want an error with %q", tt.args, err, w)
				}
			}
		})
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	t.Setenv("NODEBRIDGE_TOOLS", "/tools")
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.tools != "/tools" || o.pods != 30 || o.nodes != 3 || o.jsonPath != "_out/bench-podstart.json" ||
		!reflect.DeepEqual(o.networks, []string{"nodebridge", "reference"}) {
		t.Errorf("defaults %+v", o)
	}
}
