package lab

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Report files, in the folder WriteReport fills.
const (
	ResultsJSON = "results.json" // everything: settings, summaries, events, every answer
	ResultsCSV  = "results.csv"  // the results table, one row per arm
	ReplicasCSV = "replicas.csv" // share of answers per replica, per arm and phase
	AnswersCSV  = "answers.csv"  // every answer, one row each, for a spreadsheet
	ReportHTML  = "report.html"  // the page to project: tables, findings, charts
)

// WriteReport writes the report folder: the files above and the charts. The page loads
// nothing from the internet; its pictures sit beside it.
func WriteReport(dir string, r *Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ResultsJSON), b, 0o644); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, ResultsCSV), r.Rows()); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, ReplicasCSV), r.ShareRows()); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, AnswersCSV), answerRows(r)); err != nil {
		return err
	}
	charts, err := WriteCharts(dir, r)
	if err != nil {
		return fmt.Errorf("drawing the charts: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, ReportHTML))
	if err != nil {
		return err
	}
	if err := page.Execute(f, pageData{R: r, Charts: charts, Findings: Findings(r)}); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", ReportHTML, err)
	}
	return f.Close()
}

func writeCSV(path string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.WriteAll(rows) // flushes; the error comes back from w.Error
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

func answerRows(r *Results) [][]string {
	rows := [][]string{{"arm", "visitor", "seq", "start_ms", "latency_ms", "status", "replica", "visits", "error"}}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }
	for _, a := range r.Arms {
		for _, ans := range a.Answers {
			rows = append(rows, []string{a.Name, strconv.Itoa(ans.Visitor), strconv.Itoa(ans.Seq),
				f(ans.StartMS), f(ans.LatencyMS), strconv.Itoa(ans.Status), ans.Replica,
				strconv.Itoa(ans.Visits), ans.Error})
		}
	}
	return rows
}

// Findings are the run's lessons in plain words, from its own numbers.
func Findings(r *Results) []string {
	var fs []string
	for _, a := range r.Arms {
		s := a.Summary
		cont := "n/a"
		if sh, ok := s.Continuity.Share(); ok {
			cont = percent(sh)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %s of the answers carried the visitor's count on", a.Name, cont)
		if lost, had := s.Lost(); len(s.Losses) > 0 {
			var reps []string
			for _, l := range s.Losses {
				reps = append(reps, l.Replica)
			}
			fmt.Fprintf(&b, "; of the %d visitors last served by %s when it went down, %d had to start again", had, strings.Join(reps, ", "), lost)
		}
		if so := s.ScaleOut; so != nil {
			fmt.Fprintf(&b, "; the new replica %s served %d of %d returning visitors and %d of %d new ones",
				so.Replica, so.ReturningOnNew, so.Returning, so.NewOnNew, so.New)
		}
		if s.Failed > 0 {
			fmt.Fprintf(&b, "; %d of %d requests failed (%s)", s.Failed, s.Requests, failureSummary(s.FailedWith))
		} else {
			fmt.Fprintf(&b, "; no request failed")
		}
		fs = append(fs, b.String()+".")
	}
	return fs
}

type pageData struct {
	R        *Results
	Charts   []Chart
	Findings []string
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"head": func(rows [][]string) []string { return rows[0] },
	"body": func(rows [][]string) [][]string { return rows[1:] },
	"join": func(xs []string) string { return strings.Join(xs, ", ") },
	"secs": func(x float64) string { return fmt.Sprintf("%.1f s", x) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sticky vs stateless: lab run {{.R.Started.Format "2006-01-02 15:04"}} UTC</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.8em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; font-size: 1.1em; }
th, td { padding: .35em .9em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child, td.l { text-align: left; }
th { background: #f3f3f3; }
li { margin: .4em 0; font-size: 1.1em; }
figure { margin: 1.5em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; }
.small { color: #666; font-size: .9em; }
</style>
</head>
<body>
<h1>Sticky sessions vs stateless scaling</h1>
<p class="small">Run of {{.R.Started.Format "2006-01-02 15:04:05"}} UTC, {{if eq .R.Mode "local"}}on local stacks started by the lab{{else}}against {{.R.Settings.URL}}{{end}}:
{{.R.Settings.Clients}} visitors per arm ({{.R.Settings.Parallel}} at a time), {{.R.Settings.Requests}} requests to /service1 each{{if gt .R.Settings.ThinkMS 0}} about {{.R.Settings.ThinkMS}} ms apart{{end}},
{{with .R.Settings.SessionTTL}}SESSION_TTL={{.}}, {{end}}{{with .R.Settings.Balance}}balance {{.}}, {{end}}{{with .R.Settings.CookiePath}}COOKIE_PATH={{.}}, {{end}}
{{if eq .R.Mode "local"}}{{.R.Settings.Replicas}} replicas to start with, {{end}}events: {{if .R.Settings.Events}}{{join .R.Settings.Events}}{{else}}none{{end}};
the load took {{secs .R.DurationS}}.</p>
{{range .R.Notes}}<p><b>Note:</b> {{.}}</p>{{end}}

<h2>The arms</h2>
<ul>{{range .R.Arms}}<li><b>{{.Name}}</b>: {{.Title}}</li>{{end}}</ul>
<p class="small">Only the answers of /service1 are measured.{{if eq .R.Mode "local"}} Every visitor also opens /service2 after each 5th page, as people click around a site: with COOKIE_PATH=/ (the 2018 trap) that visit replaces the service1 cookie.{{end}}</p>

<h2>Results</h2>
<table>
<tr>{{range head .R.Rows}}<th>{{.}}</th>{{end}}</tr>
{{range body .R.Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<p class="small"><b>continuity</b>: share of answers whose visit count is exactly the same visitor's previous count + 1.
<b>lost at failover</b>: of the visitors last served by a replica when it was killed or restarted (and seen again after), how many had to start again.
<b>req/s</b>: good answers per second. <b>p50 / p99</b>: half / 99% of the answers came faster than this.</p>

<h2>What this run shows</h2>
<ul>{{range .Findings}}<li>{{.}}</li>{{end}}</ul>

<h2>Who answered</h2>
<p>Share of each phase's answers per replica (the phases are cut by the events).</p>
<table>
<tr>{{range $i, $h := head .R.ShareRows}}<th{{if lt $i 2}} style="text-align:left"{{end}}>{{$h}}</th>{{end}}</tr>
{{range body .R.ShareRows}}<tr>{{range $i, $c := .}}<td{{if lt $i 2}} class="l"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>

<h2>Charts</h2>
{{range .Charts}}<figure><img src="{{.Name}}.png" alt="{{.Caption}}"><figcaption>{{.Caption}} (<a href="{{.Name}}.svg">SVG</a>)</figcaption></figure>
{{end}}
<p class="small">Every answer is in answers.csv (and results.json) beside this page: open it in a spreadsheet to check any number above.</p>
</body>
</html>
`))
