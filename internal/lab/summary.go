package lab

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack"
)

// Summary is an arm's measures: one row of the results table.
type Summary struct {
	Requests int `json:"requests"`
	Failed   int `json:"failed"`
	// FailedWith counts the failed requests by what went wrong.
	FailedWith map[string]int `json:"failed_with,omitempty"`
	Continuity Continuity     `json:"continuity"`
	// Losses has one entry per replica killed or restarted.
	Losses []Loss `json:"losses"`
	// ScaleOut is set when a replica was added.
	ScaleOut *ScaleOut `json:"scale_out,omitempty"`
	// Phases split the run at the events: who served the answers in each.
	Phases []Phase `json:"phases"`
	// ThroughputRPS is good answers per second of the arm's wall time.
	ThroughputRPS float64 `json:"throughput_rps"`
	P50MS         float64 `json:"p50_ms"`
	P99MS         float64 `json:"p99_ms"`
}

// Phase is a stretch of the run between two events.
type Phase struct {
	Name   string         `json:"name"`
	FromMS float64        `json:"from_ms"`
	ToMS   float64        `json:"to_ms"`
	Counts map[string]int `json:"counts"` // good answers per replica
}

// Total is the number of good answers in the phase.
func (p Phase) Total() int {
	n := 0
	for _, c := range p.Counts {
		n += c
	}
	return n
}

// Summarize measures an arm from its answers and events, and completes its replica list
// with every replica that answered.
func Summarize(a *ArmResult) Summary {
	s := Summary{Requests: len(a.Answers), Losses: []Loss{}}
	var lat []float64
	for _, ans := range a.Answers {
		if !ans.OK() {
			s.Failed++
			if s.FailedWith == nil {
				s.FailedWith = map[string]int{}
			}
			s.FailedWith[ans.Error]++
			continue
		}
		lat = append(lat, ans.LatencyMS)
		if !slices.Contains(a.Replicas, ans.Replica) {
			a.Replicas = append(a.Replicas, ans.Replica)
		}
	}
	localstack.SortReplicaNames(a.Replicas)
	s.Continuity = MeasureContinuity(a.Answers)
	if d := (a.EndMS - a.StartMS) / 1000; d > 0 {
		s.ThroughputRPS = float64(len(lat)) / d
	}
	if len(lat) > 0 {
		s.P50MS, s.P99MS = Percentile(lat, 50), Percentile(lat, 99)
	}
	for _, ev := range a.Events {
		if ev.Error != "" {
			continue
		}
		switch {
		case ev.stops():
			s.Losses = append(s.Losses, SessionsLost(a.Answers, ev))
		case ev.Kind == Scale:
			so := MeasureScaleOut(a.Answers, ev)
			s.ScaleOut = &so
		}
	}
	s.Phases = phases(a)
	return s
}

// Lost adds up the losses: visitors that had a session on a stopped replica, and those
// of them that lost it.
func (s Summary) Lost() (lost, had int) {
	for _, l := range s.Losses {
		lost += len(l.Lost)
		had += len(l.Had)
	}
	return lost, had
}

// phases cuts the run where each event began (a rolling restart counts as one event).
func phases(a *ArmResult) []Phase {
	type cut struct {
		at   float64
		name string
	}
	var cuts []cut
	for i, ev := range a.Events {
		if ev.Error != "" {
			continue
		}
		switch ev.Kind {
		case Kill:
			cuts = append(cuts, cut{ev.StartMS, "after " + ev.Replica + " was killed"})
		case Scale:
			cuts = append(cuts, cut{ev.StartMS, "after " + ev.Replica + " was added"})
		case Restart:
			if i > 0 && a.Events[i-1].Kind == Restart {
				continue // the first restart of the rolling restart makes the cut
			}
			cuts = append(cuts, cut{ev.StartMS, "during and after the rolling restart"})
		}
	}
	var ps []Phase
	from, name := 0.0, "start"
	if len(cuts) == 0 {
		name = "whole run"
	}
	for _, c := range append(cuts, cut{a.EndMS + 1, ""}) {
		ps = append(ps, Phase{Name: name, FromMS: from, ToMS: c.at, Counts: Shares(a.Answers, from, c.at)})
		from, name = c.at, c.name
	}
	return ps
}

// percent formats a share as "97.5%" (or "100%" / "0%" when exact).
func percent(x float64) string {
	switch {
	case x == 1:
		return "100%"
	case x == 0:
		return "0%"
	case x > 0.999:
		return "99.9%" // never round a broken session up to 100%
	}
	return fmt.Sprintf("%.1f%%", x*100)
}

// failureSummary lists the commonest failures, most frequent first.
func failureSummary(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b)) })
	var parts []string
	for _, k := range keys[:min(3, len(keys))] {
		parts = append(parts, fmt.Sprintf("%d× %s", m[k], k))
	}
	return strings.Join(parts, "; ")
}
