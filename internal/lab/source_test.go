package lab

import "testing"

// TestOtherWaysToStick: the proxy's own insert cookie keeps every count as the
// prefix cookie does; balance source keeps them too, spread over the replicas
// when visitors come from different addresses, and piles every visitor onto
// one replica when they all come from one address (a NAT, an office, a mobile
// carrier): its failure mode, in numbers.
func TestOtherWaysToStick(t *testing.T) {
	t.Parallel()
	r := runLab(t, Settings{Clients: 16, Requests: 8, Parallel: 8, ThinkMS: 5, Replicas: 2,
		Arms: []string{"insert", "source", "source-nat"}})
	for _, name := range []string{"insert", "source", "source-nat"} {
		a := armOf(t, r, name)
		noFailure(t, r.Settings, a)
		if got := continuity(t, a); got != 1 {
			t.Errorf("%s continuity: got %s, want 100%%", name, percent(got))
		}
	}
	share := func(name string) map[string]int { return armOf(t, r, name).Summary.Phases[0].Counts }
	if got := share("source"); len(got) != 2 {
		t.Errorf("source, 16 visitors from 16 addresses: answers per replica %v, want both replicas", got)
	}
	if got := share("source-nat"); len(got) != 1 {
		t.Errorf("source-nat, 16 visitors from one address: answers per replica %v, want every one on one replica", got)
	}
	if got := share("insert"); len(got) != 2 {
		t.Errorf("insert: answers per replica %v, want both replicas", got)
	}
}
