// Package glsbench measures Go goroutine-local-storage systems side by side
// with the C++ gls strategies: jtolds/gls itself and two map-based designs
// keyed by a goroutine id (the approach of sibling libraries such as
// tylerb/gls).
//
// Build it in GOPATH mode: GO111MODULE=off GOPATH=<bench/go>:/usr/share/gocode.
package glsbench

import (
	"sync/atomic"

	"github.com/jtolds/gls"
)

// Values is the set of values one SetValues call installs. It is the same
// underlying type as gls.Values, so it converts for free.
type Values = map[interface{}]interface{}

// Manager is one independent context manager of a system.
type Manager interface {
	// SetValues runs fn with values installed (on top of the current ones)
	// for the calling goroutine, and restores the previous values when fn
	// returns or panics.
	SetValues(values Values, fn func())
	// GetValue reads a value installed by an enclosing SetValues.
	GetValue(key interface{}) (interface{}, bool)
	// Close unregisters the manager (so that Go stops copying its values).
	Close()
}

// System is one goroutine-local-storage design.
type System interface {
	Name() string
	NewManager() Manager
	// Go starts fn in a new goroutine that keeps the caller's values of every
	// live manager of this system.
	Go(fn func())
}

// Key is a never-before-used context key (like gls.GenSym), usable with
// every system.
type Key struct{ id uint64 }

var keyCounter uint64

// NewKey returns a fresh Key.
func NewKey() Key { return Key{id: atomic.AddUint64(&keyCounter, 1)} }

// Systems returns every system under test, in report order.
func Systems() []System {
	return []System{JtoldsGLS(), GoidMap(), RuntimeStackMap()}
}

// ---- jtolds_gls: github.com/jtolds/gls as shipped ----

type jtoldsSystem struct{}

type jtoldsManager struct{ m *gls.ContextManager }

// JtoldsGLS is github.com/jtolds/gls: a goroutine id encoded in the call
// stack by marker functions, found again with runtime.Callers.
func JtoldsGLS() System { return jtoldsSystem{} }

func (jtoldsSystem) Name() string        { return "jtolds_gls" }
func (jtoldsSystem) NewManager() Manager { return jtoldsManager{gls.NewContextManager()} }
func (jtoldsSystem) Go(fn func())        { gls.Go(fn) }

func (j jtoldsManager) SetValues(values Values, fn func()) { j.m.SetValues(values, fn) }
func (j jtoldsManager) GetValue(key interface{}) (interface{}, bool) {
	return j.m.GetValue(key)
}
func (j jtoldsManager) Close() { j.m.Unregister() }
