package main

import (
	"fmt"
	"image/color"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart draws the median req/s of every scenario 1 and 2 row as horizontal bars,
// ours in blue and the others in grey, the range of the runs as a thin line, and
// saves it as an SVG.
func (r *Results) Chart(path string) error {
	rows := append(append([]Measurement(nil), r.Service...), r.Proxy...)
	if len(rows) == 0 {
		return fmt.Errorf("no rows to draw")
	}
	// The plot's Y axis counts from the bottom: put the first row on top.
	n := len(rows)
	ours, others := make(plotter.Values, n), make(plotter.Values, n)
	labels := make([]string, n)
	ranges := make(plotter.XYs, 0, 2*n)
	for i, m := range rows {
		y := n - 1 - i
		labels[y] = m.Label
		if strings.HasPrefix(m.Server, "ours") {
			ours[y] = m.RPS.Median
		} else {
			others[y] = m.RPS.Median
		}
		ranges = append(ranges, plotter.XY{X: m.RPS.Min, Y: float64(y)}, plotter.XY{X: m.RPS.Max, Y: float64(y)})
	}

	p := plot.New()
	p.Add(plotter.NewGrid()) // first, so the bars are drawn over it
	p.Title.Text = fmt.Sprintf("swarm-affinity: req/s, median of %d runs (%s, %d cores, %d connections)",
		r.Method.Reps, r.Machine.CPUModel, r.Machine.Cores, r.Method.Connections)
	p.X.Label.Text = "requests per second (servers on one core, wrk on the other)"
	p.X.Min = 0
	width := vg.Points(11)
	for _, s := range []struct {
		v   plotter.Values
		c   color.Color
		leg string
	}{{ours, color.RGBA{R: 0x1f, G: 0x6f, B: 0xb4, A: 0xff}, "swarm-affinity"},
		{others, color.RGBA{R: 0xa0, G: 0xa0, B: 0xa0, A: 0xff}, "Node original, HAProxy, ceilings"}} {
		bc, err := plotter.NewBarChart(s.v, width)
		if err != nil {
			return err
		}
		bc.Horizontal = true
		bc.Color = s.c
		bc.LineStyle.Width = 0
		p.Add(bc)
		p.Legend.Add(s.leg, bc)
	}
	for i := 0; i+1 < len(ranges); i += 2 {
		l, err := plotter.NewLine(ranges[i : i+2])
		if err != nil {
			return err
		}
		l.Color = color.Black
		l.Width = vg.Points(1)
		p.Add(l)
	}
	p.Legend.Top = false // bottom right: the last rows are the shortest bars
	p.NominalY(labels...)
	p.X.Tick.Marker = kiloTicks{}

	// A margin on every side: SVG viewers lay text out in their own font, wider
	// than the one the plot measured.
	c := vgsvg.New(9.5*vg.Inch, vg.Length(n)*0.3*vg.Inch+1.7*vg.Inch)
	p.Draw(draw.Crop(draw.New(c), 0.5*vg.Inch, -0.1*vg.Inch, 0.1*vg.Inch, -0.2*vg.Inch))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// kiloTicks labels the req/s axis 0, 10k, 20k...
type kiloTicks struct{}

func (kiloTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = compact(t.Value)
		}
	}
	return ticks
}
