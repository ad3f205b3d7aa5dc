package backpressure

// WithRoot makes budget detection read /proc and /sys under dir.
func WithRoot(dir string) Option {
	return optionFunc(func(c *config) { c.root = dir })
}
