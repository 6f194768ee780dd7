package bridge

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strconv"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// PrintResult writes r as the given CNI version, byte for byte what
// types.PrintResult writes. For versions 1.0.0 and 1.1.0 it writes the JSON
// itself: the library marshals the result, decodes it into maps to drop an
// empty "dns" and marshals the maps again, about 0.15 ms of reflection in
// every ADD. Every other version, and any result it does not expect (a nil
// entry, a malformed IP), goes through the library.
func PrintResult(w io.Writer, r *current.Result, version string) error {
	if version == "1.0.0" || version == "1.1.0" {
		if compact, ok := appendResult(nil, r, version); ok {
			var out bytes.Buffer
			if err := json.Indent(&out, compact, "", "    "); err == nil {
				_, err = w.Write(out.Bytes())
				return err
			}
		}
	}
	res, err := r.GetAsVersion(version)
	if err != nil {
		return err
	}
	return res.PrintTo(w)
}

// appendResult appends r as compact JSON with every object's keys sorted,
// as the library's map round trip leaves them, and empty fields omitted as
// its omitempty tags do.
func appendResult(b []byte, r *current.Result, version string) ([]byte, bool) {
	b = append(b, `{"cniVersion":`...)
	b = appendString(b, version)
	ok := true
	if !r.DNS.IsEmpty() {
		b = appendDNS(append(b, `,"dns":`...), r.DNS)
	}
	if len(r.Interfaces) > 0 {
		b = append(b, `,"interfaces":[`...)
		for i, in := range r.Interfaces {
			ok = ok && in != nil && exact(in.Mtu)
			if in != nil {
				b = appendInterface(appendComma(b, i), in)
			}
		}
		b = append(b, ']')
	}
	if len(r.IPs) > 0 {
		b = append(b, `,"ips":[`...)
		for i, ip := range r.IPs {
			var good bool
			b, good = appendIPConfig(appendComma(b, i), ip)
			ok = ok && good
		}
		b = append(b, ']')
	}
	if len(r.Routes) > 0 {
		b = append(b, `,"routes":[`...)
		for i, rt := range r.Routes {
			var good bool
			b, good = appendRoute(appendComma(b, i), rt)
			ok = ok && good
		}
		b = append(b, ']')
	}
	return append(b, '}'), ok
}

func appendInterface(b []byte, in *current.Interface) []byte {
	b = append(b, '{')
	b = appendField(b, "mac", in.Mac)
	b = appendInt(b, "mtu", in.Mtu)
	b = appendString(append(b, `"name":`...), in.Name)
	b = appendField(append(b, ','), "pciID", in.PciID)
	b = appendField(b, "sandbox", in.Sandbox)
	b = appendField(b, "socketPath", in.SocketPath)
	return append(trimComma(b), '}')
}

func appendIPConfig(b []byte, ip *current.IPConfig) ([]byte, bool) {
	if ip == nil || !validIP(ip.Address.IP) || !validIP(ip.Gateway) || (ip.Interface != nil && !exact(*ip.Interface)) {
		return b, false
	}
	b = appendString(append(b, `{"address":`...), ip.Address.String())
	if len(ip.Gateway) > 0 {
		b = appendString(append(b, `,"gateway":`...), ip.Gateway.String())
	}
	if ip.Interface != nil {
		b = strconv.AppendInt(append(b, `,"interface":`...), int64(*ip.Interface), 10)
	}
	return append(b, '}'), true
}

func appendRoute(b []byte, r *types.Route) ([]byte, bool) {
	if r == nil || !validIP(r.Dst.IP) || !validIP(r.GW) || !exact(r.AdvMSS) || !exact(r.MTU) || !exact(r.Priority) ||
		(r.Scope != nil && !exact(*r.Scope)) || (r.Table != nil && !exact(*r.Table)) {
		return b, false
	}
	b = append(b, '{')
	b = appendInt(b, "advmss", r.AdvMSS)
	b = appendString(append(b, `"dst":`...), r.Dst.String())
	if len(r.GW) > 0 {
		b = appendString(append(b, `,"gw":`...), r.GW.String())
	}
	b = appendInt(append(b, ','), "mtu", r.MTU)
	b = appendInt(b, "priority", r.Priority)
	if r.Scope != nil { // a pointer: 0 is written too
		b = append(strconv.AppendInt(append(b, `"scope":`...), int64(*r.Scope), 10), ',')
	}
	if r.Table != nil {
		b = strconv.AppendInt(append(b, `"table":`...), int64(*r.Table), 10)
	}
	return append(trimComma(b), '}'), true
}

func appendDNS(b []byte, d types.DNS) []byte {
	b = append(b, '{')
	b = appendField(b, "domain", d.Domain)
	b = appendList(b, "nameservers", d.Nameservers)
	b = appendList(b, "options", d.Options)
	b = appendList(b, "search", d.Search)
	return append(trimComma(b), '}')
}

// appendField appends "key":"s", when s is not empty, and a comma.
func appendField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return append(appendString(append(appendString(b, key), ':'), s), ',')
}

// appendInt appends "key":n, when n is not 0, and a comma.
func appendInt(b []byte, key string, n int) []byte {
	if n == 0 {
		return b
	}
	return append(strconv.AppendInt(append(appendString(b, key), ':'), int64(n), 10), ',')
}

func appendList(b []byte, key string, list []string) []byte {
	if len(list) == 0 {
		return b
	}
	b = append(appendString(b, key), ":["...)
	for i, s := range list {
		b = appendString(appendComma(b, i), s)
	}
	return append(b, "],"...)
}

// appendString appends s as a JSON string. Plain ASCII is written as is;
// anything else goes through encoding/json, for its escapes, after the
// library's round trip has turned each invalid UTF-8 byte into U+FFFD
// (which the []rune conversion does too).
func appendString(b []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(string([]rune(s))) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendComma(b []byte, i int) []byte {
	if i > 0 {
		return append(b, ',')
	}
	return b
}

func trimComma(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == ',' {
		return b[:len(b)-1]
	}
	return b
}

// exact reports whether n survives the library's round trip through a
// float64 unchanged, as every port, MTU or index does.
func exact(n int) bool {
	return -1<<53 <= n && n <= 1<<53
}

// validIP reports whether ip marshals: empty (omitted), or 4 or 16 bytes.
func validIP(ip net.IP) bool {
	return len(ip) == 0 || len(ip) == net.IPv4len || len(ip) == net.IPv6len
}
