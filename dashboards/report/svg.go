package report

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Colour-blind-safe palette (Okabe & Ito); every chart also carries text
// labels, so no reading depends on colour alone.
const (
	colBlue      = "#0072B2"
	colSky       = "#56B4E9"
	colOrange    = "#E69F00"
	colVermilion = "#D55E00"
	colGreen     = "#009E73"
	colPurple    = "#CC79A7"
	colGrey      = "#6b7280"
	colInk       = "#1f2937"
)

// bar is one labelled value of a chart.
type bar struct {
	Label string
	Value float64
	OK    bool   // false: no value (drawn as "—")
	Text  string // the value as shown
}

func esc(s string) string { return html.EscapeString(s) }

// trendSVG draws a week-over-week column chart; the last column (the
// report's week) is highlighted.
func trendSVG(title string, bars []bar) string {
	const w, h, top, bottom, left = 260.0, 150.0, 28.0, 22.0, 8.0
	maxV := 0.0
	for _, b := range bars {
		if b.OK {
			maxV = math.Max(maxV, b.Value)
		}
	}
	if maxV <= 0 {
		maxV = 1
	}
	var sb strings.Builder
	labels := make([]string, len(bars))
	for i, b := range bars {
		labels[i] = b.Label + " " + b.Text
	}
	fmt.Fprintf(&sb, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`,
		w, h, w, h, esc(title+": "+strings.Join(labels, ", ")))
	fmt.Fprintf(&sb, `<text x="%.0f" y="14" font-size="12" font-weight="600" fill="%s">%s</text>`, left, colInk, esc(title))
	slot := (w - 2*left) / float64(len(bars))
	plotH := h - top - bottom
	fmt.Fprintf(&sb, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="%s" stroke-width="1"/>`, left, h-bottom, w-left, h-bottom, colGrey)
	for i, b := range bars {
		x := left + float64(i)*slot + slot*0.18
		bw := slot * 0.64
		fill := colSky
		if i == len(bars)-1 {
			fill = colBlue
		}
		if b.OK {
			bh := math.Max(1, plotH*b.Value/maxV)
			if b.Value == 0 {
				bh = 1
			}
			y := h - bottom - bh
			fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, y, bw, bh, fill)
			fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="%s">%s</text>`, x+bw/2, y-3, colInk, esc(b.Text))
		} else {
			fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="%s">—</text>`, x+bw/2, h-bottom-4, colGrey)
		}
		fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle" fill="%s">%s</text>`, x+bw/2, h-7, colGrey, esc(shortWeek(b.Label)))
	}
	sb.WriteString(`</svg>`)
	return sb.String()
}

// shortWeek turns 2026-W47 into W47.
func shortWeek(s string) string {
	if i := strings.Index(s, "-W"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// series is one coloured series of a grouped bar chart.
type series struct {
	Name   string
	Colour string
	Values []float64
}

// hbarSVG draws horizontal bars, one group per category, one bar per series,
// with the value written at the end of each bar.
func hbarSVG(title string, cats []string, ss []series) string {
	const w, labelW, rowGap, barH, top = 640.0, 170.0, 8.0, 14.0, 40.0
	groupH := float64(len(ss))*barH + rowGap
	h := top + float64(len(cats))*groupH + 8
	maxV := 0.0
	for _, s := range ss {
		for _, v := range s.Values {
			maxV = math.Max(maxV, v)
		}
	}
	if maxV <= 0 {
		maxV = 1
	}
	plotW := w - labelW - 60
	var sb strings.Builder
	var desc []string
	for ci, c := range cats {
		var parts []string
		for _, s := range ss {
			parts = append(parts, fmt.Sprintf("%s %s", s.Name, num(s.Values[ci])))
		}
		desc = append(desc, c+": "+strings.Join(parts, ", "))
	}
	fmt.Fprintf(&sb, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`,
		w, h, w, h, esc(title+". "+strings.Join(desc, "; ")))
	fmt.Fprintf(&sb, `<text x="0" y="14" font-size="12" font-weight="600" fill="%s">%s</text>`, colInk, esc(title))
	if len(ss) > 1 {
		x := labelW
		for _, s := range ss {
			fmt.Fprintf(&sb, `<rect x="%.0f" y="22" width="10" height="10" fill="%s"/><text x="%.0f" y="31" font-size="10" fill="%s">%s</text>`,
				x, s.Colour, x+14, colInk, esc(s.Name))
			x += 22 + 7*float64(len(s.Name))
		}
	}
	for ci, c := range cats {
		y0 := top + float64(ci)*groupH
		fmt.Fprintf(&sb, `<text x="%.0f" y="%.1f" font-size="11" text-anchor="end" fill="%s">%s</text>`,
			labelW-6, y0+float64(len(ss))*barH/2+4, colInk, esc(c))
		for si, s := range ss {
			v := s.Values[ci]
			bw := plotW * v / maxV
			if v > 0 && bw < 1 {
				bw = 1
			}
			y := y0 + float64(si)*barH
			fmt.Fprintf(&sb, `<rect x="%.0f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, labelW, y+1, bw, barH-2, s.Colour)
			fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" font-size="10" fill="%s">%s</text>`, labelW+bw+4, y+barH-3, colInk, num(v))
		}
	}
	sb.WriteString(`</svg>`)
	return sb.String()
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
