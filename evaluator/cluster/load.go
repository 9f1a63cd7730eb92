package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// Source says where an object was read. The zero Source means the object came from a
// cluster (an informer) rather than a file.
type Source struct {
	File string
	// Document is the 1-based index of the document among the file's non-empty
	// documents; the items of a List share their document.
	Document int
	// Line is the file line where the object starts.
	Line int
}

// String renders the source the way ObjectError locates problems, or "cluster".
func (s Source) String() string {
	if s.File == "" {
		return "cluster"
	}
	loc := s.File
	if s.Document > 0 {
		loc += fmt.Sprintf(": document %d", s.Document)
	}
	if s.Line > 0 {
		loc += fmt.Sprintf(" (line %d)", s.Line)
	}
	return loc
}

// ObjectRef names an object of a kind the model uses. ClientIntents of every version
// share the kind "ClientIntents", as they are one resource.
type ObjectRef struct {
	Kind      string
	Namespace string // empty for Namespaces
	Name      string
}

func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Objects are the Kubernetes objects a Snapshot is built from, decoded but not yet
// interpreted. LoadObjects fills it from manifest files; a controller fills it from
// informers. Build only reads it.
type Objects struct {
	Namespaces      []*corev1.Namespace
	Pods            []*corev1.Pod
	Deployments     []*appsv1.Deployment
	StatefulSets    []*appsv1.StatefulSet
	DaemonSets      []*appsv1.DaemonSet
	ReplicaSets     []*appsv1.ReplicaSet
	Jobs            []*batchv1.Job
	CronJobs        []*batchv1.CronJob
	Services        []*corev1.Service
	Ingresses       []*networkingv1.Ingress
	NetworkPolicies []*networkingv1.NetworkPolicy
	// ClientIntents of any served k8s.otterize.com version, as read; Build parses them.
	ClientIntents []*unstructured.Unstructured

	// Sources says where each object was read. Objects without an entry come from a
	// cluster.
	Sources map[ObjectRef]Source
	// Ignored counts objects of kinds the model does not use, by apiVersion/kind.
	Ignored map[string]int
	// Warnings found while loading; Build carries them into the Snapshot.
	Warnings []string
}

// Load reads manifests from paths (files, or directories walked recursively for *.yaml,
// *.yml and *.json) and builds a Snapshot. It is LoadObjects followed by Build: either
// everything loads and the snapshot is returned, or nothing does and the error lists
// every problem found.
func Load(paths ...string) (*Snapshot, error) {
	o, err := LoadObjects(paths...)
	if err != nil {
		return nil, err
	}
	return Build(o)
}

// LoadObjects reads and decodes manifests without interpreting them.
//
// Each path is a file, read whatever its name, or a directory, walked recursively in
// lexical order for files named *.yaml, *.yml or *.json (any case), skipping
// directories whose name starts with "." (.git and the like). A file reached twice is
// read once. YAML files hold any number of "---"-separated documents; JSON files a
// stream of JSON values. Documents that are empty or null are skipped. Objects of kind
// List, or of any kind ending in "List" with items (PodList, ...), are expanded, nested
// lists too; items of a typed list without apiVersion/kind take the list's.
//
// Objects of kinds the model uses are decoded strictly into their typed structs, as
// kubectl --validate=strict would: wrong types, unknown fields and duplicate fields are
// errors. Namespaced objects without metadata.namespace are placed in "default", as
// kubectl does with a default context, and a warning per file says how many were.
// Other kinds are only counted, by apiVersion/kind.
//
// Every problem becomes an *ObjectError naming the file, document, line and object;
// all of them are returned together, sorted, as one errors.Join error, and then the
// Objects are nil: nothing is half-loaded. NetworkPolicies are validated as the API
// server would (see validate.go), because a policy the server would reject cannot be
// what the cluster enforces.
func LoadObjects(paths ...string) (*Objects, error) {
	return loadObjects(osFiles{}, paths)
}

// LoadFS is Load reading from fsys (an embed.FS, a testing/fstest.MapFS, ...); paths
// are slash-separated fs.FS paths, "." for the root.
func LoadFS(fsys fs.FS, paths ...string) (*Snapshot, error) {
	o, err := LoadObjectsFS(fsys, paths...)
	if err != nil {
		return nil, err
	}
	return Build(o)
}

