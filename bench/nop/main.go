// Command nop does nothing. make bench execs it the way it execs the plugins,
// so its time is the floor of starting any Go binary on this machine.
package main

func main() {}
