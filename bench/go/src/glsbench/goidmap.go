package glsbench

import (
	"runtime"
	"sync"

	"github.com/petermattis/goid"
)

// GoidMap is the sibling-library design keyed by github.com/petermattis/goid:
// each manager holds map[goroutine id]Values behind a sync.RWMutex.
func GoidMap() System { return newMapSystem("goid_map", goid.Get) }

// RuntimeStackMap is the same design with the goroutine id parsed from the
// first line of runtime.Stack ("goroutine 123 [running]:"), as tylerb/gls
// does.
func RuntimeStackMap() System { return newMapSystem("runtime_stack_map", StackGoroutineID) }

// StackGoroutineID parses the current goroutine's id out of runtime.Stack.
func StackGoroutineID() int64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	const prefix = "goroutine "
	if n <= len(prefix) || string(buf[:len(prefix)]) != prefix {
		panic("unexpected runtime.Stack output: " + string(buf[:n]))
	}
	var id int64
	for _, c := range buf[len(prefix):n] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + int64(c-'0')
	}
	return id
}

type mapSystem struct {
	name     string
	id       func() int64
	mu       sync.Mutex
	managers map[*mapManager]struct{}
}

func newMapSystem(name string, id func() int64) *mapSystem {
	return &mapSystem{name: name, id: id, managers: make(map[*mapManager]struct{})}
}

func (s *mapSystem) Name() string { return s.name }

func (s *mapSystem) NewManager() Manager {
	m := &mapManager{sys: s, values: make(map[int64]Values)}
	s.mu.Lock()
	s.managers[m] = struct{}{}
	s.mu.Unlock()
	return m
}

// Go copies the caller's values of every live manager into the new
// goroutine (as gls.Go and tylerb/gls's Go do).
func (s *mapSystem) Go(fn func()) {
	type snapshot struct {
		m      *mapManager
		values Values
	}
	var snaps []snapshot
	s.mu.Lock()
	if len(s.managers) > 0 {
		id := s.id()
		for m := range s.managers {
			if v := m.current(id); len(v) > 0 {
				snaps = append(snaps, snapshot{m, v})
			}
		}
	}
	s.mu.Unlock()
	if len(snaps) == 0 {
		go fn()
		return
	}
	go func() {
		id := s.id()
		run := fn
		for _, snap := range snaps {
			snap, inner := snap, run
			// The snapshot maps are never mutated, so they can be shared.
			run = func() { snap.m.install(id, snap.values, nil, false, inner) }
		}
		run()
	}()
}

type mapManager struct {
	sys    *mapSystem
	mu     sync.RWMutex
	values map[int64]Values // goroutine id -> its values; a Values map is never mutated once installed
}

func (m *mapManager) current(id int64) Values {
	m.mu.RLock()
	v := m.values[id]
	m.mu.RUnlock()
	return v
}

func (m *mapManager) SetValues(values Values, fn func()) {
	if len(values) == 0 {
		fn()
		return
	}
	id := m.sys.id()
	m.mu.RLock()
	parent, had := m.values[id]
	m.mu.RUnlock()
	next := make(Values, len(parent)+len(values))
	for k, v := range parent {
		next[k] = v
	}
	for k, v := range values {
		next[k] = v
	}
	m.install(id, next, parent, had, fn)
}

// install runs fn with next as goroutine id's values, then puts back parent
// (or removes the entry), also when fn panics.
func (m *mapManager) install(id int64, next, parent Values, had bool, fn func()) {
	m.mu.Lock()
	m.values[id] = next
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if had {
			m.values[id] = parent
		} else {
			delete(m.values, id)
		}
		m.mu.Unlock()
	}()
	fn()
}

func (m *mapManager) GetValue(key interface{}) (interface{}, bool) {
	id := m.sys.id()
	m.mu.RLock()
	values := m.values[id]
	m.mu.RUnlock()
	v, ok := values[key]
	return v, ok
}

func (m *mapManager) Close() {
	m.sys.mu.Lock()
	delete(m.sys.managers, m)
	m.sys.mu.Unlock()
}
