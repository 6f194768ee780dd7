package bridge

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/pkg/ipam"
)

// jsonFields names every JSON key of Config, and ipamJSONFields every key
// of ipam.Config, as their tags spell them, each with the address of its
// own field, and nothing else.
func TestJSONFieldsMatchTags(t *testing.T) {
	var c Config
	checkJSONFields(t, &c, c.jsonFields())
	var ic ipam.Config
	checkJSONFields(t, &ic, ipamJSONFields(&ic))
	var rc ipam.RangeConfig
	checkJSONFields(t, &rc, rangeJSONFields(&rc))
	var rt ipam.RouteConfig
	checkJSONFields(t, &rt, routeJSONFields(&rt))
}

// checkJSONFields holds fields to the JSON tags of the struct ptr points to.
func checkJSONFields(t *testing.T, ptr any, fields []jsonField) {
	t.Helper()
	byName := map[string]any{}
	for _, f := range fields {
		if _, dup := byName[f.name]; dup {
			t.Errorf("key %q listed twice", f.name)
		}
		byName[f.name] = f.dst
	}
	v := reflect.ValueOf(ptr).Elem()
	tagged := 0
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			t.Errorf("%s field %s has no JSON name: decodeObject would not see it", v.Type(), v.Type().Field(i).Name)
			continue
		}
		tagged++
		dst, ok := byName[name]
		if !ok {
			t.Errorf("%s key %q (field %s) missing from the field list", v.Type(), name, v.Type().Field(i).Name)
			continue
		}
		if want := v.Field(i).Addr().Interface(); dst != want {
			t.Errorf("%s key %q decodes into %T at %p, want field %s at %p", v.Type(), name, dst, dst, v.Type().Field(i).Name, want)
		}
	}
	if len(fields) != tagged {
		t.Errorf("the field list has %d keys, %s tags %d", len(fields), v.Type(), tagged)
	}
}

