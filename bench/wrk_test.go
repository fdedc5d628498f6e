package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseWrkReadsACapturedRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want WrkResult
	}{
		{"testdata/wrk-latency.txt", WrkResult{
			Requests: 43043, Duration: 2070 * time.Millisecond, RPS: 20757.75,
			P50: 1810 * time.Microsecond, P75: 5040 * time.Microsecond,
			P90: 52290 * time.Microsecond, P99: 286200 * time.Microsecond,
			LatencyAvg: 21190 * time.Microsecond, LatencyMax: 313700 * time.Microsecond,
		}},
		{"testdata/wrk-errors.txt", WrkResult{
			Requests: 12345, Duration: time.Minute, RPS: 205.75,
			P50: 950 * time.Microsecond, P75: time.Millisecond,
			P90: 1100 * time.Microsecond, P99: 1500 * time.Microsecond,
			LatencyAvg: 980500 * time.Nanosecond, LatencyMax: 1020 * time.Millisecond,
			SocketErrors: 16, Non2xx3xx: 7,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			out, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseWrk(string(out))
			if err != nil {
				t.Fatalf("ParseWrk: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v,\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseWrkRejectsOutputWithoutTheFiguresItNeeds(t *testing.T) {
	t.Parallel()
	out, err := os.ReadFile("testdata/wrk-latency.txt")
	if err != nil {
		t.Fatal(err)
	}
	noLatency := strings.Split(string(out), "  Latency Distribution")[0]
	for name, in := range map[string]string{
		"empty output":             "",
		"a run without --latency":  noLatency,
		"a connection refused run": "unable to connect to 127.0.0.1:1 Connection refused\n",
	} {
		if _, err := ParseWrk(in); err == nil {
			t.Errorf("%s: got no error, want one", name)
		}
	}
	if _, err := ParseWrk(strings.Replace(string(out), "1.81ms", "1.81parsecs", 1)); err == nil {
		t.Error("a bad time: got no error, want one")
	}
}
