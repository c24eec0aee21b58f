package model

// CycleWith returns the cycle that adding the edge from -> to would close,
// as a path from -> to -> ... -> from, or nil if the graph stays acyclic.
func CycleWith(deps []Dependency, from, to string) []string {
	next := map[string][]string{}
	for _, d := range deps {
		next[d.From] = append(next[d.From], d.To)
	}
	// A path to -> ... -> from plus the new edge is a cycle.
	seen := map[string]bool{}
	var path []string
	var walk func(n string) bool
	walk = func(n string) bool {
		path = append(path, n)
		if n == from {
			return true
		}
		if !seen[n] {
			seen[n] = true
			for _, m := range next[n] {
				if walk(m) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if !walk(to) {
		return nil
	}
	return append([]string{from}, path...)
}
