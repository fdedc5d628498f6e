package main

import (
	"bufio"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// WrkResult is what one wrk run printed (wrk 4.x with --latency).
type WrkResult struct {
	Requests     int64         // "N requests in D": completed requests
	Duration     time.Duration // the D of that line
	RPS          float64       // "Requests/sec:"
	P50, P75     time.Duration // "Latency Distribution"
	P90, P99     time.Duration
	LatencyAvg   time.Duration // "Thread Stats ... Latency" mean
	LatencyMax   time.Duration
	SocketErrors int64 // connect + read + write + timeout
	Non2xx3xx    int64 // "Non-2xx or 3xx responses:"
}

// Errors is every failed request wrk counted.
func (r WrkResult) Errors() int64 { return r.SocketErrors + r.Non2xx3xx }

// ParseWrk reads wrk's human-readable output. It fails when a figure the
// benchmark needs (requests, Requests/sec, p50, p99) is missing, so a changed wrk
// output format is an error, not a zero in the table.
func ParseWrk(out string) (WrkResult, error) {
	var r WrkResult
	var haveReq, haveRPS, haveP50, haveP99 bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var err error
		switch {
		case f[0] == "Latency" && len(f) >= 4: // Latency avg stdev max +/-stdev
			if r.LatencyAvg, err = parseWrkDuration(f[1]); err == nil {
				r.LatencyMax, err = parseWrkDuration(f[3])
			}
		case len(f) == 2 && strings.HasSuffix(f[0], "%"): // 50%    1.81ms
			var d time.Duration
			if d, err = parseWrkDuration(f[1]); err != nil {
				break
			}
			switch f[0] {
			case "50%":
				r.P50, haveP50 = d, true
			case "75%":
				r.P75 = d
			case "90%":
				r.P90 = d
			case "99%":
				r.P99, haveP99 = d, true
			}
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in": // 43043 requests in 2.07s, 7.02MB read
			if r.Requests, err = strconv.ParseInt(f[0], 10, 64); err == nil {
				r.Duration, err = parseWrkDuration(strings.TrimSuffix(f[3], ","))
				haveReq = true
			}
		case f[0] == "Requests/sec:" && len(f) == 2:
			r.RPS, err = strconv.ParseFloat(f[1], 64)
			haveRPS = err == nil
		case f[0] == "Socket" && len(f) == 10: // Socket errors: connect 0, read 1, write 0, timeout 0
			for _, i := range []int{3, 5, 7, 9} {
				var n int64
				if n, err = strconv.ParseInt(strings.TrimSuffix(f[i], ","), 10, 64); err != nil {
					break
				}
				r.SocketErrors += n
			}
		case strings.HasPrefix(sc.Text(), "  Non-2xx or 3xx responses:"):
			r.Non2xx3xx, err = strconv.ParseInt(f[len(f)-1], 10, 64)
		}
		if err != nil {
			return r, fmt.Errorf("wrk output line %q: %w", sc.Text(), err)
		}
	}
	var missing []string
	for _, m := range []struct {
		ok   bool
		what string
	}{{haveReq, "N requests in D"}, {haveRPS, "Requests/sec"}, {haveP50, "50% latency"}, {haveP99, "99% latency (run wrk with --latency)"}} {
		if !m.ok {
			missing = append(missing, m.what)
		}
	}
	if len(missing) > 0 {
		return r, fmt.Errorf("wrk output has no %s", strings.Join(missing, ", "))
	}
	return r, nil
}

// parseWrkDuration reads wrk's times: "980.00us", "1.81ms", "2.07s", "1.00m", "1.00h".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 {
				return 0, fmt.Errorf("bad time %q", s)
			}
			return time.Duration(math.Round(f * float64(u.unit))), nil
		}
	}
	return 0, fmt.Errorf("bad time %q: no unit", s)
}
