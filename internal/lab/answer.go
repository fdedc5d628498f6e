// Package lab is the classroom experiment behind `make lab`: the same load of simulated
// visitors, each with its own cookie jar, against three set-ups side by side (sticky
// sessions, stateless sessions, and neither), with a replica killed, added or restarted
// mid-run if asked. It records every answer, measures what sticky sessions buy and cost,
// and writes a report a teacher can project offline (tables, CSV, JSON, PNG charts).
//
// The measures (measure.go) are plain functions over the recorded answers, so they
// are tested on hand-made logs; Run (run.go) is what produces real ones.
package lab

// Answer is what one request of one visitor got. Times are milliseconds since the lab
// began (the same clock for every arm), so arms can be compared on one time axis.
type Answer struct {
	// Visitor numbers the simulated visitors of an arm from 0.
	Visitor int `json:"visitor"`
	// Seq is the visitor's request number, from 1.
	Seq int `json:"seq"`
	// StartMS is when the request was sent.
	StartMS float64 `json:"start_ms"`
	// LatencyMS is how long the whole answer took, body included.
	LatencyMS float64 `json:"latency_ms"`
	// Status is the HTTP status; 0 means no answer at all (connection refused, timeout).
	Status int `json:"status"`
	// Replica and Visits come from the service's JSON answer ("host" and "visits").
	Replica string `json:"replica,omitempty"`
	Visits  int    `json:"visits,omitempty"`
	// Error says what went wrong; empty for a good answer.
	Error string `json:"error,omitempty"`
}

// OK reports whether the request got a 200 with a readable JSON answer.
func (a Answer) OK() bool { return a.Status == 200 && a.Error == "" }

// EndMS is when the answer was complete.
func (a Answer) EndMS() float64 { return a.StartMS + a.LatencyMS }

// Event kinds, as written in EVENTS.
const (
	Kill    = "kill"    // a replica crashes (SIGKILL) and stays down: failover
	Scale   = "scale"   // one more replica joins: scale-out
	Restart = "restart" // every replica is restarted, one at a time: a rolling update
)

// Event is one change the lab made to an arm's stack while the load ran. A rolling
// restart is recorded as one Event per replica it restarted.
type Event struct {
	Kind string `json:"kind"`
	// Replica is the replica killed, added or restarted.
	Replica string `json:"replica"`
	// StartMS is when the change began; EndMS when the stack had settled again (the
	// killed process reaped, the new or restarted replica routed to by the proxy).
	StartMS float64 `json:"start_ms"`
	EndMS   float64 `json:"end_ms"`
	// Error is set when the change could not be made.
	Error string `json:"error,omitempty"`
}

// stops reports whether the event takes a replica's memory sessions away.
func (e Event) stops() bool { return e.Kind == Kill || e.Kind == Restart }

// describe says what happened in a few words, e.g. "service1-1 killed".
func (e Event) describe() string {
	switch e.Kind {
	case Kill:
		return e.Replica + " killed"
	case Scale:
		return e.Replica + " added"
	case Restart:
		return e.Replica + " restarted"
	}
	return e.Kind + " " + e.Replica
}
