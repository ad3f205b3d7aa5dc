package pool

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDefaultPolicyIsValid(t *testing.T) {
	p := DefaultScalingPolicy()
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultPolicy().Validate() = %v", err)
	}
	// The documented defaults.
	if p.Interval != 100*time.Millisecond || p.Window != time.Minute ||
		p.GrowQueueRatio != 0.8 || p.GrowArrivalFactor != 1.5 || p.GrowStep != 0.25 ||
		p.ShrinkQueueRatio != 0.2 || p.ShrinkArrivalFactor != 0.7 || p.ShrinkStep != 0.15 {
		t.Fatalf("DefaultPolicy() = %+v", p)
	}
}

func TestValidateRejectsBadPolicies(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		field string
		edit  func(*ScalingPolicy)
	}{
		{"Interval", func(p *ScalingPolicy) { p.Interval = 0 }},
		{"Interval", func(p *ScalingPolicy) { p.Interval = -time.Second }},
		{"Alpha", func(p *ScalingPolicy) { p.Alpha = 0 }},
		{"Alpha", func(p *ScalingPolicy) { p.Alpha = 1.01 }},
		{"Alpha", func(p *ScalingPolicy) { p.Alpha = nan }},
		{"Window", func(p *ScalingPolicy) { p.Window = p.Interval - 1 }},
		{"Window", func(p *ScalingPolicy) { p.Window = 0 }},
		{"Window", func(p *ScalingPolicy) { p.Interval, p.Window = time.Nanosecond, time.Hour }},
		{"GrowQueueRatio", func(p *ScalingPolicy) { p.GrowQueueRatio = 0 }},
		{"GrowQueueRatio", func(p *ScalingPolicy) { p.GrowQueueRatio = 1.5 }},
		{"GrowArrivalFactor", func(p *ScalingPolicy) { p.GrowArrivalFactor = 1 }},
		{"GrowArrivalFactor", func(p *ScalingPolicy) { p.GrowArrivalFactor = math.Inf(1) }},
		{"GrowArrivalFactor", func(p *ScalingPolicy) { p.GrowArrivalFactor = nan }},
		{"GrowStep", func(p *ScalingPolicy) { p.GrowStep = 0 }},
		{"GrowStep", func(p *ScalingPolicy) { p.GrowStep = 11 }},
		{"ShrinkQueueRatio", func(p *ScalingPolicy) { p.ShrinkQueueRatio = -0.1 }},
		{"ShrinkQueueRatio", func(p *ScalingPolicy) { p.ShrinkQueueRatio = p.GrowQueueRatio }},
		{"ShrinkArrivalFactor", func(p *ScalingPolicy) { p.ShrinkArrivalFactor = 0 }},
		{"ShrinkArrivalFactor", func(p *ScalingPolicy) { p.ShrinkArrivalFactor = 1 }},
		{"ShrinkBusyRatio", func(p *ScalingPolicy) { p.ShrinkBusyRatio = -1 }},
		{"ShrinkBusyRatio", func(p *ScalingPolicy) { p.ShrinkBusyRatio = 1 }},
		{"SaturationRatio", func(p *ScalingPolicy) { p.SaturationRatio = p.ShrinkBusyRatio }},
		{"SaturationRatio", func(p *ScalingPolicy) { p.SaturationRatio = 1.1 }},
		{"ShrinkStep", func(p *ScalingPolicy) { p.ShrinkStep = 0 }},
		{"ShrinkStep", func(p *ScalingPolicy) { p.ShrinkStep = 1 }},
		{"Headroom", func(p *ScalingPolicy) { p.Headroom = 0.99 }},
		{"Headroom", func(p *ScalingPolicy) { p.Headroom = nan }},
		{"GrowBusyCap", func(p *ScalingPolicy) { p.GrowBusyCap = 0.5 }},
		{"GrowBusyCap", func(p *ScalingPolicy) { p.GrowBusyCap = -1 }},
		{"GrowBusyCap", func(p *ScalingPolicy) { p.GrowBusyCap = 1001 }},
		{"GrowBusyCap", func(p *ScalingPolicy) { p.GrowBusyCap = nan }},
		{"Cooldown", func(p *ScalingPolicy) { p.Cooldown = -1 }},
		{"ShrinkCooldown", func(p *ScalingPolicy) { p.ShrinkCooldown = p.Cooldown - 1 }},
		{"ShrinkCooldown", func(p *ScalingPolicy) {
			p.Interval, p.Window, p.ShrinkCooldown = time.Nanosecond, time.Microsecond, time.Hour
		}},
		{"Interval", func(p *ScalingPolicy) { *p = ScalingPolicy{} }},
	}
	for _, c := range cases {
		p := DefaultScalingPolicy()
		c.edit(&p)
		err := p.Validate()
		var pe *ScalingPolicyError
		if !errors.Is(err, ErrInvalidScalingPolicy) || !errors.As(err, &pe) || pe.Field != c.field {
			t.Errorf("%s: Validate() = %v, want a *PolicyError for %s", c.field, err, c.field)
			continue
		}
		if !strings.Contains(err.Error(), c.field) || pe.Want == "" {
			t.Errorf("%s: message %q does not say what is wanted", c.field, err)
		}
		if s, err := newScalingEngine(p); s != nil || !errors.Is(err, ErrInvalidScalingPolicy) {
			t.Errorf("%s: NewScaler = %v, %v, want nil and ErrInvalidPolicy", c.field, s, err)
		}
	}
}

// Edges that are valid: the ends of each range that are included.
func TestValidateAcceptsEdges(t *testing.T) {
	edits := []func(*ScalingPolicy){
		func(p *ScalingPolicy) { p.Alpha = 1 },
		func(p *ScalingPolicy) { p.Window = p.Interval },
		func(p *ScalingPolicy) { p.GrowQueueRatio = 1 },
		func(p *ScalingPolicy) { p.GrowStep = 10 },
		func(p *ScalingPolicy) { p.ShrinkQueueRatio = 0 },
		func(p *ScalingPolicy) { p.ShrinkBusyRatio = 0 },
		func(p *ScalingPolicy) { p.SaturationRatio = 1 },
		func(p *ScalingPolicy) { p.Headroom = 1 },
		func(p *ScalingPolicy) { p.GrowBusyCap = 0 },
		func(p *ScalingPolicy) { p.GrowBusyCap = 1 },
		func(p *ScalingPolicy) { p.GrowBusyCap = 1000 },
		func(p *ScalingPolicy) { p.Cooldown, p.ShrinkCooldown = 0, 0 },
	}
	for i, e := range edits {
		p := DefaultScalingPolicy()
		e(&p)
		if err := p.Validate(); err != nil {
			t.Errorf("edit %d: %v", i, err)
		}
	}
}
