module github.com/nodebridge/nodebridge

go 1.26

require github.com/containernetworking/cni v1.3.1

require (
	github.com/containernetworking/plugins v1.9.1 // indirect
	github.com/onsi/ginkgo/v2 v2.25.1 // indirect
	github.com/onsi/gomega v1.38.1 // indirect
	github.com/vishvananda/netlink v1.3.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/sys v0.35.0 // indirect
)