// LoadObjectsFS is LoadObjects reading from fsys.
func LoadObjectsFS(fsys fs.FS, paths ...string) (*Objects, error) {
	return loadObjects(fsFiles{fsys}, paths)
}

// files is the file system a loader reads: the OS, or an fs.FS.
type files interface {
	Stat(name string) (fs.FileInfo, error)
	ReadFile(name string) ([]byte, error)
	WalkDir(root string, fn fs.WalkDirFunc) error
	// Key identifies a file, to read each once.
	Key(name string) string
}

type osFiles struct{}

func (osFiles) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }
func (osFiles) ReadFile(name string) ([]byte, error)         { return os.ReadFile(name) }
func (osFiles) WalkDir(root string, fn fs.WalkDirFunc) error { return filepath.WalkDir(root, fn) }
func (osFiles) Key(name string) string {
	if abs, err := filepath.Abs(name); err == nil {
		return abs
	}
	return filepath.Clean(name)
}

type fsFiles struct{ fsys fs.FS }

func (f fsFiles) Stat(name string) (fs.FileInfo, error)        { return fs.Stat(f.fsys, name) }
func (f fsFiles) ReadFile(name string) ([]byte, error)         { return fs.ReadFile(f.fsys, name) }
func (f fsFiles) WalkDir(root string, fn fs.WalkDirFunc) error { return fs.WalkDir(f.fsys, root, fn) }
func (fsFiles) Key(name string) string                         { return path.Clean(name) }

func loadObjects(fsys files, paths []string) (*Objects, error) {
	if len(paths) == 0 {
		return nil, errors.New("no manifest paths given")
	}
	l := &loader{
		fsys: fsys,
		objs: &Objects{Sources: map[ObjectRef]Source{}, Ignored: map[string]int{}},
	}
	for _, f := range l.collect(paths) {
		l.loadFile(f)
	}
	if len(l.errs) > 0 {
		return nil, joinSorted(l.errs)
	}
	sort.Strings(l.objs.Warnings)
	return l.objs, nil
}

type loader struct {
	fsys files
	objs *Objects
	errs []*ObjectError
}

func (l *loader) fail(e *ObjectError) { l.errs = append(l.errs, e) }

// joinSorted orders errors by file, document and line so the report reads top to bottom.
func joinSorted(errs []*ObjectError) error {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Document != b.Document {
			return a.Document < b.Document
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Error() < b.Error()
	})
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

var manifestExts = []string{".yaml", ".yml", ".json"}

// collect expands paths into the files to read, in order, each once.
func (l *loader) collect(paths []string) []string {
	var files []string
	seen := map[string]bool{}
	add := func(f string) {
		key := l.fsys.Key(f)
		if !seen[key] {
			seen[key] = true
			files = append(files, f)
		}
	}
	for _, root := range paths {
		info, err := l.fsys.Stat(root)
		if err != nil {
			l.fail(&ObjectError{File: root, Err: err})
			continue
		}
		if !info.IsDir() {
			add(root)
			continue
		}
		err = l.fsys.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				l.fail(&ObjectError{File: path, Err: err})
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if path != root && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				return nil
			}
			if slices.Contains(manifestExts, strings.ToLower(filepath.Ext(path))) {
				add(path)
			}
			return nil
		})
		if err != nil {
			l.fail(&ObjectError{File: root, Err: err})
		}
	}
	return files
}

// document is one YAML or JSON document of a file.
type document struct {
	file  string
	index int // 1-based among non-empty documents
	line  int // file line of the document's first line
	data  []byte
	json  bool

	tree    *yamlTree // parsed on first need, for locating fields
	treeErr bool
}

