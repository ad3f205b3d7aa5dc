package chatsim

import (
	"fmt"
	"math"
)

// dayShape is the relative message rate of a chat service at each hour of the
// day, 00:00 to 23:00: quiet from 02:00 to 05:00, a working-day plateau, and
// an evening peak at 20:00. It is normalised to a mean of 1 by newDay; the
// figures are chosen so that the peak is then 3 × the mean.
var dayShape = [24]float64{
	0.60, 0.35, 0.20, 0.15, 0.15, 0.20, // 00–05 night
	0.40, 0.60, 0.80, 0.90, 0.90, 0.95, // 06–11 morning
	1.00, 0.95, 0.90, 0.90, 0.95, 1.10, // 12–17 afternoon
	1.50, 2.30, 3.00, 2.60, 1.70, 1.00, // 18–23 evening peak
}

// day is a 24-hour rate curve, linear between the hours and cyclic, with a
// mean of 1 over the day.
type day struct {
	hour [24]float64
	peak float64
}

func newDay() day {
	var d day
	sum := 0.0
	for _, v := range dayShape {
		sum += v
	}
	mean := sum / 24 // the mean of a cyclic piecewise-linear curve is the mean of its knots
	for h, v := range dayShape {
		d.hour[h] = v / mean
		d.peak = math.Max(d.peak, d.hour[h])
	}
	return d
}

// factor returns the rate relative to the mean at frac of the day (0 ≤ frac < 1).
func (d *day) factor(frac float64) float64 {
	x := frac * 24
	x -= 24 * math.Floor(x/24)
	h := int(x)
	if h > 23 {
		h = 23
	}
	w := x - float64(h)
	return d.hour[h]*(1-w) + d.hour[(h+1)%24]*w
}

// clock formats frac of the day as hh:mm.
func clock(frac float64) string {
	if frac < 0 {
		frac = 0
	}
	m := int(frac*24*60) % (24 * 60)
	return fmt.Sprintf("%02d:%02d", m/60, m%60)
}
