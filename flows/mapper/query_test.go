package mapper

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/flows"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeResponse(t *testing.T) {
	cases := map[string]struct {
		file        string
		status      int
		contentType string
		wantIntents int
		wantErr     string
	}{
		"good":         {file: "answer.good.json", status: 200, wantIntents: 5},
		"no edges yet": {file: "answer.empty.json", status: 200, wantIntents: 0},
		"query the mapper refuses": {
			file: "answer.validation-failed.json", status: 422,
			wantErr: `HTTP 422 Unprocessable Entity: Cannot query field "podOwnerKind" on type "OtterizeServiceIdentity". [GRAPHQL_VALIDATION_FAILED]`,
		},
		"resolver error": {
			file: "answer.resolver-error.json", status: 200,
			wantErr: "GraphQL errors: internal system error (at intents)",
		},
		"errors with partial data are not used": {
			file: "answer.partial.json", status: 200,
			wantErr: "GraphQL errors: could not resolve server (at intents.1.server)",
		},
		"data null without errors": {
			file: "answer.no-data.json", status: 200,
			wantErr: `response has no data.intents: "{\"data\":null}"`,
		},
		"a field of the wrong type": {
			file: "answer.wrong-type.json", status: 200,
			wantErr: `response is not GraphQL JSON (Content-Type "application/json"): json: cannot unmarshal number into Go struct field identity.data.intents.client.name of type string`,
		},
		"a proxy's error page": {
			file: "answer.proxy.html", status: 502, contentType: "text/html",
			wantErr: `HTTP 502 Bad Gateway: "<html><head><title>502 Bad Gateway</title>`,
		},
		"a proxy's page with status 200": {
			file: "answer.proxy.html", status: 200, contentType: "text/html",
			wantErr: `response is not GraphQL JSON (Content-Type "text/html"): invalid character '<' looking for beginning of value: "<html>`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			got, err := decodeResponse(tc.status, ct, readFixture(t, tc.file))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("decodeResponse: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("decodeResponse succeeded with %d intents, want error %q", len(got), tc.wantErr)
			case tc.wantErr != "" && !strings.HasPrefix(err.Error(), tc.wantErr):
				t.Fatalf("error %q, want prefix %q", err, tc.wantErr)
			}
			if len(got) != tc.wantIntents {
				t.Errorf("got %d intents, want %d", len(got), tc.wantIntents)
			}
		})
	}
}

func TestSnippet(t *testing.T) {
	cases := map[string]struct {
		body string
		want string
	}{
		"empty":            {body: " \n", want: "empty body"},
		"short":            {body: "oops\n", want: `"oops"`},
		"long is cut":      {body: strings.Repeat("a", 300), want: `"` + strings.Repeat("a", 256) + `"...`},
		"cut on a rune":    {body: strings.Repeat("a", 255) + "é" + "tail", want: `"` + strings.Repeat("a", 255) + `"...`},
		"binary is quoted": {body: "\x00\x01", want: `"\x00\x01"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := snippet([]byte(tc.body)); got != tc.want {
				t.Errorf("snippet = %s, want %s", got, tc.want)
			}
		})
	}
}

// goldenEvent prints Kind by name so the golden file reads without the enum at hand.
type goldenEvent struct {
	Kind string
	flows.Event
}

// TestGoodAnswerGolden polls a server answering with a recorded mapper answer and checks
// every event the Source makes of it.
func TestGoodAnswerGolden(t *testing.T) {
	answer := readFixture(t, "answer.good.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}))
	t.Cleanup(srv.Close)

	cfg := Default()
	cfg.URL = srv.URL + "/query"
	src, err := New(cfg, WithClock(clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var golden []goldenEvent
	// The first poll yields its events without waiting on the (fake) clock.
	for range 5 {
		ev, err := src.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if ev.Health != nil {
			ev.Health.Message = strings.ReplaceAll(ev.Health.Message, srv.URL, "http://MAPPER")
		}
		golden = append(golden, goldenEvent{Kind: ev.Kind.String(), Event: ev})
	}
	if len(src.pending) != 0 {
		t.Errorf("%d events left after the first 5: %+v", len(src.pending), src.pending)
	}
	got, err := json.MarshalIndent(golden, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "answer.good.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("events of answer.good.json (-want +got), rerun with -update if intended:\n%s", diff)
	}
}
