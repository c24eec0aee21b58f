package plan

func detectPHP(d *dirInfo, forced bool) (Detection, bool, error) {
	det := Detection{Language: PHP, Tool: "php", Details: map[string]string{}}
	switch {
	case d.has("composer.json"):
		det.Tool, det.DecidedBy = "composer", "composer.json"
		det.Details[DetailComposer] = "true"
		if d.has("composer.lock") {
			det.Details[DetailLockfile] = "composer.lock"
		}
	case d.has("index.php"):
		det.DecidedBy = "index.php"
	}
	return det, det.DecidedBy != "", nil
}