func (l *loader) loadFile(name string) {
	data, err := l.fsys.ReadFile(name)
	if err != nil {
		l.fail(&ObjectError{File: name, Err: err})
		return
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var docs []*document
	if strings.EqualFold(filepath.Ext(name), ".json") {
		docs = l.splitJSON(name, data)
	} else {
		docs = l.splitYAML(name, data)
	}
	defaulted := 0
	for _, d := range docs {
		defaulted += l.loadDocument(d)
	}
	if defaulted > 0 {
		l.objs.Warnings = append(l.objs.Warnings, fmt.Sprintf(
			"%s: %d namespaced object(s) without metadata.namespace placed in namespace %q, as kubectl would",
			name, defaulted, intents.DefaultNamespace))
	}
}

// splitYAML cuts a YAML stream at "---" lines, keeping each document's first line.
// Like kubectl, a separator may only be followed by a comment. A line starting with
// "---" inside a block scalar ends the scalar in YAML too, so cutting on lines is exact.
func (l *loader) splitYAML(name string, data []byte) []*document {
	var docs []*document
	start, startLine, index := 0, 1, 0
	flush := func(end int) {
		chunk := data[start:end]
		if isBlankYAML(chunk) {
			return
		}
		index++
		docs = append(docs, &document{file: name, index: index, line: startLine, data: chunk})
	}
	line := 1
	for pos := 0; pos < len(data); line++ {
		next := bytes.IndexByte(data[pos:], '\n')
		end := len(data)
		if next >= 0 {
			end = pos + next + 1
		}
		text := strings.TrimRight(string(data[pos:end]), "\r\n")
		if sep, rest := separator(text); sep {
			flush(pos)
			if rest != "" && !strings.HasPrefix(rest, "#") {
				l.fail(&ObjectError{File: name, Document: index + 1, Line: line,
					Err: fmt.Errorf("invalid document separator %q: only a comment may follow %q", text, text[:3])})
			}
			start, startLine = end, line+1
		}
		pos = end
	}
	flush(len(data))
	return docs
}

// separator reports whether a line is a document marker ("---" or "...") and what
// follows it.
func separator(text string) (bool, string) {
	for _, m := range []string{"---", "..."} {
		if text == m {
			return true, ""
		}
		if strings.HasPrefix(text, m) && (text[3] == ' ' || text[3] == '\t') {
			return true, strings.TrimSpace(text[3:])
		}
	}
	return false, ""
}

func isBlankYAML(chunk []byte) bool {
	for _, ln := range bytes.Split(chunk, []byte("\n")) {
		ln = bytes.TrimSpace(ln)
		if len(ln) > 0 && ln[0] != '#' {
			return false
		}
	}
	return true
}

// splitJSON reads a stream of JSON values.
func (l *loader) splitJSON(name string, data []byte) []*document {
	var docs []*document
	dec := json.NewDecoder(bytes.NewReader(data))
	for index := 1; ; {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return docs
		}
		if err != nil {
			e := &ObjectError{File: name, Document: index, Err: fmt.Errorf("invalid JSON: %w", err)}
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				e.Line = lineAt(data, syn.Offset)
				e.Err = fmt.Errorf("invalid JSON: %s", syn.Error())
			} else if errors.Is(err, io.ErrUnexpectedEOF) {
				e.Line = lineAt(data, int64(len(data)))
			}
			l.fail(e)
			return docs
		}
		end := dec.InputOffset()
		begin := end - int64(len(raw))
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			continue
		}
		docs = append(docs, &document{file: name, index: index, line: lineAt(data, begin+1), data: raw, json: true})
		index++
	}
}

// lineAt is the 1-based line of the byte before offset.
func lineAt(data []byte, offset int64) int {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset > 0 {
		offset--
	}
	return bytes.Count(data[:offset], []byte("\n")) + 1
}

var yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)

// loadDocument decodes one document and returns how many objects were given the
// default namespace.
func (l *loader) loadDocument(d *document) int {
	raw := d.data
	if !d.json {
		var err error
		raw, err = yaml.YAMLToJSONStrict(d.data)
		if err != nil {
			l.yamlError(d, err)
			return 0
		}
	}
	var top any
	strictErrs, err := sigsjson.UnmarshalStrict(raw, &top, sigsjson.DisallowDuplicateFields)
	if err != nil {
		l.fail(&ObjectError{File: d.file, Document: d.index, Line: d.line, Err: fmt.Errorf("cannot decode: %w", err)})
		return 0
	}
	if len(strictErrs) > 0 {
		for _, se := range strictErrs {
			l.fail(&ObjectError{File: d.file, Document: d.index, Line: d.lineOfError(nil, se), Err: se})
		}
		return 0
	}
	switch v := top.(type) {
	case nil:
		return 0
	case map[string]any:
		return l.loadObject(d, v, raw, nil, "", "")
	default:
		l.fail(&ObjectError{File: d.file, Document: d.index, Line: d.line,
			Err: fmt.Errorf("a document must be a Kubernetes object, not %s", jsonKind(v))})
		return 0
	}
}

