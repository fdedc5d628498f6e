package lab

import (
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart sizes: 16:9, readable on a projector. PNGs are drawn at chartDPI.
const (
	chartW   = 8 * vg.Inch
	chartH   = 4.5 * vg.Inch
	chartDPI = 120
)

// Chart is one picture of the report: its file name without extension (a .png and a
// .svg are written) and what it shows.
type Chart struct {
	Name    string `json:"name"`
	Caption string `json:"caption"`
}

// WriteCharts draws the charts into dir: the requests per replica over time for each
// arm, and the continuity of every arm. Everything is drawn locally (the fonts are
// compiled in): no network.
func WriteCharts(dir string, r *Results) ([]Chart, error) {
	p, err := continuityChart(r)
	if err != nil {
		return nil, err
	}
	c := Chart{Name: "continuity", Caption: "Session continuity per arm: the share of answers that carried the visitor's count on by exactly 1"}
	if err := save(p, dir, c.Name); err != nil {
		return nil, err
	}
	charts := []Chart{c}
	until := 0.0
	for _, a := range r.Arms {
		until = max(until, a.EndMS)
	}
	bucket := max(100, until/40) // about 40 points per line, never under 0.1 s
	replicas := r.replicas()
	for _, a := range r.Arms {
		p, err := timelineChart(a, replicas, bucket, until)
		if err != nil {
			return nil, err
		}
		c := Chart{Name: "requests-" + a.Name,
			Caption: fmt.Sprintf("%s: answers per second from each replica over the run; dashed lines mark the events", a.Name)}
		if err := save(p, dir, c.Name); err != nil {
			return nil, err
		}
		charts = append(charts, c)
	}
	return charts, nil
}

// colors gives each replica the same color in every chart.
func replicaColor(replicas []string, name string) color.Color {
	for i, r := range replicas {
		if r == name {
			return plotutil.Color(i)
		}
	}
	return color.Gray{Y: 128}
}

func timelineChart(a ArmResult, replicas []string, bucketMS, untilMS float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Arm %q: who answered, over time", a.Name)
	p.Title.Padding = vg.Points(6)
	p.Y.Tick.Marker = wholeTicks{}
	p.X.Label.Text = "seconds since the start"
	p.Y.Label.Text = "answers per second"
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	n, counts := Timeline(a.Answers, bucketMS, untilMS)
	perSecond := 1000 / bucketMS
	ymax := 1.0
	for _, rep := range replicas {
		c, ok := counts[rep]
		if !ok {
			continue
		}
		xys := make(plotter.XYs, n)
		for i := range n {
			xys[i].X = (float64(i) + 0.5) * bucketMS / 1000
			xys[i].Y = float64(c[i]) * perSecond
			ymax = max(ymax, xys[i].Y)
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color = replicaColor(replicas, rep)
		l.Width = vg.Points(2)
		p.Add(l)
		p.Legend.Add(rep, l)
	}
	top := ymax * 1.25 // room for the legend and the event labels
	var labels plotter.XYLabels
	for _, ev := range a.Events {
		if ev.Error != "" {
			continue
		}
		x := ev.StartMS / 1000
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: top}})
		if err != nil {
			return nil, err
		}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		l.Color = color.Gray{Y: 80}
		p.Add(l)
		labels.XYs = append(labels.XYs, plotter.XY{X: x, Y: top * (0.97 - 0.06*float64(len(labels.XYs)%3))})
		labels.Labels = append(labels.Labels, " "+ev.describe())
	}
	if len(labels.XYs) > 0 {
		l, err := plotter.NewLabels(labels)
		if err != nil {
			return nil, err
		}
		p.Add(l)
	}
	p.X.Min, p.X.Max = 0, untilMS/1000
	p.Y.Min, p.Y.Max = 0, top
	return p, nil
}

func continuityChart(r *Results) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Session continuity per arm"
	p.Title.Padding = vg.Points(6)
	p.Y.Tick.Marker = wholeTicks{}
	p.Y.Label.Text = "% of answers that counted on"
	p.Add(plotter.NewGrid())
	var names []string
	for i, a := range r.Arms {
		sh, _ := a.Summary.Continuity.Share()
		vals := make(plotter.Values, len(r.Arms))
		vals[i] = sh * 100
		b, err := plotter.NewBarChart(vals, vg.Points(60))
		if err != nil {
			return nil, err
		}
		b.Color = armColor(a.Name)
		b.LineStyle.Width = 0
		p.Add(b)
		names = append(names, a.Name)
		lbl, err := plotter.NewLabels(plotter.XYLabels{
			XYs:    []plotter.XY{{X: float64(i), Y: sh*100 + 2}},
			Labels: []string{percent(sh)},
		})
		if err != nil {
			return nil, err
		}
		lbl.TextStyle[0].XAlign = draw.XCenter
		p.Add(lbl)
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4 // room on both sides of the end bars
	p.Y.Min, p.Y.Max = 0, 112
	return p, nil
}

// wholeTicks labels an axis with whole numbers ("250", not "250.00").
type wholeTicks struct{}

func (wholeTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}

// armColor: green for the sticky arm, blue for stateless, red for the mistake.
func armColor(name string) color.Color {
	switch name {
	case "sticky":
		return color.RGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0xff}
	case "stateless":
		return color.RGBA{R: 0x1f, G: 0x6f, B: 0xb4, A: 0xff}
	}
	return color.RGBA{R: 0xc0, G: 0x39, B: 0x2b, A: 0xff}
}

// save writes name.png and name.svg into dir.
func save(p *plot.Plot, dir, name string) error {
	png := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(chartW, chartH), vgimg.UseDPI(chartDPI))}
	p.Draw(draw.New(png))
	if err := writeTo(filepath.Join(dir, name+".png"), png.WriteTo); err != nil {
		return err
	}
	svg := vgsvg.NewWith(vgsvg.UseWH(chartW, chartH))
	p.Draw(draw.New(svg))
	return writeTo(filepath.Join(dir, name+".svg"), svg.WriteTo)
}

func writeTo(path string, write func(w io.Writer) (int64, error)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