// decode gives what json.Unmarshal gives, and the same error, for
// well-formed configs, every spelling and order of keys, and every kind of
// broken input that decodeFields hands back to json.Unmarshal.
func TestDecodeMatchesUnmarshal(t *testing.T) {
	tests := []struct {
		name, in string
		fast     bool // decodeFields decodes it itself
	}{
		{"typical", `{"cniVersion":"1.0.0","name":"n","type":"nodebridge","bridge":"cni0","isGateway":true,"ipMasq":true,"hairpinMode":true,
			"ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}]}}`, true},
		{"keys in any case", `{"CNIVERSION":"1.1.0","Name":"n","IPAM":{"Subnet":"10.0.0.0/24"},"hairpinmode":true,"MTU":1400}`, true},
		{"repeated key: last wins", `{"name":"a","mtu":1400,"name":"b","NAME":"c"}`, true},
		{"repeated object: merged", `{"ipam":{"subnet":"10.0.0.0/24"},"ipam":{"type":"host-local"},"dns":{"domain":"x"},"dns":{"search":["y"]}}`, true},
		{"nulls", `{"ipam":null,"mtu":null,"vlanTrunk":null,"prevResult":null,"dns":null}`, true},
		{"object then null", `{"ipam":{"subnet":"10.0.0.0/24"},"ipam":null}`, true},
		{"unknown keys skipped", `{"name":"n","capabilities":{"ips":true},"other":[1,2,{"a":null}],"ipam":{"x":1}}`, true},
		{"everything else", `{"isDefaultGateway":true,"forceAddress":true,"ipMasqBackend":"nftables","nonMasqueradeCIDRs":["10.0.0.0/8"],
			"promiscMode":false,"vlan":5,"vlanTrunk":[{"id":3},{"minID":4,"maxID":9}],"preserveDefaultVlan":true,"macspoofchk":true,
			"enabledad":true,"disableContainerInterface":false,"portIsolation":true,"args":{"cni":{"ips":["10.0.0.5"],"mac":"02:00:00:00:00:01"}},
			"runtimeConfig":{"ips":["10.0.0.6/24"],"mac":"02:00:00:00:00:02","ipRanges":[[{"subnet":"10.1.0.0/24"}]]},
			"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.5/24"}]},"cni.dev/valid-attachments":[{"containerID":"c","ifname":"eth0"}]}`, true},
		{"ipam: every key, any case, repeated", `{"ipam":{"TYPE":"host-local","subnet":"10.0.0.0/24","rangestart":"10.0.0.10","RangeEnd":"10.0.0.20",
			"gateway":"10.0.0.1","ranges":[[{"subnet":"10.1.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0","table":5}],"dataDir":"/d","resolvConf":"/r",
			"subnet":"10.0.1.0/24","ipam":{"x":1}}}`, true},
		{"ipam with whitespace", "{\"ipam\" :\n\t { \"type\" : \"host-local\" } }", true},
		{"ipam null then object", `{"ipam":null,"ipam":{"type":"host-local"}}`, true},
		{"ipam not an object", `{"ipam":"host-local"}`, false},
		{"ipam field type error", `{"ipam":{"dataDir":5}}`, false},
		{"ipam key outside ASCII", `{"ipam":{"ſubnet":"10.0.0.0/24"}}`, false},
		{"ranges and routes, every key, any case", `{"ipam":{"ranges":[[{"subnet":"10.0.0.0/24","RANGESTART":"10.0.0.5","rangeEnd":"10.0.0.9","gateway":"10.0.0.1","x":[1]}],
			[{"subnet":"fd00::/64"},{"subnet":"fd01::/64"}]],"routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.1","mtu":1400,"advmss":1360,"priority":5,"table":0,"Scope":253},{"dst":"::/0"}]}}`, true},
		{"empty ranges and routes", `{"ipam":{"ranges":[],"routes":[ ]}}`, true},
		{"empty range set", `{"ipam":{"ranges":[[]]}}`, true},
		{"null ranges and routes", `{"ipam":{"ranges":null,"routes":null}}`, true},
		{"null range set", `{"ipam":{"ranges":[null,[{"subnet":"10.0.0.0/24"}]]}}`, false},
		{"null range", `{"ipam":{"ranges":[[null]],"routes":[null]}}`, false},
		{"repeated ranges merge", `{"ipam":{"ranges":[[{"subnet":"a","gateway":"g"},{"subnet":"b"}]],"ranges":[[{"subnet":"c"}]],"ranges":[[{"subnet":"d"},{}]]}}`, true},
		{"repeated route table", `{"ipam":{"routes":[{"dst":"0.0.0.0/0","table":5,"TABLE":6}]}}`, true},
		{"route table null", `{"ipam":{"routes":[{"dst":"0.0.0.0/0","table":5,"table":null}]}}`, true},
		{"route table a string", `{"ipam":{"routes":[{"dst":"0.0.0.0/0","table":"5"}]}}`, false},
		{"ranges not nested", `{"ipam":{"ranges":[{"subnet":"10.0.0.0/24"}]}}`, false},
		{"range set broken", `{"ipam":{"ranges":[[{"subnet":"10.0.0.0/24"},]]}}`, false},
		{"routes trailing garbage", `{"ipam":{"routes":[{"dst":"0.0.0.0/0"}]x}}`, false},
		{"escaped key", `{"na\u006de":"n"}`, false},
		{"escaped value", `{"name":"a\"b\u00e9","bridge":"c\\d"}`, true},
		{"value outside ASCII", `{"name":"nét"}`, true},
		{"invalid UTF-8 in a value", "{\"name\":\"n\xffx\"}", true},
		{"control character in a value", "{\"name\":\"a\tb\"}", false},
		{"brackets inside strings", `{"name":"{[","prevResult":{"a":"]}\"}"},"other":["}",{"x":"]"}]}`, true},
		{"integers", `{"mtu":-0,"vlan":0}`, true},
		{"integer with a leading zero", `{"mtu":01}`, false},
		{"integer with an exponent", `{"mtu":1e3}`, false},
		{"integer too big", `{"mtu":99999999999999999999}`, false},
		{"bool spelled wrong", `{"ipMasq":True}`, false},
		{"unknown key, broken value", `{"other":[1,],"name":"n"}`, false},
		{"unknown key, bare word", `{"other":nul,"name":"n"}`, false},
		{"missing value", `{"name":}`, false},
		{"missing colon", `{"name" "n"}`, false},
		{"unclosed", `{"name":"n"`, false},
		{"unclosed string", `{"name":"n`, false},
		{"no comma", `{"name":"n" "type":"t"}`, false},
		{"empty object", `{}`, true},
		{"whitespace around", " \n\t{\"name\" : \"n\" }\n ", true},
		{"type error", `{"name":"n","mtu":"1400"}`, false},
		{"nested type error", `{"ipam":{"ranges":[[{"subnet":5}]]}}`, false},
		{"fraction into int", `{"vlan":1.5}`, false},
		{"syntax error", `{"name":"n",}`, false},
		{"trailing data", `{"name":"n"} {}`, false},
		{"trailing garbage", `{"name":"n"}x`, false},
		{"not an object", `["name"]`, false},
		{"null", `null`, false},
		{"string", `"x"`, false},
		{"key outside ASCII", `{"ſtuff":1,"K":2,"name":"n"}`, false},
		{"too deep", `{"prevResult":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fast Config
			if got := fast.decodeFields([]byte(tt.in)); got != tt.fast {
				t.Errorf("decodeFields = %v, want %v", got, tt.fast)
			}
			var want Config
			wantErr := json.Unmarshal([]byte(tt.in), &want)
			got, err := decode([]byte(tt.in))
			switch {
			case wantErr != nil && err == nil:
				t.Fatalf("decode accepted what json.Unmarshal rejects (%v): %+v", wantErr, got)
			case wantErr != nil:
				if want := describeJSONError([]byte(tt.in), wantErr); !strings.Contains(err.Error(), want) {
					t.Errorf("decode error %q, want json.Unmarshal's %q", err, want)
				}
			case err != nil:
				t.Fatalf("decode: %v; json.Unmarshal accepts it", err)
			case !reflect.DeepEqual(*got, want):
				t.Errorf("decode = %+v\nwant       %+v", *got, want)
			}
		})
	}
}
