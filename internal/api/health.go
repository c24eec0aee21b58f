package api

import "net/http"

// healthz answers 200 only when every phase of the server is ready.
func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	ready := true
	if a.cfg.Health != nil {
		ready, _ = a.cfg.Health()
	}
	if !ready {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz lists the phases with their state.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	ready, phases := true, any([]any{})
	if a.cfg.Health != nil {
		ready, phases = a.cfg.Health()
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "phases": phases})
}
