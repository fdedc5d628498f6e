package lab

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeSticky is a made-up sticky arm: visitors alternate between two replicas, a kill of
// the first one at 1 s moves its visitors (count back at 1), a third joins at 2 s and
// gets half of the visitors arriving after that.
func fakeSticky() ArmResult {
	a := ArmResult{Name: "sticky", Title: "made up", Replicas: []string{"r-1", "r-2"},
		Events: []Event{{Kind: Kill, Replica: "r-1", StartMS: 1000, EndMS: 1001}, {Kind: Scale, Replica: "r-3", StartMS: 2000, EndMS: 2100}},
		EndMS:  3800}
	for v := range 16 {
		home := fmt.Sprintf("r-%d", v%2+1)
		arrive := float64(v/4) * 700 // four visitors arrive every 0.7 s
		if arrive >= 2100 && v%2 == 1 {
			home = "r-3"
		}
		visits := 0
		for seq := 1; seq <= 40; seq++ {
			at := arrive + float64(seq)*40
			if home == "r-1" && at >= 1000 {
				home, visits = "r-2", 0
			}
			visits++
			a.Answers = append(a.Answers, Answer{Visitor: v, Seq: seq, StartMS: at, LatencyMS: 2, Status: 200, Replica: home, Visits: visits})
		}
	}
	return a
}

func TestWriteReport(t *testing.T) {
	t.Parallel()
	a := fakeSticky()
	a.Summary = Summarize(&a)
	r := &Results{Started: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), Mode: "local",
		Settings: Settings{Events: []string{Kill, Scale}}.WithDefaults(), DurationS: 3, Arms: []ArmResult{a}}
	if lost, had := a.Summary.Lost(); lost != 4 || had != 4 {
		t.Errorf("made-up kill: got %d of %d lost, want 4 of 4", lost, had)
	}
	if so := a.Summary.ScaleOut; so == nil || so.Returning != 8 || so.ReturningOnNew != 0 || so.New != 4 || so.NewOnNew != 2 {
		t.Errorf("made-up scale-out: got %+v, want 0 of 8 returning and 2 of 4 new visitors on r-3", so)
	}
	dir := t.TempDir()
	if d := os.Getenv("LAB_KEEP_REPORT"); d != "" {
		dir = d // to look at the made-up report
	}
	if err := WriteReport(dir, r); err != nil {
		t.Fatal(err)
	}
	checkReport(t, dir, r)
	var table bytes.Buffer
	PrintTable(&table, r)
	for _, want := range []string{"continuity", "4 of 4", "after r-1 was killed", "after r-3 was added", "r-3 reached by"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
}

// checkReport checks that the report folder has every file, the charts are real
// non-blank pictures, the page loads nothing from elsewhere, and the JSON reads back.
func checkReport(t *testing.T, dir string, r *Results) {
	t.Helper()
	for _, name := range []string{ResultsJSON, ResultsCSV, ReplicasCSV, AnswersCSV, ReportHTML} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", name, err)
		}
	}
	charts := []string{"continuity"}
	for _, a := range r.Arms {
		charts = append(charts, "requests-"+a.Name)
	}
	for _, c := range charts {
		checkPNG(t, filepath.Join(dir, c+".png"))
		if b, err := os.ReadFile(filepath.Join(dir, c+".svg")); err != nil || !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("%s.svg: not an SVG (%v)", c, err)
		}
	}
	html, err := os.ReadFile(filepath.Join(dir, ReportHTML))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range charts {
		if !bytes.Contains(html, []byte(`src="`+c+`.png"`)) {
			t.Errorf("report.html does not show %s.png", c)
		}
	}
	for _, remote := range []string{"http://", "https://", "//cdn"} {
		if i := bytes.Index(html, []byte(remote)); i >= 0 && !bytes.Contains(html[max(0, i-40):i], []byte("against")) {
			t.Errorf("report.html refers to %q: a classroom may be offline", html[i:min(len(html), i+60)])
		}
	}
	var back Results
	b, _ := os.ReadFile(filepath.Join(dir, ResultsJSON))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Arms) != len(r.Arms) || len(back.Arms[0].Answers) != len(r.Arms[0].Answers) {
		t.Errorf("results.json does not read back whole (%v)", err)
	}
	f, _ := os.Open(filepath.Join(dir, ResultsCSV))
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != len(r.Arms)+1 {
		t.Errorf("results.csv: got %d rows (%v), want a header and one per arm", len(rows), err)
	}
}

// checkPNG fails unless path is a PNG picture of some size with more than one colour.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s: not a PNG: %v", path, err)
		return
	}
	b := img.Bounds()
	if b.Dx() < 300 || b.Dy() < 200 {
		t.Errorf("%s: %dx%d, want a picture of at least 300x200", path, b.Dx(), b.Dy())
	}
	if colours(img) < 3 {
		t.Errorf("%s: blank picture", path)
	}
}

func colours(img image.Image) int {
	seen := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	return len(seen)
}
