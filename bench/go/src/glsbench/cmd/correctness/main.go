// Command correctness runs every correctness scenario on every Go system and
// prints {"correctness": [{"system", "scenario", "result", "note"}, ...]} on
// stdout, progress on stderr.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"glsbench"
)

type row struct {
	System   string `json:"system"`
	Scenario string `json:"scenario"`
	Result   string `json:"result"`
	Note     string `json:"note"`
}

func main() {
	rows := []row{}
	for _, s := range glsbench.Systems() {
		for _, sc := range glsbench.Scenarios() {
			out := glsbench.RunScenario(sc, s)
			fmt.Fprintf(os.Stderr, "correctness: %s / %s: %s\n", s.Name(), sc.Name, out.Result)
			rows = append(rows, row{s.Name(), sc.Name, out.Result, out.Note})
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(map[string]interface{}{"correctness": rows}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
