package ipam

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// maxResolvConf bounds what is read of a resolv.conf; real ones are tiny.
const maxResolvConf = 64 << 10

// parseResolvConf reads the DNS settings of a resolv.conf-style file: the
// nameserver, domain, search and options lines; anything else is ignored,
// as the reference does. Only a regular file is read, and only its first
// 64 KiB, so a config naming a FIFO or a device cannot hang the plugin.
func parseResolvConf(path string) (DNS, error) {
	var dns DNS
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return dns, err // the caller names ipam.resolvConf; the PathError names the file
	}
	defer f.Close() // read-only: a close error loses nothing
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return dns, fmt.Errorf("%s: not a regular file", path)
	}
	sc := bufio.NewScanner(io.LimitReader(f, maxResolvConf))
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
