package plan

func detectRuby(d *dirInfo, forced bool) (Detection, bool, error) {
	det := Detection{Language: Ruby, Tool: "bundler", Details: map[string]string{}}
	if !d.has("Gemfile") {
		if forced {
			return det, false, &MarkerMissingError{Language: Ruby, Want: "Gemfile"}
		}
		return det, false, nil
	}
	det.DecidedBy = "Gemfile"
	if d.has("Gemfile.lock") {
		det.Details[DetailLockfile] = "Gemfile.lock"
	}
	if d.has("config.ru") {
		det.Details[DetailRack] = "true"
	}
	return det, true, nil
}
