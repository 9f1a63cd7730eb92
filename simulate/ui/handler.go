package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/suggest"
)

// DefaultRefresh is how often a live page fetches the report.
const DefaultRefresh = 15 * time.Second

// maxReportBytes bounds what the suggest endpoint reads: a report of thousands of edges
// is a few megabytes.
const maxReportBytes = 64 << 20

// Suggester computes the suggestions for a live report. A daemon that holds the cluster
// snapshot passes one that merges with the cluster's ClientIntents.
type Suggester func(*simulate.Report) (*suggest.Result, error)

// Option configures Handler.
type Option func(*handler)

// WithRefresh sets how often the page refreshes (at least one second).
func WithRefresh(d time.Duration) Option {
	return func(h *handler) {
		if d < time.Second {
			d = time.Second
		}
		h.refresh = d
	}
}

// WithSuggester replaces the default suggester, which knows only the report (its new
// objects are named <client>-suggested, see suggest.SuggestedSuffix).
func WithSuggester(s Suggester) Option { return func(h *handler) { h.suggest = s } }

type handler struct {
	reportURL string
	refresh   time.Duration
	suggest   Suggester
}

// Handler serves the report page live: the browser fetches reportURL (relative to the
// page, or absolute) every refresh period and posts it to the handler's "suggest"
// endpoint for the suggested ClientIntents. Mount it at a directory path, with or
// without http.StripPrefix:
//
//	mux.Handle("/ui/", http.StripPrefix("/ui", ui.Handler("/report")))
//
// GET on any path serves the page; POST on a path ending in /suggest answers
// suggestions for the report in the body. With method patterns, register both:
//
//	mux.Handle("GET /ui/", h)
//	mux.Handle("POST /ui/suggest", h)
//
// Without the POST route the page still draws the graph, and says that suggestions are
// unavailable.
func Handler(reportURL string, opts ...Option) http.Handler {
	h := &handler{reportURL: reportURL, refresh: DefaultRefresh, suggest: func(r *simulate.Report) (*suggest.Result, error) {
		return suggest.Suggest(r, nil, suggest.Options{})
	}}
	for _, o := range opts {
		o(h)
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/suggest") {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST a report to get its suggestions", http.StatusMethodNotAllowed)
			return
		}
		h.serveSuggest(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	d := &Data{Suggestions: []Suggestion{}, Notes: []Note{}, Live: &Live{
		ReportURL: h.reportURL, SuggestPath: "suggest", RefreshSeconds: int(h.refresh / time.Second),
	}}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := render(w, d, originOf(h.reportURL)); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// suggestions is the suggest endpoint's answer: Data without the report.
type suggestions struct {
	Suggestions []Suggestion `json:"suggestions"`
	Notes       []Note       `json:"notes"`
	Merged      bool         `json:"merged"`
}

func (h *handler) serveSuggest(w http.ResponseWriter, r *http.Request) {
	var rep simulate.Report
	body := http.MaxBytesReader(w, r.Body, maxReportBytes)
	if err := json.NewDecoder(body).Decode(&rep); err != nil {
		status := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, fmt.Sprintf("report: %v", err), status)
		return
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		http.Error(w, fmt.Sprintf("report: %v", err), http.StatusBadRequest)
		return
	}
	res, err := h.suggest(&rep)
	if err != nil {
		http.Error(w, fmt.Sprintf("suggest: %v", err), http.StatusInternalServerError)
		return
	}
	d := &Data{Suggestions: []Suggestion{}, Notes: []Note{}}
	if err := d.setSuggestions(res); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	_ = enc.Encode(suggestions{Suggestions: d.Suggestions, Notes: d.Notes, Merged: res.Merged})
}
