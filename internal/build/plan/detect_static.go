package plan

func detectStatic(d *dirInfo, forced bool) (Detection, bool, error) {
	det := Detection{Language: Static, Tool: "static", Details: map[string]string{}}
	if d.has("index.html") {
		det.DecidedBy = "index.html"
	}
	return det, det.DecidedBy != "", nil
}
