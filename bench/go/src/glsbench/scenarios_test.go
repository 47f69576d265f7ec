package glsbench

import "testing"

func TestScenarios(t *testing.T) {
	for _, s := range Systems() {
		for _, sc := range Scenarios() {
			out := RunScenario(sc, s)
			t.Logf("%s / %s: %s %s", s.Name(), sc.Name, out.Result, out.Note)
			// A known defect of the seed: gls.Go hands the child the parent's
			// live values map, not a copy.
			knownSeedDefect := s.Name() == "jtolds_gls" && sc.Name == "go_after_scope_exit"
			if out.Result == "fail" && !knownSeedDefect {
				t.Errorf("%s / %s failed: %s", s.Name(), sc.Name, out.Note)
			}
		}
	}
}

func TestMemoryPerContext(t *testing.T) {
	for _, s := range Systems() {
		t.Logf("%s: %+v bytes per live context", s.Name(), MemoryPerContext(s, 1000))
	}
}
