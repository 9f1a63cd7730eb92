// Package suggest turns the uncovered edges of a simulation report into the ClientIntents
// that would cover them, written the way the client teams write them: one object per
// client workload, extending that workload's existing ClientIntents rather than competing
// with it, so that applying the suggestions (or `simulate --intents DIR`) shows exactly
// what would change.
//
// Edges that ClientIntents cannot cover (callers outside the cluster, nodes) are returned
// as notes that name the setting that admits them instead.
package suggest

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/intents"
	"github.com/shadowgate/shadowgate/simulate"
)

// DefaultAPIVersion is the ClientIntents version of new objects unless told otherwise:
// the newest one Otterize serves.
const DefaultAPIVersion = "v2beta1"

// APIVersions lists the versions new objects may be written in. v1alpha2 is left out: it
// cannot name a target's kind.
var APIVersions = []string{"v1alpha3", "v1beta1", "v2alpha1", "v2beta1"}

// SuggestedSuffix ends the name of a new object when the existing ClientIntents are
// unknown, so that applying it can only add to an object of the same client, never
// replace one.
const SuggestedSuffix = "-suggested"

// Options configure Suggest.
type Options struct {
	// APIVersion of new objects, one of APIVersions; empty means DefaultAPIVersion.
	// An existing object that a suggestion extends keeps its own version and shape: its
	// L7 details (HTTP paths, Kafka topics) are carried over verbatim, which a conversion
	// between shapes could not promise.
	APIVersion string
}

// Validate reports a bad option.
func (o Options) Validate() error {
	if o.APIVersion == "" {
		return nil
	}
	for _, v := range APIVersions {
		if o.APIVersion == v {
			return nil
		}
	}
	return fmt.Errorf("api version %q: must be one of %s", o.APIVersion, strings.Join(APIVersions, ", "))
}

func (o Options) apiVersion() string {
	if o.APIVersion == "" {
		return intents.Group + "/" + DefaultAPIVersion
	}
	return intents.Group + "/" + o.APIVersion
}

// Cluster is what Suggest knows of the cluster: its ClientIntents as written. A nil
// *Cluster means nothing is known, and new objects get SuggestedSuffix.
type Cluster struct {
	// Intents are ClientIntents objects of any served version, as read.
	Intents []*unstructured.Unstructured
}

// FromObjects returns the ClientIntents of loaded manifests.
func FromObjects(o *cluster.Objects) *Cluster {
	return &Cluster{Intents: o.ClientIntents}
}

// NoteKind says why an uncovered edge gets a note rather than an intent.
type NoteKind string

const (
	// NoteExternalSource: the caller is outside the cluster.
	NoteExternalSource NoteKind = "external-source"
	// NoteNodeSource: the caller is a node (a host-network pod, another node's kubelet).
	NoteNodeSource NoteKind = "node-source"
	// NoteNodeDestination: egress to a node, which ClientIntents cannot name.
	NoteNodeDestination NoteKind = "node-destination"
	// NoteNoAddress: egress to outside the cluster at an address the report does not
	// name, so no internet target can be written for it.
	NoteNoAddress NoteKind = "no-address"
	// NoteAlreadyDeclared: the client's ClientIntents already name the server, yet the edge
	// is uncovered (the client or server does not resolve, or its pods have no labels):
	// another target would not help.
	NoteAlreadyDeclared NoteKind = "already-declared"
)

// Note is an uncovered edge that no suggested ClientIntents covers, and why.
type Note struct {
	Kind NoteKind      `json:"kind"`
	Edge simulate.Edge `json:"edge"`
	// Detail says what the note is about in one line (for already-declared: the object and
	// target that already name the server).
	Detail string `json:"detail,omitempty"`
}

// Advice says in one sentence what admits the edge instead of a ClientIntents.
func (n Note) Advice() string {
	switch n.Kind {
	case NoteExternalSource:
		return "Callers from outside the cluster are not ClientIntents: expose the workload through a LoadBalancer or NodePort Service or an Ingress and compile with --external always (or the default only-if-blocked); if they are pods the snapshot lacks, add them to --cluster or use --allow-from-namespace."
	case NoteNodeSource:
		return "ClientIntents cannot name a node: a pod's own node is always admitted; admit other nodes with a NetworkPolicy of your own (an ipBlock of the node addresses), which enforcement keeps."
	case NoteNodeDestination:
		return "ClientIntents cannot name a node: admit egress to it with a NetworkPolicy of your own (an ipBlock of the node addresses), which enforcement keeps."
	case NoteNoAddress:
		return "The report does not say which outside address this egress went to: find it in the flows and add an internet target with it."
	case NoteAlreadyDeclared:
		return "The client's ClientIntents already name this server, so another target would not help: check that the client and server names and kinds resolve to workloads with labelled pods."
	}
	return ""
}

