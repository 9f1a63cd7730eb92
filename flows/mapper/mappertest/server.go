// Package mappertest runs a fake Otterize network-mapper: a real HTTP server on 127.0.0.1
// that answers the GraphQL query text a client sends, the way the network-mapper does.
//
// The fake validates every document against the mapper's schema (a query the real mapper
// would refuse gets the same HTTP 422 and GRAPHQL_VALIDATION_FAILED error gqlgen returns),
// serves Query.intents from an in-memory store that merges intents like the mapper's
// intentsstore (one entry per client, server and intent type; the namespaces argument
// filters on the client's namespace), and can be scripted to fail: an HTTP status, a
// GraphQL error, a stall, a restart that forgets everything, or no listener at all.
//
// A request the fake refuses for a reason a client should never give (a wrong query, a
// wrong method or content type) fails the test at cleanup, unless the test took it with
// TakeRejections.
package mappertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Path is where the network-mapper serves GraphQL.
const Path = "/query"

// Identity is a service identity as the mapper reports it.
type Identity struct {
	Name      string
	Namespace string
	// Kind, Group and Version are the pod owner's (OtterizeServiceIdentity.podOwnerKind);
	// an empty Kind makes podOwnerKind null, as for an identity the mapper resolved without
	// an owner.
	Kind    string
	Group   string
	Version string
	// KubernetesService is set when the mapper resolved the identity from a Service.
	KubernetesService string
	// Labels are the pod's labels; the mapper returns only those the query asks for.
	Labels map[string]string
}

// Intent is one discovered client→server call.
type Intent struct {
	Client Identity
	Server Identity
	// Type is the IntentType (HTTP, KAFKA, DATABASE, AWS, S3), or empty for plain
	// network traffic.
	Type string
}

// Request is a request the fake received.
type Request struct {
	Method        string
	ContentType   string
	OperationName string
	Query         string
	Variables     map[string]json.RawMessage
}

// Failure is how the fake answers instead of serving intents.
type Failure struct {
	status   int
	body     string
	messages []string
	stall    bool
}

// HTTPStatus answers every request with status and body.
func HTTPStatus(status int, body string) Failure { return Failure{status: status, body: body} }

// GraphQLErrors answers HTTP 200 with data null and these errors, as gqlgen does when a
// resolver fails.
func GraphQLErrors(messages ...string) Failure { return Failure{messages: messages} }

// Stall holds every request until the client gives up or the fake stops.
func Stall() Failure { return Failure{stall: true} }

type storeKey struct {
	clientNS, client, serverNS, server, typ string
}

// Server is a fake network-mapper. Its methods are safe for concurrent use.
type Server struct {
	t    testing.TB
	addr string

	mu        sync.Mutex
	http      *httptest.Server // nil while stopped
	stopping  chan struct{}    // closed to release stalled requests
	store     map[storeKey]Intent
	failure   *Failure
	requests  []Request
	rejected  []string
	delivered int
}

// New starts a fake network-mapper on 127.0.0.1 with an empty store and stops it when the
// test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, store: map[storeKey]Intent{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mappertest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(func() {
		s.Stop()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, r := range s.rejected {
			t.Errorf("mappertest: refused a request: %s", r)
		}
	})
	return s
}

func (s *Server) serve(ln net.Listener) {
	hs := httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	hs.Listener.Close()
	hs.Listener = ln
	s.stopping = make(chan struct{})
	hs.Start()
	s.http = hs
}

// URL is the mapper's GraphQL endpoint, http://127.0.0.1:PORT/query. It stays the same
// across Stop and Start.
func (s *Server) URL() string { return "http://" + s.addr + Path }

// Stop closes the listener, so that clients get "connection refused", and releases
// stalled requests. It waits for requests in flight.
func (s *Server) Stop() {
	s.mu.Lock()
	hs := s.http
	s.http = nil
	if hs != nil {
		close(s.stopping)
	}
	s.mu.Unlock()
	if hs != nil {
		hs.Close()
	}
}

// Start listens again on the same address after Stop. The store is kept: use Restart to
// model a mapper that lost its memory.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http != nil {
		return
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("mappertest: listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

// Restart forgets every intent, as a restarted network-mapper does: it keeps what it
// discovered in memory only.
func (s *Server) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store = map[storeKey]Intent{}
}

// Discover adds intents to the store, merging into an intent already there the way the
// mapper does: its labels are replaced, everything else stays as first discovered.
func (s *Server) Discover(intents ...Intent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range intents {
		k := storeKey{in.Client.Namespace, in.Client.Name, in.Server.Namespace, in.Server.Name, in.Type}
		if old, ok := s.store[k]; ok {
			old.Client.Labels, old.Server.Labels = in.Client.Labels, in.Server.Labels
			in = old
		}
		s.store[k] = in
	}
}

// Fail makes every request fail with f until Heal.
func (s *Server) Fail(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = &f
}

// Heal ends Fail.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = nil
}

// Requests returns the requests received so far, refused ones included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Served is how many requests got intents.
func (s *Server) Served() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered
}