// yamlError reports a YAML syntax error at its line in the file.
func (l *loader) yamlError(d *document, err error) {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	matches := yamlLineRE.FindAllStringSubmatch(msg, -1)
	if len(matches) == 0 {
		l.fail(&ObjectError{File: d.file, Document: d.index, Line: d.line, Err: fmt.Errorf("invalid YAML: %s", msg)})
		return
	}
	for _, m := range matches {
		n, _ := strconv.Atoi(m[1])
		n = max(n, 1)
		l.fail(&ObjectError{File: d.file, Document: d.index, Line: d.line + n - 1,
			Err: fmt.Errorf("invalid YAML: %s", strings.TrimSpace(m[2]))})
	}
}

// kinds the model uses, by apiVersion and kind.
var modelKinds = map[string]map[string]bool{
	"v1":                   {"Namespace": true, "Pod": true, "Service": true},
	"apps/v1":              {"Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true},
	"batch/v1":             {"Job": true, "CronJob": true},
	"networking.k8s.io/v1": {"Ingress": true, "NetworkPolicy": true},
}

func isModelKind(apiVersion, kind string) bool {
	if kind == "ClientIntents" {
		group, version, _ := strings.Cut(apiVersion, "/")
		return group == intents.Group && slices.Contains(intents.Versions, version)
	}
	return modelKinds[apiVersion][kind]
}

// servedVersions names the apiVersions read for kind, or "" for kinds the model does
// not use, to warn when an object is skipped only for its version.
func servedVersions(kind string) string {
	if kind == "ClientIntents" {
		want := make([]string, len(intents.Versions))
		for i, v := range intents.Versions {
			want[i] = intents.Group + "/" + v
		}
		return strings.Join(want, ", ")
	}
	for apiVersion, kinds := range modelKinds {
		if kinds[kind] {
			return apiVersion
		}
	}
	return ""
}

// loadObject handles one object (or list) at path within document d. raw is the
// object's JSON when at hand (a whole document), nil for list items.
func (l *loader) loadObject(d *document, obj map[string]any, raw []byte, path *field.Path, defAPIVersion, defKind string) int {
	apiVersion, kind := defAPIVersion, defKind
	var errs field.ErrorList
	for _, f := range []struct {
		name string
		dst  *string
	}{{"apiVersion", &apiVersion}, {"kind", &kind}} {
		v, ok := obj[f.name]
		if !ok {
			if *f.dst == "" {
				errs = append(errs, field.Required(field.NewPath(f.name), ""))
			}
			continue
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, field.TypeInvalid(field.NewPath(f.name), v, "must be a string"))
			continue
		}
		*f.dst = s
		if s == "" {
			errs = append(errs, field.Required(field.NewPath(f.name), ""))
		}
	}
	if len(errs) > 0 {
		for _, e := range errs {
			l.fail(d.objectError(path, strings.TrimSpace(kind+" "+metaName(obj)), e))
		}
		return 0
	}

	if items, isList := obj["items"]; kind == "List" || (strings.HasSuffix(kind, "List") && isList) {
		list, ok := items.([]any)
		if !ok && items != nil {
			l.fail(d.objectError(path, kind, field.TypeInvalid(field.NewPath("items"), items, "must be a list")))
			return 0
		}
		itemAPIVersion, itemKind := "", ""
		if kind != "List" {
			itemAPIVersion, itemKind = apiVersion, strings.TrimSuffix(kind, "List")
		}
		defaulted := 0
		for i, it := range list {
			ip := prefixed(path, field.NewPath("items").Index(i))
			m, ok := it.(map[string]any)
			if !ok {
				l.fail(d.objectError(ip, "", fmt.Errorf("a list item must be a Kubernetes object, not %s", jsonKind(it))))
				continue
			}
			defaulted += l.loadObject(d, m, nil, ip, itemAPIVersion, itemKind)
		}
		return defaulted
	}

	if !isModelKind(apiVersion, kind) {
		l.objs.Ignored[apiVersion+"/"+kind]++
		if want := servedVersions(kind); want != "" {
			l.objs.Warnings = append(l.objs.Warnings, fmt.Sprintf(
				"%s: %s: apiVersion %s is not read (want %s); ignored",
				d.source(path), strings.TrimSpace(kind+" "+metaName(obj)), apiVersion, want))
		}
		return 0
	}
	return l.decodeTyped(d, obj, raw, path, kind)
}

