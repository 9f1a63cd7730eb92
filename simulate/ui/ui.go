// Package ui renders a simulation report as one self-contained HTML page: a namespace
// overview, an access graph of every observed edge coloured by what enforcement would do
// to it, and the uncovered edges with the ClientIntents that would cover them. The page
// carries its data, styles and script inline and loads nothing from the network, so the
// file can be mailed, archived as a CI artifact or opened offline.
//
// The same page is served live by Handler, which refreshes it from a /report endpoint.
package ui

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"strings"

	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/suggest"
)

//go:embed assets/page.html assets/app.css assets/app.js
var assets embed.FS

var page = template.Must(template.ParseFS(assets, "assets/page.html"))

// The stylesheet and script are inlined, not linked: a saved page must work alone.
var (
	css = mustRead("assets/app.css")
	js  = mustRead("assets/app.js")
)

func mustRead(name string) string {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return string(b)
}

// Data is what the page's script reads: the report as the JSON contract has it (with
// whatever fields the producer added), the suggestions keyed to its edges, and for a
// live page where to refresh from.
type Data struct {
	Report      *simulate.Report `json:"report"`
	Suggestions []Suggestion     `json:"suggestions"`
	Notes       []Note           `json:"notes"`
	// Merged says whether the suggestions were merged with the cluster's ClientIntents.
	Merged bool  `json:"merged"`
	Live   *Live `json:"live,omitempty"`
}

// Suggestion is one suggested ClientIntents object and the edges it covers.
type Suggestion struct {
	Object  string   `json:"object"` // namespace/name
	Client  string   `json:"client"` // namespace/name
	Kind    string   `json:"kind,omitempty"`
	Extends string   `json:"extends,omitempty"`
	File    string   `json:"file"`
	YAML    string   `json:"yaml"`
	Edges   []string `json:"edges"` // suggest.EdgeKey of each covered edge
	Targets []string `json:"targets"`
}

// Note is an uncovered edge that ClientIntents cannot cover, and what to do instead.
type Note struct {
	Kind   string `json:"kind"`
	Edge   string `json:"edge"` // suggest.EdgeKey
	Advice string `json:"advice"`
	Detail string `json:"detail,omitempty"`
}

// Live configures a page that refreshes itself.
type Live struct {
	// ReportURL is fetched by the browser, relative to the page or absolute.
	ReportURL string `json:"reportURL"`
	// SuggestPath, relative to the page's directory, turns a report into suggestions.
	SuggestPath    string `json:"suggestPath"`
	RefreshSeconds int    `json:"refreshSeconds"`
}

// NewData pairs a report with its suggestions. A nil sug is computed from the report
// alone (not merged with any ClientIntents).
func NewData(rep *simulate.Report, sug *suggest.Result) (*Data, error) {
	if rep == nil {
		return nil, fmt.Errorf("ui: nil report")
	}
	if sug == nil {
		var err error
		if sug, err = suggest.Suggest(rep, nil, suggest.Options{}); err != nil {
			return nil, err
		}
	}
	d := &Data{Report: rep, Merged: sug.Merged, Suggestions: []Suggestion{}, Notes: []Note{}}
	if err := d.setSuggestions(sug); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Data) setSuggestions(sug *suggest.Result) error {
	for _, in := range sug.Intents {
		y, err := in.YAML()
		if err != nil {
			return err
		}
		s := Suggestion{
			Object: in.Key(), Client: in.Namespace + "/" + in.Client.Name, Kind: in.Client.Kind,
			Extends: in.Extends, File: in.File, YAML: string(y), Edges: []string{}, Targets: []string{},
		}
		for _, a := range in.Added {
			s.Targets = append(s.Targets, a.Target)
			for _, e := range a.Edges {
				s.Edges = append(s.Edges, suggest.EdgeKey(e))
			}
		}
		d.Suggestions = append(d.Suggestions, s)
	}
	for _, n := range sug.Notes {
		d.Notes = append(d.Notes, Note{Kind: string(n.Kind), Edge: suggest.EdgeKey(n.Edge), Advice: n.Advice(), Detail: n.Detail})
	}
	return nil
}

// Render writes the page for rep. sug are the suggestions to show with it; nil computes
// them from the report alone (not merged with any ClientIntents).
func Render(w io.Writer, rep *simulate.Report, sug *suggest.Result) error {
	d, err := NewData(rep, sug)
	if err != nil {
		return err
	}
	return render(w, d, "")
}

// render executes the page template. connect is an extra origin the page may fetch from
// (a live page's absolute report URL); the Content-Security-Policy forbids every other
// request, which is what makes "self-contained" checkable.
func render(w io.Writer, d *Data, connect string) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("ui: page data: %w", err)
	}
	csp := "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
	if d.Live != nil {
		csp += "; connect-src 'self'"
		if connect != "" {
			csp += " " + connect
		}
	}
	return page.Execute(w, struct {
		CSP  string
		CSS  template.CSS
		JS   template.JS
		Data template.JS
	}{
		CSP: csp,
		CSS: template.CSS(css),
		JS:  template.JS(js),
		// encoding/json escapes <, > and & (and U+2028/9), so the data cannot end the
		// script element it sits in.
		Data: template.JS(data),
	})
}

// originOf returns scheme://host of an absolute URL, "" for a relative one.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + u.Host
}
