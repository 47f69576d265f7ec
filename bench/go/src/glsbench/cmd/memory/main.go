// Command memory measures bytes per live context (glsbench.MemoryPerContext)
// for every Go system, -reps times each, every measurement in a fresh child
// process (freed goroutine stacks and map buckets stay cached inside a
// process and would hide the cost of later repetitions). Prints
// {"memory": [{"system", "live_contexts", "samples": [{total, heap, stack}]}]}
// on stdout.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"glsbench"
)

type row struct {
	System       string                  `json:"system"`
	LiveContexts int                     `json:"live_contexts"`
	Samples      []glsbench.MemorySample `json:"samples"`
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "memory:", err)
	os.Exit(1)
}

func main() {
	n := flag.Int("n", 1000, "live contexts (parked goroutines)")
	reps := flag.Int("reps", 5, "repetitions per system")
	one := flag.String("one", "", "internal: measure this system once and print the sample")
	flag.Parse()

	if *one != "" {
		for _, s := range glsbench.Systems() {
			if s.Name() == *one {
				if err := json.NewEncoder(os.Stdout).Encode(glsbench.MemoryPerContext(s, *n)); err != nil {
					fail(err)
				}
				return
			}
		}
		fail(fmt.Errorf("unknown system %q", *one))
	}

	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	rows := []row{}
	for _, s := range glsbench.Systems() {
		r := row{System: s.Name(), LiveContexts: *n}
		for i := 0; i < *reps; i++ {
			cmd := exec.Command(self, "-n", strconv.Itoa(*n), "-one", s.Name())
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				fail(fmt.Errorf("%s: %v", s.Name(), err))
			}
			var sample glsbench.MemorySample
			if err := json.Unmarshal(out, &sample); err != nil {
				fail(fmt.Errorf("%s: %v in %q", s.Name(), err, out))
			}
			r.Samples = append(r.Samples, sample)
		}
		fmt.Fprintf(os.Stderr, "memory: %s: %+v bytes per live context\n", s.Name(), r.Samples)
		rows = append(rows, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"memory": rows}); err != nil {
		fail(err)
	}
}
