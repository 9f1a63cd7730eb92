package mappertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// post sends a GraphQL request and returns the status and the body, compacted.
func post(t *testing.T, url string, req any) (int, string) {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, out); err != nil {
		return resp.StatusCode, string(out)
	}
	return resp.StatusCode, compact.String()
}

var (
	cart     = Identity{Name: "cart", Namespace: "shop", Kind: "Deployment", Group: "apps", Version: "v1", Labels: map[string]string{"app": "cart", "tier": "web"}}
	redis    = Identity{Name: "redis", Namespace: "shop", Kind: "StatefulSet", Group: "apps", Version: "v1", KubernetesService: "redis"}
	checkout = Identity{Name: "checkout", Namespace: "pay", Labels: map[string]string{"app": "checkout"}}
)

func TestQueries(t *testing.T) {
	const fullIdentity = `{ name namespace podOwnerKind { group version kind } kubernetesService labels { key value } }`
	cases := map[string]struct {
		req        map[string]any
		wantStatus int
		want       string
		// wantRejected is the start of the reason the fake records; a good request is not
		// recorded.
		wantRejected string
	}{
		"shorthand query": {
			req:        map[string]any{"query": `{ intents { client { name } server { name } } }`},
			wantStatus: 200,
			want:       `{"data":{"intents":[{"client":{"name":"checkout"},"server":{"name":"cart"}},{"client":{"name":"cart"},"server":{"name":"redis"}},{"client":{"name":"cart"},"server":{"name":"redis"}}]}}`,
		},
		"named operation with every identity field, comments and commas": {
			req:        map[string]any{"operationName": "Q", "query": "# all of it\nquery Q { intents(includeLabels: [\"app\"]) { client " + fullIdentity + ", server " + fullIdentity + " type } }"},
			wantStatus: 200,
			want: `{"data":{"intents":[` +
				`{"client":{"name":"checkout","namespace":"pay","podOwnerKind":null,"kubernetesService":null,"labels":[{"key":"app","value":"checkout"}]},"server":{"name":"cart","namespace":"shop","podOwnerKind":{"group":"apps","version":"v1","kind":"Deployment"},"kubernetesService":null,"labels":[{"key":"app","value":"cart"}]},"type":null},` +
				`{"client":{"name":"cart","namespace":"shop","podOwnerKind":{"group":"apps","version":"v1","kind":"Deployment"},"kubernetesService":null,"labels":[{"key":"app","value":"cart"}]},"server":{"name":"redis","namespace":"shop","podOwnerKind":{"group":"apps","version":"v1","kind":"StatefulSet"},"kubernetesService":"redis","labels":[]},"type":null},` +
				`{"client":{"name":"cart","namespace":"shop","podOwnerKind":{"group":"apps","version":"v1","kind":"Deployment"},"kubernetesService":null,"labels":[{"key":"app","value":"cart"}]},"server":{"name":"redis","namespace":"shop","podOwnerKind":{"group":"apps","version":"v1","kind":"StatefulSet"},"kubernetesService":"redis","labels":[]},"type":"DATABASE"}]}}`,
		},
		"namespaces filters on the client's namespace": {
			req: map[string]any{
				"query":     `query Q($namespaces: [String!]) { intents(namespaces: $namespaces) { client { name } server { name namespace } } }`,
				"variables": map[string]any{"namespaces": []string{"pay"}},
			},
			wantStatus: 200,
			want:       `{"data":{"intents":[{"client":{"name":"checkout"},"server":{"name":"cart","namespace":"shop"}}]}}`,
		},
		"literal namespace coerced to a list, aliases and __typename": {
			req:        map[string]any{"query": `{ t: __typename edges: intents(namespaces: "shop") { __typename from: client { name } } health }`},
			wantStatus: 200,
			want:       `{"data":{"t":"Query","edges":[{"__typename":"Intent","from":{"name":"cart"}},{"__typename":"Intent","from":{"name":"cart"}}],"health":true}}`,
		},
		"excludeServiceWithLabels and server filter": {
			req:        map[string]any{"query": `{ a: intents(excludeServiceWithLabels: ["app=checkout"]) { client { name } } b: intents(server: {name: "cart", namespace: "shop"}) { client { name } } }`},
			wantStatus: 200,
			want:       `{"data":{"a":[{"client":{"name":"cart"}},{"client":{"name":"cart"}}],"b":[{"client":{"name":"checkout"}}]}}`,
		},
		"a field the schema does not have": {
			req:          map[string]any{"query": `{ intents { client { name } lastSeen } }`},
			wantStatus:   422,
			want:         `{"errors":[{"message":"Cannot query field \"lastSeen\" on type \"Intent\".","locations":[{"line":1,"column":29}],"extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}}],"data":null}`,
			wantRejected: `Cannot query field "lastSeen" on type "Intent".`,
		},
		"an object field without subfields": {
			req:          map[string]any{"query": `{ intents { client } }`},
			wantStatus:   422,
			wantRejected: `Field "client" of type "OtterizeServiceIdentity!" must have a selection of subfields.`,
		},
		"a leaf with subfields": {
			req:          map[string]any{"query": `{ intents { client { name { first } } } }`},
			wantStatus:   422,
			wantRejected: `Field "name" must not have a selection since type "String!" has no subfields.`,
		},
		"an argument the field does not take": {
			req:          map[string]any{"query": `{ intents(namespace: "shop") { client { name } } }`},
			wantStatus:   422,
			wantRejected: `Unknown argument "namespace" on field "Query.intents".`,
		},
		"a variable used but not declared": {
			req:          map[string]any{"query": `{ intents(namespaces: $ns) { client { name } } }`},
			wantStatus:   422,
			wantRejected: `Variable "$ns" is not defined.`,
		},
		"a variable declared but not used": {
			req:          map[string]any{"query": `query Q($ns: [String!]) { intents { client { name } } }`},
			wantStatus:   422,
			wantRejected: `Variable "$ns" is never used.`,
		},
		"a variable of the wrong type": {
			req:          map[string]any{"query": `query Q($ns: String) { intents(namespaces: $ns) { client { name } } }`},
			wantStatus:   422,
			wantRejected: `Variable "$ns" of type "String" used in position expecting type "[String!]".`,
		},
		"a variable value of the wrong type": {
			req:          map[string]any{"query": `query Q($ns: [String!]) { intents(namespaces: $ns) { client { name } } }`, "variables": map[string]any{"ns": []int{1}}},
			wantStatus:   422,
			wantRejected: `Variable "$ns" got invalid value [1]; String cannot represent a non string value: 1`,
		},
		"a literal of the wrong type": {
			req:          map[string]any{"query": `{ intents(includeAllLabels: "yes") { client { name } } }`},
			wantStatus:   422,
			wantRejected: `Expected value of type "Boolean", found "yes".`,
		},
		"a syntax error": {
			req:          map[string]any{"query": `{ intents { client { name } }`},
			wantStatus:   422,
			wantRejected: `Syntax Error: Expected Name, found <EOF>.`,
		},
		"a mutation": {
			req:          map[string]any{"query": `mutation { resetCapture }`},
			wantStatus:   422,
			wantRejected: `mappertest serves queries only, not a mutation`,
		},
		"an operation name the document lacks": {
			req:          map[string]any{"operationName": "Other", "query": `query Q { health }`},
			wantStatus:   422,
			wantRejected: `operation Other not found`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := New(t)
			s.Discover(
				Intent{Client: cart, Server: redis},
				Intent{Client: cart, Server: redis, Type: "DATABASE"},
				Intent{Client: checkout, Server: cart},
			)
			status, got := post(t, s.URL(), tc.req)
			if status != tc.wantStatus {
				t.Errorf("status %d, want %d; body %s", status, tc.wantStatus, got)
			}
			if tc.want != "" {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			rejected := s.TakeRejections()
			switch {
			case tc.wantRejected == "" && len(rejected) > 0:
				t.Errorf("refused %q, want it served", rejected)
			case tc.wantRejected != "" && (len(rejected) != 1 || !strings.HasPrefix(rejected[0], tc.wantRejected)):
				t.Errorf("refusals %q, want one starting with %q", rejected, tc.wantRejected)
			}
			if reqs := s.Requests(); len(reqs) != 1 || reqs[0].Method != http.MethodPost {
				t.Errorf("recorded %+v, want the one POST", reqs)
			}
		})
	}
}

