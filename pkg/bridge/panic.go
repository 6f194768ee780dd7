package bridge

import (
	"fmt"
	"runtime/debug"

	"github.com/containernetworking/plugins/pkg/ns"
)

// PanicError is a panic recovered in this package and returned as an
// error, so that an ADD in progress is undone and the runtime gets a CNI
// error (cmd answers 999) rather than a Go trace. Stack is where it
// happened, for cmd to print to stderr.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// catchPanic, deferred by a function with a named error result, turns a
// panic of that function into the result. A function that undoes on error
// defers it after its undo, so that it runs first.
func catchPanic(err *error) {
	if r := recover(); r != nil {
		*err = &PanicError{Value: r, Stack: debug.Stack()}
	}
}

// nsDo runs f in n. ns.Do runs f on a goroutine of its own, where no
// caller's recover reaches: a panic there would end the process without an
// answer or an undo, so it is caught there and returned as a *PanicError.
func nsDo(n ns.NetNS, f func() error) error {
	return n.Do(func(ns.NetNS) (err error) {
		defer catchPanic(&err)
		return f()
	})
}
