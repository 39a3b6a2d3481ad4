package policies

// globMatch reports whether s matches pattern, where * matches any run of
// characters (slashes included, so "registry.example/team/*" covers every
// image below it) and ? matches one character. Everything else is literal.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	// Position to resume from after the last *, for backtracking.
	starP, starS := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == s[sx]):
			px++
			sx++
		case px < len(pattern) && pattern[px] == '*':
			starP, starS = px, sx
			px++
		case starP >= 0:
			starS++
			px, sx = starP+1, starS
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}
