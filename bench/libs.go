package bench

// peers lists the libraries and patterns shoal is compared with, unwrapped.
var peers = []Lib{
	{Name: "goroutines", New: newGoRunner},
	{Name: "goroutines+sync.Pool", New: newGoPoolRunner},
	{Name: "chan", New: newChanRunner},
	{Name: "ants.Pool", New: newAntsRunner},
	{Name: "ants.PoolWithFunc", New: newAntsFuncRunner},
	{Name: "ants.MultiPool", New: newAntsMultiRunner},
	{Name: "pond", New: newPondRunner},
}

// Libs returns every row of the comparison in table order: shoal first, then
// the unordered peers, then the peers wrapped for exclusion (+mutex) and for
// order (+lanes, lanes in a slice indexed by group number; +maplanes, lanes
// found in maps, as keys that are not small integers need).
func Libs() []Lib {
	byName := make(map[string]Lib, len(peers))
	for _, l := range peers {
		byName[l.Name] = l
	}
	libs := append([]Lib(nil), shoalLibs...)
	libs = append(libs, peers...)
	for _, n := range []string{"goroutines", "chan", "ants.Pool", "pond"} {
		libs = append(libs, WithMutex(byName[n]))
	}
	for _, n := range []string{"chan", "ants.Pool", "pond"} {
		libs = append(libs, WithLanes(byName[n]))
	}
	for _, n := range []string{"chan", "ants.Pool", "pond"} {
		libs = append(libs, WithMapLanes(byName[n]))
	}
	return libs
}

// LibByName returns the row called name.
func LibByName(name string) (Lib, bool) {
	for _, l := range Libs() {
		if l.Name == name {
			return l, true
		}
	}
	return Lib{}, false
}