// Intents is the suggested ClientIntents of one client workload.
type Intents struct {
	// Namespace and Name of the object: the existing object's when it extends one.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Client is the client workload as the object names it.
	Client intents.Workload `json:"client"`
	// APIVersion is the object's apiVersion (group/version).
	APIVersion string `json:"apiVersion"`
	// Extends is the namespace/name of the existing ClientIntents the object replaces,
	// with every target kept; empty for a new object.
	Extends string `json:"extends,omitempty"`
	// Kept is how many targets of the existing object are kept.
	Kept int `json:"kept,omitempty"`
	// Added are the new targets, in the order they appear in the object.
	Added []Added `json:"added"`
	// File is the file name the object gets in an output directory.
	File string `json:"file"`
	// Object is the manifest.
	Object *unstructured.Unstructured `json:"-"`
	// merged is false when the cluster's ClientIntents were unknown; the YAML header
	// says so.
	merged bool
}

// Key is namespace/name of the object.
func (s *Intents) Key() string { return s.Namespace + "/" + s.Name }

// Edges returns the uncovered edges the object covers, in target order.
func (s *Intents) Edges() []simulate.Edge {
	var out []simulate.Edge
	for _, a := range s.Added {
		out = append(out, a.Edges...)
	}
	return out
}

// Added is one new target and the uncovered edges it covers.
type Added struct {
	// Target is the target as written: "ledger", "ledger.payments", or for an internet
	// target "internet 203.0.113.0/24".
	Target string          `json:"target"`
	Edges  []simulate.Edge `json:"edges"`
}

// Result is the suggestion for one report.
type Result struct {
	// Intents are sorted by namespace, client name and kind.
	Intents []*Intents `json:"intents"`
	// Notes are sorted by kind, then as the report sorts edges.
	Notes []Note `json:"notes,omitempty"`
	// Merged reports whether the existing ClientIntents were known (a Cluster was given).
	Merged bool `json:"merged"`
}

