"""Development tools, not shipped with netspec: random specs and the shrinker (`randspec`),
test weights and inputs, the op examples (`testing`), and the float64 reference interpreter
(`reference`)."""