// TakeRejections returns the reasons of the requests refused so far and forgets them, so
// that a test sending a bad request on purpose does not fail at cleanup.
func (s *Server) TakeRejections() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rejected
	s.rejected = nil
	return r
}

type gqlRequest struct {
	OperationName string                     `json:"operationName"`
	Query         string                     `json:"query"`
	Variables     map[string]json.RawMessage `json:"variables"`
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		s.reject(w, http.StatusNotFound, nil, fmt.Sprintf("%s %s: the mapper serves GraphQL at %s", r.Method, r.URL.Path, Path))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := Request{Method: r.Method, ContentType: r.Header.Get("Content-Type")}
	var gr gqlRequest
	decodeErr := json.Unmarshal(body, &gr)
	req.OperationName, req.Query, req.Variables = gr.OperationName, gr.Query, gr.Variables

	s.mu.Lock()
	s.requests = append(s.requests, req)
	failure, stopping := s.failure, s.stopping
	s.mu.Unlock()

	if r.Method != http.MethodPost {
		s.reject(w, http.StatusMethodNotAllowed, nil, fmt.Sprintf("method %s, want POST", r.Method))
		return
	}
	if mt, _, _ := mime.ParseMediaType(req.ContentType); mt != "application/json" {
		s.reject(w, http.StatusUnsupportedMediaType, nil, fmt.Sprintf("Content-Type %q, want application/json", req.ContentType))
		return
	}
	if decodeErr != nil {
		s.reject(w, http.StatusBadRequest, []gqlError{{Message: "json request body could not be decoded: " + decodeErr.Error(),
			Extensions: map[string]string{"code": codeParseFailed}}}, "request body: "+decodeErr.Error())
		return
	}
	op, perr := parseDocument(gr.Query, gr.OperationName)
	if perr != nil {
		s.reject(w, http.StatusUnprocessableEntity, []gqlError{*perr}, perr.Message)
		return
	}
	if errs := validate(op, gr.Variables); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Message
		}
		s.reject(w, http.StatusUnprocessableEntity, errs, strings.Join(msgs, "; "))
		return
	}

	if failure != nil {
		switch {
		case failure.stall:
			select {
			case <-r.Context().Done():
			case <-stopping:
			}
			return
		case len(failure.messages) > 0:
			errs := make([]gqlError, len(failure.messages))
			for i, m := range failure.messages {
				errs[i] = gqlError{Message: m, Locations: []gqlLocation{op.sel[0].loc}}
			}
			writeJSON(w, http.StatusOK, gqlResponse{Errors: errs})
		default:
			w.WriteHeader(failure.status)
			io.WriteString(w, failure.body)
		}
		return
	}

	data, err := s.execute(op, gr.Variables)
	if err != nil {
		writeJSON(w, http.StatusOK, gqlResponse{Errors: []gqlError{{Message: err.Error()}}})
		return
	}
	s.mu.Lock()
	s.delivered++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, gqlResponse{Data: data})
}

// reject answers a request the real mapper would refuse too, and records why.
func (s *Server) reject(w http.ResponseWriter, status int, errs []gqlError, reason string) {
	s.mu.Lock()
	s.rejected = append(s.rejected, reason)
	s.mu.Unlock()
	if errs == nil {
		http.Error(w, reason, status)
		return
	}
	writeJSON(w, status, gqlResponse{Errors: errs})
}

