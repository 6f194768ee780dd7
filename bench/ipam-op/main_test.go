package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// op runs one ipam-op call against dataDir and returns what it printed.
func op(t *testing.T, dataDir, cmd, id string) (string, error) {
	t.Helper()
	conf := fmt.Sprintf(`{"name":"net","ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/16"}]],"dataDir":%q}}`, dataDir)
	env := map[string]string{"CNI_COMMAND": cmd, "CNI_CONTAINERID": id, "CNI_IFNAME": "eth0"}
	var out bytes.Buffer
	err := run(strings.NewReader(conf), &out, func(k string) string { return env[k] })
	return out.String(), err
}

// ADD writes a record in host-local's layout and prints the address; DEL
// removes it; a second ADD moves on round-robin, as host-local does.
func TestAddDel(t *testing.T) {
	data := t.TempDir()
	out, err := op(t, data, "ADD", "c1")
	if err != nil || out != "10.88.0.2/16\n" {
		t.Fatalf("ADD printed %q, %v; want 10.88.0.2/16", out, err)
	}
	record := filepath.Join(data, "net", "10.88.0.2")
	if b, err := os.ReadFile(record); err != nil || string(b) != "c1\r\neth0" {
		t.Errorf("record %s holds %q (%v), want \"c1\\r\\neth0\"", record, b, err)
	}
	if _, err := op(t, data, "DEL", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Errorf("record %s still there after DEL: %v", record, err)
	}
	if out, err := op(t, data, "ADD", "c2"); err != nil || out != "10.88.0.3/16\n" {
		t.Errorf("second ADD printed %q, %v; want 10.88.0.3/16", out, err)
	}
}

func TestRejects(t *testing.T) {
	tests := []struct {
		name, cmd, id, want string
	}{
		{"unknown command", "CHECK", "c1", "want ADD or DEL"},
		{"no container ID", "ADD", "", "container ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := op(t, t.TempDir(), tt.cmd, tt.id); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}