// Suggest computes the ClientIntents that cover rep's uncovered edges. c may be nil when
// the cluster's ClientIntents are unknown. The result is deterministic.
func Suggest(rep *simulate.Report, c *Cluster, o Options) (*Result, error) {
	if rep == nil {
		return nil, errors.New("suggest: nil report")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ex, err := newExisting(c)
	if err != nil {
		return nil, err
	}
	b := &builder{o: o, ex: ex, groups: map[string]*group{}, res: &Result{Merged: c != nil}}
	for _, e := range rep.Uncovered {
		b.edge(e)
	}
	if err := b.finish(); err != nil {
		return nil, err
	}
	return b.res, nil
}

// existing indexes the cluster's ClientIntents.
type existing struct {
	known bool
	all   []*existingObject
	// names holds the object names taken per namespace.
	names map[string]map[string]bool
}

type existingObject struct {
	u  *unstructured.Unstructured
	ci *intents.ClientIntents
}

func newExisting(c *Cluster) (*existing, error) {
	ex := &existing{known: c != nil, names: map[string]map[string]bool{}}
	if c == nil {
		return ex, nil
	}
	var errs []error
	for _, u := range c.Intents {
		ci, _, err := intents.FromUnstructured(u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ex.all = append(ex.all, &existingObject{u: u, ci: ci})
		ex.take(ci.Namespace, ci.Name)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("suggest: existing ClientIntents: %w", errors.Join(errs...))
	}
	sort.Slice(ex.all, func(i, j int) bool { return ex.all[i].ci.Key() < ex.all[j].ci.Key() })
	return ex, nil
}

func (ex *existing) take(ns, name string) {
	if ex.names[ns] == nil {
		ex.names[ns] = map[string]bool{}
	}
	ex.names[ns][name] = true
}

func (ex *existing) taken(ns, name string) bool { return ex.names[ns][name] }

// of returns the existing objects whose client is p, sorted by namespace/name.
func (ex *existing) of(p simulate.Peer) []*existingObject {
	var out []*existingObject
	for _, o := range ex.all {
		if o.ci.Namespace == p.Namespace && o.ci.Client.Name == p.Workload && kindsMatch(o.ci.Client.Kind, p.Kind) {
			out = append(out, o)
		}
	}
	return out
}

// kindsMatch is the compiler's rule: a missing kind on either side matches any kind.
func kindsMatch(a, b string) bool { return a == "" || b == "" || strings.EqualFold(a, b) }

// group gathers the new targets of one output object: one client workload, or several
// whose names one existing kind-less object already covers.
type group struct {
	key     string
	client  simulate.Peer
	extends *existingObject
	others  []*existingObject // further existing objects of the client, checked for duplicates
	servers map[string]*serverTarget
	inet    map[string]*internetTarget
}

type serverTarget struct {
	peer  simulate.Peer
	edges []simulate.Edge
}

// internetTarget gathers egress to outside addresses on one port list ("" for any).
type internetTarget struct {
	ports string
	port  int32
	cidrs map[string]bool
	edges []simulate.Edge
}

type builder struct {
	o      Options
	ex     *existing
	groups map[string]*group
	res    *Result
}

func (b *builder) note(k NoteKind, e simulate.Edge, detail string) {
	b.res.Notes = append(b.res.Notes, Note{Kind: k, Edge: e, Detail: detail})
}

func (b *builder) edge(e simulate.Edge) {
	switch {
	case e.Source.Kind == simulate.KindExternal:
		b.note(NoteExternalSource, e, "")
		return
	case e.Source.IsNode():
		b.note(NoteNodeSource, e, "")
		return
	case e.Destination.IsNode():
		b.note(NoteNodeDestination, e, "")
		return
	case e.Destination.Kind == simulate.KindExternal && e.Destination.CIDR == "":
		b.note(NoteNoAddress, e, "")
		return
	}
	mine := b.ex.of(e.Source)
	if d := declared(mine, e); d != "" {
		b.note(NoteAlreadyDeclared, e, d)
		return
	}
	g := b.group(e.Source, mine)
	if e.Destination.Kind == simulate.KindExternal {
		g.addInternet(e)
		return
	}
	k := peerKey(e.Destination)
	st := g.servers[k]
	if st == nil {
		st = &serverTarget{peer: e.Destination}
		g.servers[k] = st
	}
	st.edges = append(st.edges, e)
}

func (b *builder) group(client simulate.Peer, mine []*existingObject) *group {
	key := "new:" + peerKey(client)
	var ext *existingObject
	if len(mine) > 0 {
		// The first object (by name) is the one to extend; the client's others stay as
		// they are and still apply.
		ext = mine[0]
		key = "ext:" + ext.ci.Key()
	}
	g := b.groups[key]
	if g == nil {
		g = &group{key: key, client: client, extends: ext, servers: map[string]*serverTarget{}, inet: map[string]*internetTarget{}}
		if len(mine) > 1 {
			g.others = mine[1:]
		}
		b.groups[key] = g
	}
	return g
}

func (g *group) addInternet(e simulate.Edge) {
	// Otterize internet ports are bare numbers the compiler reads as TCP: other protocols
	// need a target without ports.
	ports, port := "", int32(0)
	if e.Protocol == "TCP" && e.Port > 0 {
		ports, port = fmt.Sprintf("%05d", e.Port), e.Port
	}
	t := g.inet[ports]
	if t == nil {
		t = &internetTarget{ports: ports, port: port, cidrs: map[string]bool{}}
		g.inet[ports] = t
	}
	t.cidrs[e.Destination.CIDR] = true
	t.edges = append(t.edges, e)
}

// declared returns a description of an existing target of the client that already
// admits the edge's destination on every port, or "".
func declared(objs []*existingObject, e simulate.Edge) string {
	for _, o := range objs {
		for _, t := range o.ci.Targets {
			if admits(o.ci, t, e) {
				return fmt.Sprintf("ClientIntents %s already declares target %q", o.ci.Key(), t.Raw)
			}
		}
	}
	return ""
}

// admits reports whether target t of ci admits edge e whatever its port, so that a new
// target would change nothing.
func admits(ci *intents.ClientIntents, t intents.Target, e simulate.Edge) bool {
	switch t.Type {
	case intents.TargetWorkload, intents.TargetKafka, intents.TargetHTTP:
		ns := t.Namespace
		if ns == "" {
			ns = ci.Namespace
		}
		d := e.Destination
		return d.Kind != simulate.KindExternal && ns == d.Namespace && t.Name == d.Workload && kindsMatch(t.Kind, d.Kind)
	case intents.TargetInternet:
		if e.Destination.Kind != simulate.KindExternal || t.Internet == nil {
			return false
		}
		dst, err := netip.ParsePrefix(e.Destination.CIDR)
		if err != nil {
			return false
		}
		if len(t.Internet.Ports) > 0 && (e.Protocol != "TCP" || !containsPort(t.Internet.Ports, e.Port)) {
			return false
		}
		for _, s := range t.Internet.IPs {
			if covers(s, dst) {
				return true
			}
		}
	}
	return false
}

func containsPort(ports []int32, p int32) bool {
	for _, x := range ports {
		if x == p {
			return true
		}
	}
	return false
}

// covers reports whether the address or CIDR s contains all of dst.
func covers(s string, dst netip.Prefix) bool {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	p = p.Masked()
	return p.Bits() <= dst.Bits() && p.Contains(dst.Addr())
}

func (b *builder) finish() error {
	keys := make([]string, 0, len(b.groups))
	for k := range b.groups {
		keys = append(keys, k)
	}
	// New names depend on the names already handed out: build objects in a fixed order
	// (extensions first, then new objects by client), then sort the output.
	sort.Strings(keys)
	for _, k := range keys {
		s, err := b.build(b.groups[k])
		if err != nil {
			return err
		}
		b.res.Intents = append(b.res.Intents, s)
	}
	sort.Slice(b.res.Intents, func(i, j int) bool {
		a, c := b.res.Intents[i], b.res.Intents[j]
		if a.Namespace != c.Namespace {
			return a.Namespace < c.Namespace
		}
		if a.Client.Name != c.Client.Name {
			return a.Client.Name < c.Client.Name
		}
		if a.Client.Kind != c.Client.Kind {
			return a.Client.Kind < c.Client.Kind
		}
		return a.Name < c.Name
	})
	assignFiles(b.res.Intents)
	sort.SliceStable(b.res.Notes, func(i, j int) bool {
		if b.res.Notes[i].Kind != b.res.Notes[j].Kind {
			return noteRank[b.res.Notes[i].Kind] < noteRank[b.res.Notes[j].Kind]
		}
		return false // the report's order within a kind
	})
	return nil
}

var noteRank = map[NoteKind]int{NoteExternalSource: 0, NoteNodeSource: 1, NoteNodeDestination: 2, NoteNoAddress: 3, NoteAlreadyDeclared: 4}

// assignFiles names each object's file <namespace>.<client>.yaml, adding the object name
// where two objects would share one.
func assignFiles(all []*Intents) {
	count := map[string]int{}
	for _, s := range all {
		count[s.Namespace+"."+fileSafe(s.Client.Name)]++
	}
	for _, s := range all {
		base := s.Namespace + "." + fileSafe(s.Client.Name)
		if count[base] > 1 {
			base = s.Namespace + "." + fileSafe(s.Name)
		}
		s.File = base + ".yaml"
	}
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, s)
}

// peerKey identifies a peer; the UI computes the same keys.
func peerKey(p simulate.Peer) string {
	switch p.Kind {
	case simulate.KindExternal:
		return "x:" + p.CIDR
	case simulate.KindNode:
		return "h:" + p.Node
	case simulate.KindCrossNode:
		return "c:" + p.Node
	}
	return "w:" + p.Namespace + "/" + p.Workload + "/" + p.Kind
}

// EdgeKey identifies an edge: its two peers, protocol and port. The HTML report keys
// edges the same way.
func EdgeKey(e simulate.Edge) string {
	return fmt.Sprintf("%s>%s:%s/%d", peerKey(e.Source), peerKey(e.Destination), e.Protocol, e.Port)
}

// targetName writes a server as a target: "name" in the client's namespace, else
// "name.namespace".
func targetName(clientNS string, p simulate.Peer) string {
	if p.Namespace == clientNS {
		return p.Workload
	}
	return p.Workload + "." + p.Namespace
}