// gqlResponse is a GraphQL answer, its members in the order gqlgen writes them.
type gqlResponse struct {
	Errors []gqlError `json:"errors,omitempty"`
	Data   object     `json:"data"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// object is a JSON object whose keys keep the order of the query's selections, as GraphQL
// responses do.
type object []member

type member struct {
	key string
	val any
}

func (o object) MarshalJSON() ([]byte, error) {
	if o == nil {
		return []byte("null"), nil // selection sets are never empty: only an absent object is nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(m.val)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// intentsArgs are Query.intents' arguments, resolved.
type intentsArgs struct {
	namespaces, includeLabels, excludeLabels []string
	includeAllLabels                         bool
	server                                   map[string]string
}

func (s *Server) execute(op *operation, vars map[string]json.RawMessage) (object, error) {
	var out object
	for _, sel := range op.sel {
		switch sel.name {
		case "__typename":
			out = append(out, member{sel.responseKey(), "Query"})
		case "health":
			out = append(out, member{sel.responseKey(), true})
		case "intents":
			var args intentsArgs
			for _, a := range sel.args {
				x, err := resolve(a.value, vars)
				if err != nil {
					return nil, err
				}
				switch a.name {
				case "namespaces":
					args.namespaces = stringList(x)
				case "includeLabels":
					args.includeLabels = stringList(x)
				case "excludeServiceWithLabels":
					args.excludeLabels = stringList(x)
				case "includeAllLabels":
					args.includeAllLabels, _ = x.(bool)
				case "server":
					if m, ok := x.(map[string]any); ok {
						args.server = map[string]string{}
						for k, v := range m {
							args.server[k], _ = v.(string)
						}
					}
				}
			}
			out = append(out, member{sel.responseKey(), s.intents(args, sel.children)})
		}
	}
	return out, nil
}

// resolve turns an argument into a plain Go value (nil, bool, string, []any, map[string]any).
func resolve(v value, vars map[string]json.RawMessage) (any, error) {
	switch {
	case v.variable != "":
		raw, ok := vars[v.variable]
		if !ok {
			return nil, nil
		}
		var x any
		if err := json.Unmarshal(raw, &x); err != nil {
			return nil, fmt.Errorf("variable $%s: %w", v.variable, err)
		}
		return x, nil
	case v.str != nil:
		return *v.str, nil
	case v.boolean != nil:
		return *v.boolean, nil
	case v.isList:
		list := make([]any, 0, len(v.list))
		for _, item := range v.list {
			x, err := resolve(item, vars)
			if err != nil {
				return nil, err
			}
			list = append(list, x)
		}
		return list, nil
	case v.isObject:
		m := map[string]any{}
		for k, item := range v.object {
			x, err := resolve(item, vars)
			if err != nil {
				return nil, err
			}
			m[k] = x
		}
		return m, nil
	}
	return nil, nil
}

// stringList reads a [String!] argument; a single string is a list of one (input coercion).
func stringList(x any) []string {
	switch x := x.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, item := range x {
			if s, ok := item.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// intents filters and orders the store as the mapper's resolver does: namespaces filters
// on the client's namespace, and the result is sorted by client then server
// "namespace/name".
func (s *Server) intents(args intentsArgs, sel []*selection) []any {
	s.mu.Lock()
	var list []Intent
	for _, in := range s.store {
		list = append(list, in)
	}
	s.mu.Unlock()

	excluded := map[string]string{}
	for _, l := range args.excludeLabels {
		k, v, _ := strings.Cut(l, "=")
		excluded[k] = v
	}
	hasExcluded := func(labels map[string]string) bool {
		for k, v := range labels {
			if want, ok := excluded[k]; ok && want == v {
				return true
			}
		}
		return false
	}
	var kept []Intent
	for _, in := range list {
		if len(args.namespaces) > 0 && !slices.Contains(args.namespaces, in.Client.Namespace) {
			continue
		}
		if len(excluded) > 0 && (hasExcluded(in.Client.Labels) || hasExcluded(in.Server.Labels)) {
			continue
		}
		if args.server != nil && (in.Server.Name != args.server["name"] || in.Server.Namespace != args.server["namespace"]) {
			continue
		}
		kept = append(kept, in)
	}
	slices.SortFunc(kept, func(a, b Intent) int {
		if c := strings.Compare(a.Client.Namespace+"/"+a.Client.Name, b.Client.Namespace+"/"+b.Client.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.Server.Namespace+"/"+a.Server.Name, b.Server.Namespace+"/"+b.Server.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
	out := make([]any, 0, len(kept))
	for _, in := range kept {
		out = append(out, renderIntent(in, args, sel))
	}
	return out
}

func renderIntent(in Intent, args intentsArgs, sel []*selection) object {
	var o object
	for _, f := range sel {
		var v any
		switch f.name {
		case "__typename":
			v = "Intent"
		case "client":
			v = renderIdentity(in.Client, args, f.children)
		case "server":
			v = renderIdentity(in.Server, args, f.children)
		case "type":
			if in.Type != "" {
				v = in.Type
			}
		}
		o = append(o, member{f.responseKey(), v})
	}
	return o
}

func renderIdentity(id Identity, args intentsArgs, sel []*selection) object {
	var o object
	for _, f := range sel {
		var v any
		switch f.name {
		case "__typename":
			v = "OtterizeServiceIdentity"
		case "name":
			v = id.Name
		case "namespace":
			v = id.Namespace
		case "kubernetesService":
			if id.KubernetesService != "" {
				v = id.KubernetesService
			}
		case "podOwnerKind":
			if id.Kind != "" {
				v = renderGVK(id, f.children)
			}
		case "labels":
			labels := []any{}
			keys := make([]string, 0, len(id.Labels))
			for k := range id.Labels {
				if args.includeAllLabels || slices.Contains(args.includeLabels, k) {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				var l object
				for _, lf := range f.children {
					switch lf.name {
					case "key":
						l = append(l, member{lf.responseKey(), k})
					case "value":
						l = append(l, member{lf.responseKey(), id.Labels[k]})
					case "__typename":
						l = append(l, member{lf.responseKey(), "PodLabel"})
					}
				}
				labels = append(labels, l)
			}
			v = labels
		}
		o = append(o, member{f.responseKey(), v})
	}
	return o
}

func renderGVK(id Identity, sel []*selection) object {
	var o object
	for _, f := range sel {
		var v any
		switch f.name {
		case "__typename":
			v = "GroupVersionKind"
		case "group":
			v = id.Group
		case "version":
			v = id.Version
		case "kind":
			v = id.Kind
		}
		o = append(o, member{f.responseKey(), v})
	}
	return o
}
