package ipam

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// parseResolvConf reads the DNS settings of a resolv.conf-style file: the
// nameserver, domain, search and options lines; anything else is ignored,
// as the reference does.
func parseResolvConf(path string) (DNS, error) {
	var dns DNS
	f, err := os.Open(path)
	if err != nil {
		return dns, err // the caller names ipam.resolvConf; the PathError names the file
	}
	defer f.Close() // read-only: a close error loses nothing
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], ";") {
			continue
		}
		switch fields[0] {
		case "nameserver":
			dns.Nameservers = append(dns.Nameservers, fields[1])
		case "domain":
			dns.Domain = fields[1]
		case "search":
			dns.Search = append(dns.Search, fields[1:]...)
		case "options":
			dns.Options = append(dns.Options, fields[1:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return dns, fmt.Errorf("read %s: %w", path, err)
	}
	return dns, nil
}
