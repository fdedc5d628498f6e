package lab

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/swarm-affinity/swarm-affinity/internal/localstack"
)

// Rows are the results table, header first: what the terminal, results.csv and the
// report all show.
func (r *Results) Rows() [][]string {
	rows := [][]string{{"arm", "requests", "failed", "continuity", "lost at failover", "req/s", "p50", "p99"}}
	for _, a := range r.Arms {
		s := a.Summary
		cont := "n/a"
		if sh, ok := s.Continuity.Share(); ok {
			cont = percent(sh)
		}
		lost := "-"
		if len(s.Losses) > 0 {
			l, h := s.Lost()
			lost = fmt.Sprintf("%d of %d", l, h)
		}
		rows = append(rows, []string{
			a.Name, fmt.Sprint(s.Requests), fmt.Sprint(s.Failed), cont, lost,
			fmt.Sprintf("%.0f", s.ThroughputRPS), millis(s.P50MS), millis(s.P99MS),
		})
	}
	return rows
}

// ShareRows are the share of answers per replica, per arm and phase, header first.
func (r *Results) ShareRows() [][]string {
	replicas := r.replicas()
	rows := [][]string{append([]string{"arm", "phase"}, replicas...)}
	for _, a := range r.Arms {
		for i, p := range a.Summary.Phases {
			name := a.Name
			if i > 0 {
				name = ""
			}
			row := []string{name, p.Name}
			total := p.Total()
			for _, rep := range replicas {
				c, ok := p.Counts[rep]
				if !ok || total == 0 {
					row = append(row, "-")
					continue
				}
				row = append(row, percent(float64(c)/float64(total)))
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// replicas is every replica of every arm, in start order.
func (r *Results) replicas() []string {
	var all []string
	for _, a := range r.Arms {
		for _, rep := range a.Replicas {
			if !slices.Contains(all, rep) {
				all = append(all, rep)
			}
		}
	}
	localstack.SortReplicaNames(all)
	return all
}

// scaleOutLines say, per arm, whom the added replica served.
func (r *Results) scaleOutLines() []string {
	var lines []string
	for _, a := range r.Arms {
		so := a.Summary.ScaleOut
		if so == nil {
			continue
		}
		lines = append(lines, fmt.Sprintf("%-9s %s reached by %d of %d returning visitors and %d of %d new ones; %s of the answers after it joined",
			a.Name, so.Replica, so.ReturningOnNew, so.Returning, so.NewOnNew, so.New, percent(so.Share)))
	}
	return lines
}

// PrintTable writes the results as the terminal shows them.
func PrintTable(w io.Writer, r *Results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	writeRows(tw, r.Rows())
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Who answered: share of each phase's answers per replica")
	writeRows(tw, r.ShareRows())
	tw.Flush()
	if lines := r.scaleOutLines(); len(lines) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Scale-out: who reached the new replica")
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
	var failures []string
	for _, a := range r.Arms {
		if a.Summary.Failed > 0 {
			failures = append(failures, fmt.Sprintf("  %-9s %s", a.Name, failureSummary(a.Summary.FailedWith)))
		}
		for _, ev := range a.Events {
			if ev.Error != "" {
				failures = append(failures, fmt.Sprintf("  %-9s event %s did not happen: %s", a.Name, ev.Kind, ev.Error))
			}
		}
	}
	if len(failures) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "What failed")
		fmt.Fprintln(w, strings.Join(failures, "\n"))
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "Note: "+n)
	}
}

func writeRows(w io.Writer, rows [][]string) {
	for _, row := range rows {
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
}

// millis formats a latency for people: 0.42ms, 3.1ms, 120ms.
func millis(x float64) string {
	switch {
	case x != x: // NaN: no answer
		return "-"
	case x < 1:
		return fmt.Sprintf("%.2fms", x)
	case x < 10:
		return fmt.Sprintf("%.1fms", x)
	}
	return fmt.Sprintf("%.0fms", x)
}
