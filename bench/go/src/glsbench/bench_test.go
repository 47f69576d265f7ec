package glsbench

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// Sub-benchmark names are <system>[/<param>=<value>]. go_bench_report.py
// reports Benchmark<Name> as workload <Name>, except GetValueDepth, which is
// GetValue with a depth param.

func forEachSystem(b *testing.B, fn func(b *testing.B, s System)) {
	for _, s := range Systems() {
		s := s
		b.Run(s.Name(), func(b *testing.B) { fn(b, s) })
	}
}

const want = "test_val"

func readLoop(b *testing.B, m Manager, key Key) {
	for i := 0; i < b.N; i++ {
		if v, ok := m.GetValue(key); !ok || v != want {
			b.Fatalf("GetValue = %v, %v", v, ok)
		}
	}
}

// GetValue hit, directly inside the SetValues scope.
func BenchmarkGetValue(b *testing.B) {
	forEachSystem(b, func(b *testing.B, s System) {
		m := s.NewManager()
		defer m.Close()
		key := NewKey()
		m.SetValues(Values{key: want}, func() {
			b.ResetTimer()
			readLoop(b, m, key)
		})
	})
}

//go:noinline
func atDepth(depth int, fn func()) int {
	if depth == 0 {
		fn()
		return 0
	}
	return atDepth(depth-1, fn) + 1 // not a tail call: every frame stays
}

// GetValue hit with `depth` non-inlined frames between SetValues and the read.
func BenchmarkGetValueDepth(b *testing.B) {
	forEachSystem(b, func(b *testing.B, s System) {
		for _, depth := range []int{0, 8, 64, 512} {
			depth := depth
			b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
				m := s.NewManager()
				defer m.Close()
				key := NewKey()
				m.SetValues(Values{key: want}, func() {
					atDepth(depth, func() {
						b.ResetTimer()
						readLoop(b, m, key)
					})
				})
			})
		}
	})
}

// GetValue of a key that is not set, inside a scope that sets another key.
func BenchmarkGetValueMiss(b *testing.B) {
	forEachSystem(b, func(b *testing.B, s System) {
		m := s.NewManager()
		defer m.Close()
		set, missing := NewKey(), NewKey()
		m.SetValues(Values{set: want}, func() {
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if v, ok := m.GetValue(missing); ok {
					b.Fatalf("GetValue(missing) = %v, true", v)
				}
			}
		})
	})
}

func noop() {}

// SetValues with `values` new values inside an enclosing scope with one value.
func BenchmarkSetValues(b *testing.B) {
	forEachSystem(b, func(b *testing.B, s System) {
		for _, n := range []int{1, 8} {
			n := n
			b.Run(fmt.Sprintf("values=%d", n), func(b *testing.B) {
				m := s.NewManager()
				defer m.Close()
				inner := Values{}
				for i := 0; i < n; i++ {
					inner[NewKey()] = i
				}
				m.SetValues(Values{NewKey(): want}, func() {
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						m.SetValues(inner, noop)
					}
				})
			})
		}
	})
}

// SetValues with one value outside any scope (like the C++ BM_SetValues):
// reported as workload SetValuesOutermost, params {"values": 1}.
func BenchmarkSetValuesOutermost(b *testing.B) {
	forEachSystem(b, func(b *testing.B, s System) {
		b.Run("values=1", func(b *testing.B) {
			m := s.NewManager()
			defer m.Close()
			values := Values{NewKey(): want}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.SetValues(values, noop)
			}
		})
	})
}

// GetValue hit from `threads` goroutines at once (GOMAXPROCS = threads), each
// in its own scope. ns/op is wall time / total reads of all goroutines, like
// Google Benchmark's UseRealTime()->Threads(n).
func BenchmarkGetValueParallel(b *testing.B) {
	forEachSystem(b, func(b *testing.B, s System) {
		for _, threads := range []int{1, 2} {
			threads := threads
			b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
				m := s.NewManager()
				defer m.Close()
				key := NewKey()
				b.SetParallelism(1) // goroutines = parallelism * GOMAXPROCS = threads
				b.RunParallel(func(pb *testing.PB) {
					m.SetValues(Values{key: want}, func() {
						for pb.Next() {
							if v, ok := m.GetValue(key); !ok || v != want {
								panic("GetValueParallel: value not visible")
							}
						}
					})
				})
			})
		}
	})
}

// Starting a goroutine that keeps the context (the system's Go, kind=go)
// versus a plain go statement (kind=plain), from inside a scope with one
// value; the goroutine reads the value and is waited for.
func BenchmarkSpawn(b *testing.B) {
	forEachSystem(b, func(b *testing.B, s System) {
		for _, kind := range []string{"go", "plain"} {
			useGo := kind == "go"
			b.Run("kind="+kind, func(b *testing.B) {
				m := s.NewManager()
				defer m.Close()
				key := NewKey()
				m.SetValues(Values{key: 42}, func() {
					var wg sync.WaitGroup
					bad := false
					child := func() {
						v, ok := m.GetValue(key)
						if ok != useGo || (ok && v != 42) {
							bad = true
						}
						wg.Done()
					}
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						wg.Add(1)
						if useGo {
							s.Go(child)
						} else {
							go child()
						}
						wg.Wait()
					}
					b.StopTimer()
					if bad {
						b.Fatalf("kind=%s: the child goroutine saw the wrong value", kind)
					}
				})
			})
		}
	})
}
