package lab

import (
	"maps"
	"math"
	"slices"
	"sort"
)

// byVisitor groups the good answers by visitor, each visitor's in request order.
// Failed requests are left out: they carry no replica and no count.
func byVisitor(answers []Answer) map[int][]Answer {
	m := map[int][]Answer{}
	for _, a := range answers {
		if a.OK() {
			m[a.Visitor] = append(m[a.Visitor], a)
		}
	}
	for _, as := range m {
		sort.Slice(as, func(i, j int) bool { return as[i].Seq < as[j].Seq })
	}
	return m
}

// Continuity counts, over every visitor's consecutive good answers, how many carried
// the count on: visits exactly one more than the visitor's previous answer. A visitor's
// first answer has no previous one and is not counted.
type Continuity struct {
	Continued int `json:"continued"`
	Pairs     int `json:"pairs"`
}

// Share is Continued/Pairs, and false when there was no pair to judge.
func (c Continuity) Share() (float64, bool) {
	if c.Pairs == 0 {
		return 0, false
	}
	return float64(c.Continued) / float64(c.Pairs), true
}

// MeasureContinuity is the share of answers whose visits is exactly the same visitor's
// previous visits + 1: 100% means no visitor ever lost its session.
func MeasureContinuity(answers []Answer) Continuity {
	var c Continuity
	for _, as := range byVisitor(answers) {
		for i := 1; i < len(as); i++ {
			c.Pairs++
			if as[i].Visits == as[i-1].Visits+1 {
				c.Continued++
			}
		}
	}
	return c
}

// Shares counts the good answers per replica among those completed in [fromMS, toMS).
func Shares(answers []Answer, fromMS, toMS float64) map[string]int {
	m := map[string]int{}
	for _, a := range answers {
		if end := a.EndMS(); a.OK() && end >= fromMS && end < toMS {
			m[a.Replica]++
		}
	}
	return m
}

// Loss is what one stopped replica took with it.
type Loss struct {
	Kind    string `json:"kind"`
	Replica string `json:"replica"`
	// Had lists the visitors whose session lived on Replica when it stopped: their last
	// answer before the stop came from it, and they came back after the stack settled.
	Had []int `json:"had"`
	// Lost lists those of Had whose count did not carry on: some answer between their
	// last one from Replica and their first one after the stack settled was not the
	// previous visits + 1 (with sticky memory sessions: it started again at 1).
	Lost []int `json:"lost"`
}

// SessionsLost measures what a kill or restart of ev.Replica cost the visitors. Only
// visitors seen on both sides of the event are judged; one whose last answer came while
// the replica was still dying is judged by what came after.
func SessionsLost(answers []Answer, ev Event) Loss {
	l := Loss{Kind: ev.Kind, Replica: ev.Replica, Had: []int{}, Lost: []int{}}
	vs := byVisitor(answers)
	for _, v := range slices.Sorted(maps.Keys(vs)) {
		as := vs[v]
		p := -1 // last answer completed before the stop began
		for i, a := range as {
			if a.EndMS() <= ev.StartMS {
				p = i
			}
		}
		if p < 0 || as[p].Replica != ev.Replica {
			continue
		}
		n := -1 // first answer sent once the stack had settled
		for i := p + 1; i < len(as); i++ {
			if as[i].StartMS >= ev.EndMS {
				n = i
				break
			}
		}
		if n < 0 {
			continue // gone before we could see what happened
		}
		l.Had = append(l.Had, v)
		for i := p + 1; i <= n; i++ {
			if as[i].Visits != as[i-1].Visits+1 {
				l.Lost = append(l.Lost, v)
				break
			}
		}
	}
	return l
}

// ScaleOut is where the visitors went once a new replica joined.
type ScaleOut struct {
	Replica string `json:"replica"`
	// Returning visitors had a session before the scale-out began and came back after
	// the new replica was routed to; ReturningOnNew of them got an answer from it.
	Returning      int `json:"returning"`
	ReturningOnNew int `json:"returning_on_new"`
	// New visitors sent their first request after the new replica was routed to;
	// NewOnNew of them got an answer from it.
	New      int `json:"new"`
	NewOnNew int `json:"new_on_new"`
	// Share is the new replica's share of the good answers sent after it joined.
	Share float64 `json:"share"`
}

// MeasureScaleOut measures who the replica added by ev served.
func MeasureScaleOut(answers []Answer, ev Event) ScaleOut {
	s := ScaleOut{Replica: ev.Replica}
	after, onNew := 0, 0
	for _, a := range answers {
		if a.OK() && a.StartMS >= ev.EndMS {
			after++
			if a.Replica == ev.Replica {
				onNew++
			}
		}
	}
	if after > 0 {
		s.Share = float64(onNew) / float64(after)
	}
	firstSent := map[int]float64{} // every request counts: a failed first one still came
	for _, a := range answers {
		if t, ok := firstSent[a.Visitor]; !ok || a.StartMS < t {
			firstSent[a.Visitor] = a.StartMS
		}
	}
	for v, as := range byVisitor(answers) {
		returning := as[0].EndMS() <= ev.StartMS
		isNew := firstSent[v] >= ev.EndMS
		if !returning && !isNew {
			continue // arrived while the replica was joining: neither
		}
		seenAfter, reached := false, false
		for _, a := range as {
			if a.StartMS >= ev.EndMS {
				seenAfter = true
				reached = reached || a.Replica == ev.Replica
			}
		}
		switch {
		case returning && seenAfter:
			s.Returning++
			if reached {
				s.ReturningOnNew++
			}
		case isNew:
			s.New++
			if reached {
				s.NewOnNew++
			}
		}
	}
	return s
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of xs, NaN for none.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Timeline counts the good answers per replica in buckets of bucketMS from 0 to untilMS,
// by completion time: counts[replica][i] is bucket i, [i*bucketMS, (i+1)*bucketMS).
func Timeline(answers []Answer, bucketMS, untilMS float64) (buckets int, counts map[string][]int) {
	buckets = max(1, int(math.Ceil(untilMS/bucketMS)))
	counts = map[string][]int{}
	for _, a := range answers {
		if !a.OK() {
			continue
		}
		i := min(int(a.EndMS()/bucketMS), buckets-1)
		c, ok := counts[a.Replica]
		if !ok {
			c = make([]int, buckets)
			counts[a.Replica] = c
		}
		c[max(i, 0)]++
	}
	return buckets, counts
}