// prefixed joins a list item path and a path within the item.
func prefixed(prefix, p *field.Path) *field.Path {
	if prefix == nil {
		return p
	}
	if p == nil {
		return prefix
	}
	return field.NewPath(prefix.String() + "." + p.String())
}

// metaName renders metadata namespace/name of a raw object, as far as it has them.
func metaName(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if name == "" {
		return ""
	}
	if ns, _ := md["namespace"].(string); ns != "" {
		return ns + "/" + name
	}
	return name
}

func (l *loader) decodeTyped(d *document, obj map[string]any, raw []byte, path *field.Path, kind string) int {
	label := strings.TrimSpace(kind + " " + metaName(obj))
	if raw == nil {
		var err error
		if raw, err = json.Marshal(obj); err != nil {
			l.fail(d.objectError(path, label, fmt.Errorf("cannot re-encode: %w", err)))
			return 0
		}
	}
	var (
		typed interface {
			metav1.Object
		}
		u *unstructured.Unstructured
	)
	switch kind {
	case "Namespace":
		typed = &corev1.Namespace{}
	case "Pod":
		typed = &corev1.Pod{}
	case "Service":
		typed = &corev1.Service{}
	case "Deployment":
		typed = &appsv1.Deployment{}
	case "StatefulSet":
		typed = &appsv1.StatefulSet{}
	case "DaemonSet":
		typed = &appsv1.DaemonSet{}
	case "ReplicaSet":
		typed = &appsv1.ReplicaSet{}
	case "Job":
		typed = &batchv1.Job{}
	case "CronJob":
		typed = &batchv1.CronJob{}
	case "Ingress":
		typed = &networkingv1.Ingress{}
	case "NetworkPolicy":
		typed = &networkingv1.NetworkPolicy{}
	case "ClientIntents":
		// ClientIntents stay unstructured: the model reads every version by shape.
		u = &unstructured.Unstructured{}
		typed = u
	}
	if u != nil {
		// Decode only the metadata strictly; the spec is checked by intents.FromUnstructured.
		var meta struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if !l.strictDecode(d, path, label, raw, &meta, false) {
			return 0
		}
		u.Object = obj
	} else if !l.strictDecode(d, path, label, raw, typed, true) {
		return 0
	}

	defaulted := 0
	if kind != "Namespace" && typed.GetNamespace() == "" {
		typed.SetNamespace(intents.DefaultNamespace)
		defaulted = 1
	}
	if kind == "Namespace" {
		typed.SetNamespace("")
	}
	ref := ObjectRef{Kind: kind, Namespace: typed.GetNamespace(), Name: typed.GetName()}
	src := Source{File: d.file, Document: d.index, Line: d.lineOf(path)}
	if ref.Name != "" {
		label = ref.String()
	}

	errs := validate(kind, typed)
	for _, e := range errs {
		l.fail(d.objectError(path, label, e))
	}
	if len(errs) > 0 {
		return defaulted
	}
	if first, dup := l.objs.Sources[ref]; dup {
		l.fail(d.objectError(path, label, fmt.Errorf("duplicate object: first defined in %s", first)))
		return defaulted
	}
	l.objs.Sources[ref] = src
	l.objs.add(typed)
	return defaulted
}