func TestHTTPRequirements(t *testing.T) {
	cases := map[string]struct {
		method, path, contentType, body string
		wantStatus                      int
		wantRejected                    string
	}{
		"GET":                       {method: "GET", path: Path, wantStatus: 405, wantRejected: "method GET, want POST"},
		"form content type":         {method: "POST", path: Path, contentType: "application/x-www-form-urlencoded", body: "query=x", wantStatus: 415, wantRejected: `Content-Type "application/x-www-form-urlencoded"`},
		"body is not JSON":          {method: "POST", path: Path, contentType: "application/json", body: "{", wantStatus: 400, wantRejected: "request body: "},
		"not the query path":        {method: "POST", path: "/graphql", contentType: "application/json", body: "{}", wantStatus: 404, wantRejected: "POST /graphql: the mapper serves GraphQL at /query"},
		"charset parameter is fine": {method: "POST", path: Path, contentType: "application/json; charset=utf-8", body: `{"query":"{ health }"}`, wantStatus: 200},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := New(t)
			url := strings.TrimSuffix(s.URL(), Path) + tc.path
			req, err := http.NewRequestWithContext(t.Context(), tc.method, url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			rejected := s.TakeRejections()
			if tc.wantRejected == "" && len(rejected) > 0 || tc.wantRejected != "" && (len(rejected) != 1 || !strings.HasPrefix(rejected[0], tc.wantRejected)) {
				t.Errorf("refusals %q, want %q", rejected, tc.wantRejected)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	query := map[string]any{"query": `{ intents { client { name } } }`}
	cases := map[string]struct {
		failure    Failure
		wantStatus int
		want       string
	}{
		"HTTP status": {
			failure:    HTTPStatus(http.StatusBadGateway, "upstream connect error"),
			wantStatus: 502,
			want:       "upstream connect error",
		},
		"GraphQL errors": {
			failure:    GraphQLErrors("intents store unavailable", "try again"),
			wantStatus: 200,
			want:       `{"errors":[{"message":"intents store unavailable","locations":[{"line":1,"column":3}]},{"message":"try again","locations":[{"line":1,"column":3}]}],"data":null}`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := New(t)
			s.Discover(Intent{Client: cart, Server: redis})
			s.Fail(tc.failure)
			status, got := post(t, s.URL(), query)
			if status != tc.wantStatus {
				t.Errorf("status %d, want %d", status, tc.wantStatus)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			s.Heal()
			if status, got := post(t, s.URL(), query); status != 200 || got != `{"data":{"intents":[{"client":{"name":"cart"}}]}}` {
				t.Errorf("after Heal: %d %s, want the intents", status, got)
			}
			if s.Served() != 1 {
				t.Errorf("Served() = %d, want 1", s.Served())
			}
		})
	}
}

func TestStallHoldsUntilTheClientGivesUp(t *testing.T) {
	s := New(t)
	s.Fail(Stall())
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL(), strings.NewReader(`{"query":"{ health }"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if resp != nil {
			resp.Body.Close()
		}
		t.Fatalf("Do = %v, want context.DeadlineExceeded", err)
	}
}

func TestStopStartRestart(t *testing.T) {
	s := New(t)
	s.Discover(Intent{Client: cart, Server: redis})
	query := map[string]any{"query": `{ intents { server { name } } }`}

	// A stalled request must not keep Stop from returning.
	s.Fail(Stall())
	done := make(chan error, 1)
	go func() {
		resp, err := http.Post(s.URL(), "application/json", strings.NewReader(`{"query":"{ health }"}`))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); len(s.Requests()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the stalled request never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	s.Stop()
	<-done
	s.Heal()

	if _, err := http.Post(s.URL(), "application/json", strings.NewReader(`{}`)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("POST while stopped = %v, want connection refused", err)
	}
	s.Start()
	if status, got := post(t, s.URL(), query); status != 200 || got != `{"data":{"intents":[{"server":{"name":"redis"}}]}}` {
		t.Errorf("after Start: %d %s, want the intent kept", status, got)
	}
	s.Restart()
	if status, got := post(t, s.URL(), query); status != 200 || got != `{"data":{"intents":[]}}` {
		t.Errorf("after Restart: %d %s, want no intents", status, got)
	}
}

func TestDiscoverMergesLikeTheMapper(t *testing.T) {
	s := New(t)
	first := cart
	first.Labels = map[string]string{"app": "cart", "v": "1"}
	s.Discover(Intent{Client: first, Server: redis})
	// Rediscovered with new labels and, by a later resolution, another owner: the mapper
	// keeps the intent it has and only replaces the labels.
	again := cart
	again.Kind = "Rollout"
	again.Labels = map[string]string{"app": "cart", "v": "2"}
	s.Discover(Intent{Client: again, Server: redis})

	status, got := post(t, s.URL(), map[string]any{"query": `{ intents(includeAllLabels: true) { client { podOwnerKind { kind } labels { key value } } } }`})
	want := `{"data":{"intents":[{"client":{"podOwnerKind":{"kind":"Deployment"},"labels":[{"key":"app","value":"cart"},{"key":"v","value":"2"}]}}]}}`
	if status != 200 {
		t.Fatalf("status %d: %s", status, got)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged intent (-want +got):\n%s", diff)
	}
}
