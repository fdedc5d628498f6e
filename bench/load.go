package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

// Load runs wrk, pinned to the load generator's core, one thread, Conns connections.
type Load struct {
	CPU   string
	Conns int
}

// WrkRun is one wrk invocation. wrk counts time in whole seconds: Duration is
// rounded up to at least 1 s.
type WrkRun struct {
	URL        string
	Headers    []string // "Name: value", sent on every request (wrk -H)
	Script     string   // wrk -s (a Lua file), "" for none
	ScriptArgs []string // after "--"
	Duration   time.Duration
}

func (l Load) Run(ctx context.Context, r WrkRun) (WrkResult, error) {
	secs := max(1, int(math.Ceil(r.Duration.Seconds())))
	args := []string{"-c", l.CPU, "wrk", "-t1", "-c" + strconv.Itoa(l.Conns),
		"-d" + strconv.Itoa(secs) + "s", "--latency", "--timeout", "10s"}
	for _, h := range r.Headers {
		args = append(args, "-H", h)
	}
	if r.Script != "" {
		args = append(args, "-s", r.Script)
	}
	args = append(args, r.URL)
	if len(r.ScriptArgs) > 0 {
		args = append(append(args, "--"), r.ScriptArgs...)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+30)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "taskset", args...).CombinedOutput()
	if err != nil {
		return WrkResult{}, fmt.Errorf("wrk %s: %w: %s", r.URL, err, out)
	}
	res, err := ParseWrk(string(out))
	if err != nil {
		return res, fmt.Errorf("wrk %s: %w; its output:\n%s", r.URL, err, out)
	}
	return res, nil
}

// Run is one repetition of a measurement.
type Run struct {
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	// CPUusPerReq is the CPU time (user+system) the measured process used per
	// request during the run, in microseconds; 0 when not measured.
	CPUusPerReq float64 `json:"cpu_us_per_req,omitempty"`
	// CtxSwPerReq is its context switches (voluntary and not, every thread) per
	// request during the run.
	CtxSwPerReq float64 `json:"ctxsw_per_req,omitempty"`
}

// Stat sums up the repetitions of one figure: the median and the range.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Spread is half the range relative to the median: 0.03 reads "±3%".
func (s Stat) Spread() float64 {
	if s.Median == 0 {
		return 0
	}
	return (s.Max - s.Min) / 2 / s.Median
}

func statOf(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// repeat runs r reps times (after warmup, if any, whose result is dropped) and
// returns the runs; cpuOf, when not nil, is the process whose CPU time per request
// is measured. It fails when the server dies or most requests failed.
func (l Load) repeat(ctx context.Context, r WrkRun, reps int, warmup time.Duration, srv, cpuOf *Server, log io.Writer) ([]Run, error) {
	if warmup > 0 {
		w := r
		w.Duration = warmup
		if _, err := l.Run(ctx, w); err != nil {
			return nil, err
		}
	}
	var runs []Run
	for range reps {
		var cpu0 time.Duration
		var sw0 int64
		if cpuOf != nil {
			cpu0, _ = cpuOf.CPUTime()
			sw0, _ = cpuOf.CtxSwitches()
		}
		res, err := l.Run(ctx, r)
		if err != nil {
			return nil, err
		}
		if err := srv.Alive(); err != nil {
			return nil, err
		}
		run := Run{RPS: res.RPS, P50ms: ms(res.P50), P99ms: ms(res.P99), Requests: res.Requests, Errors: res.Errors()}
		if cpuOf != nil && res.Requests > 0 {
			cpu1, _ := cpuOf.CPUTime()
			sw1, _ := cpuOf.CtxSwitches()
			run.CPUusPerReq = float64((cpu1 - cpu0).Microseconds()) / float64(res.Requests)
			run.CtxSwPerReq = float64(sw1-sw0) / float64(res.Requests)
		}
		if run.Errors*2 > run.Requests {
			return nil, fmt.Errorf("wrk %s: %d of %d requests failed", r.URL, run.Errors, run.Requests)
		}
		fmt.Fprintf(log, " %s", compact(run.RPS))
		runs = append(runs, run)
	}
	return runs, nil
}

// fill sends requests until at least n have completed, in wrk runs sized from the
// rate seen so far (first guess: rate req/s), and gives up after limit. It returns
// how many requests completed and how long the runs took.
func (l Load) fill(ctx context.Context, r WrkRun, n int64, rate float64, limit time.Duration, srv *Server, log io.Writer) (int64, time.Duration, error) {
	var total int64
	var took time.Duration
	for total < n {
		left := limit - took
		if left < time.Second {
			fmt.Fprintf(log, " (time limit %s reached)", limit)
			break
		}
		// The first run is short, to learn this server's rate under this load; the
		// next ones are sized from it, so the total overshoots n by less than a
		// second of requests (wrk counts time in whole seconds).
		d := time.Duration(float64(n-total) / max(rate, 1) * float64(time.Second))
		if total == 0 {
			d = min(d, 5*time.Second)
		}
		d = min(max(d, time.Second), left, 60*time.Second)
		r.Duration = d
		res, err := l.Run(ctx, r)
		if err != nil {
			return total, took, err
		}
		if err := srv.Alive(); err != nil {
			return total, took, err
		}
		if res.Errors()*2 > res.Requests {
			return total, took, fmt.Errorf("wrk %s: %d of %d requests failed", r.URL, res.Errors(), res.Requests)
		}
		total += res.Requests
		took += res.Duration
		if res.Duration > 0 {
			rate = float64(res.Requests) / res.Duration.Seconds()
		}
		fmt.Fprintf(log, " %s", compact(float64(total)))
	}
	return total, took, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// compact writes 27268.8 as "27.3k" and 1000000 as "1.00M", for progress lines.
func compact(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