// strictDecode decodes raw into v, reporting type errors, and with strict unknown
// fields and duplicates when unknown is set.
func (l *loader) strictDecode(d *document, path *field.Path, label string, raw []byte, v any, unknown bool) bool {
	opts := []sigsjson.StrictOption{sigsjson.DisallowDuplicateFields}
	if unknown {
		opts = append(opts, sigsjson.DisallowUnknownFields)
	}
	strictErrs, err := sigsjson.UnmarshalStrict(raw, v, opts...)
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			line, at := d.typeError(path, te.Field, te.Value)
			l.fail(&ObjectError{File: d.file, Document: d.index, Line: line, Object: label,
				Err: field.Invalid(field.NewPath(at), omitValue, fmt.Sprintf("cannot decode %s into %s", te.Value, te.Type))})
		} else {
			l.fail(d.objectError(path, label, fmt.Errorf("cannot decode: %w", err)))
		}
		return false
	}
	for _, se := range strictErrs {
		oe := d.objectError(path, label, se)
		oe.Line = d.lineOfError(path, se)
		l.fail(oe)
	}
	return len(strictErrs) == 0
}

var omitValue = field.OmitValueType{}

func (o *Objects) add(obj metav1.Object) {
	switch v := obj.(type) {
	case *corev1.Namespace:
		o.Namespaces = append(o.Namespaces, v)
	case *corev1.Pod:
		o.Pods = append(o.Pods, v)
	case *corev1.Service:
		o.Services = append(o.Services, v)
	case *appsv1.Deployment:
		o.Deployments = append(o.Deployments, v)
	case *appsv1.StatefulSet:
		o.StatefulSets = append(o.StatefulSets, v)
	case *appsv1.DaemonSet:
		o.DaemonSets = append(o.DaemonSets, v)
	case *appsv1.ReplicaSet:
		o.ReplicaSets = append(o.ReplicaSets, v)
	case *batchv1.Job:
		o.Jobs = append(o.Jobs, v)
	case *batchv1.CronJob:
		o.CronJobs = append(o.CronJobs, v)
	case *networkingv1.Ingress:
		o.Ingresses = append(o.Ingresses, v)
	case *networkingv1.NetworkPolicy:
		o.NetworkPolicies = append(o.NetworkPolicies, v)
	case *unstructured.Unstructured:
		o.ClientIntents = append(o.ClientIntents, v)
	}
}

// source is where the object at path starts.
func (d *document) source(path *field.Path) Source {
	return Source{File: d.file, Document: d.index, Line: d.lineOf(path)}
}

// objectError locates err in the object at path. A *field.Error is placed at its field's
// line; anything else at the object's first line.
func (d *document) objectError(path *field.Path, object string, err error) *ObjectError {
	if object == "" && path != nil {
		object = path.String()
	}
	return &ObjectError{File: d.file, Document: d.index, Line: d.lineOfError(path, err), Object: object, Err: err}
}

func (d *document) lineOfError(path *field.Path, err error) int {
	var fe *field.Error
	if errors.As(err, &fe) {
		return d.lineOf(prefixed(path, fieldPath(fe.Field)))
	}
	var se sigsjson.FieldError
	if errors.As(err, &se) {
		return d.lineOf(prefixed(path, fieldPath(se.FieldPath())))
	}
	return d.lineOf(path)
}

// fieldPath rebuilds a *field.Path from its string form for locating.
func fieldPath(s string) *field.Path {
	if s == "" || s == "<nil>" {
		return nil
	}
	return field.NewPath(s)
}

// lineOf is the file line of the node at path, or of its deepest ancestor present in
// the document, or the document's first line when the document cannot be parsed for
// positions.
func (d *document) lineOf(path *field.Path) int {
	t := d.positions()
	if t == nil {
		return d.line
	}
	var s string
	if path != nil {
		s = path.String()
	}
	return d.line + t.line(parsePath(s)) - 1
}

// typeError locates a JSON type error on field (a path without list indexes) and
// returns its line and its path with indexes, falling back to the object's line and
// the path as given.
func (d *document) typeError(path *field.Path, fieldName, value string) (int, string) {
	if t := d.positions(); t != nil {
		var prefix []pathElem
		if path != nil {
			prefix = parsePath(path.String())
		}
		if line, at, ok := t.typeError(prefix, strings.Split(fieldName, "."), value); ok {
			return d.line + line - 1, at
		}
	}
	return d.lineOf(path), fieldName
}

func (d *document) positions() *yamlTree {
	if d.tree == nil && !d.treeErr {
		d.tree = parseTree(d.data)
		d.treeErr = d.tree == nil
	}
	return d.tree
}

// jsonKind names the JSON type of a decoded value, for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "a number"
	}
}
