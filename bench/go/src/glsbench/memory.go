package glsbench

import (
	"runtime"
	"sync"
)

// MemorySample is one MemoryPerContext measurement, in bytes per live
// context.
type MemorySample struct {
	Total float64 `json:"total"` // Heap + Stack
	Heap  float64 `json:"heap"`  // from HeapInuse
	Stack float64 `json:"stack"` // from StackInuse
}

func inuse() (heap, stack int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), int64(ms.StackInuse)
}

// MemoryPerContext returns the bytes one live context costs: n goroutines
// park first outside any scope (the baseline), then each inside a SetValues
// with one value; the difference of runtime.MemStats HeapInuse+StackInuse
// (after a GC each time) divided by n. The goroutines themselves and the
// Values maps the caller builds are in both measurements, so only what the
// system allocates or grows (maps, marker frames on the stack) is counted.
func MemoryPerContext(s System, n int) MemorySample {
	m := s.NewManager()
	defer m.Close()
	key := NewKey()
	m.SetValues(Values{key: -1}, func() {}) // first-use allocations are not per context

	values := make([]Values, n)
	for i := range values {
		values[i] = Values{key: i}
	}
	var outside, inside sync.WaitGroup
	outside.Add(n)
	inside.Add(n)
	enter := make(chan struct{})
	done := make(chan struct{})
	finished := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer func() { finished <- struct{}{} }()
			m.GetValue(key) // per-goroutine first-use costs happen before the baseline
			outside.Done()
			<-enter
			m.SetValues(values[i], func() {
				if v, ok := m.GetValue(key); !ok || v != i {
					panic("MemoryPerContext: value not visible inside its scope")
				}
				inside.Done()
				<-done
			})
		}(i)
	}
	outside.Wait()
	heapBefore, stackBefore := inuse()
	close(enter)
	inside.Wait()
	heapAfter, stackAfter := inuse()
	close(done)
	for i := 0; i < n; i++ {
		<-finished
	}
	runtime.KeepAlive(values)
	heap := float64(heapAfter-heapBefore) / float64(n)
	stack := float64(stackAfter-stackBefore) / float64(n)
	return MemorySample{Total: heap + stack, Heap: heap, Stack: stack}
}
