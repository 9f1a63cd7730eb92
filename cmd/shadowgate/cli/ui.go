package cli

import (
	"net/http"

	"github.com/shadowgate/shadowgate/simulate/ui"
)

// registerUI serves the access-graph page live at /ui, refreshing from /report.
func registerUI(mux *http.ServeMux) {
	h := ui.Handler("/report")
	mux.Handle("GET /ui", h)
	mux.Handle("GET /ui/", h)
	mux.Handle("POST /ui/suggest", h)
}
