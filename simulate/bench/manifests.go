package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// Layout of a written world, relative to its directory.
const (
	ClusterDir = "cluster"     // every manifest, ClientIntents included: --cluster DIR/cluster
	FlowsFile  = "flows.jsonl" // --flows DIR/flows.jsonl
)

// WriteDir writes the world into dir (created if needed): the manifests under
// dir/cluster and n flow lines in dir/flows.jsonl, streamed so that any n fits in memory.
func (w *World) WriteDir(dir string, n int) error {
	if err := w.WriteManifests(filepath.Join(dir, ClusterDir)); err != nil {
		return err
	}
	path := filepath.Join(dir, FlowsFile)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := w.WriteFlows(f, n); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// WriteManifests writes the world's objects as YAML under dir: namespaces.yaml, one file
// per namespace with its workloads, pods and Services under namespaces/,
// networkpolicies.yaml and clientintents.yaml. Loading dir gives the snapshot that
// Snapshot builds in memory.
func (w *World) WriteManifests(dir string) error {
	o := w.objects
	byNS := map[string][]any{}
	var order []string
	add := func(ns string, obj any) {
		if _, ok := byNS[ns]; !ok {
			order = append(order, ns)
		}
		byNS[ns] = append(byNS[ns], obj)
	}
	for _, d := range o.Deployments {
		add(d.Namespace, d)
	}
	for _, s := range o.StatefulSets {
		add(s.Namespace, s)
	}
	for _, rs := range o.ReplicaSets {
		add(rs.Namespace, rs)
	}
	for _, p := range o.Pods {
		add(p.Namespace, p)
	}
	for _, s := range o.Services {
		add(s.Namespace, s)
	}
	files := []struct {
		name string
		objs []any
	}{{name: "namespaces.yaml"}, {name: "networkpolicies.yaml"}, {name: "clientintents.yaml"}}
	for _, ns := range o.Namespaces {
		files[0].objs = append(files[0].objs, ns)
	}
	for _, np := range o.NetworkPolicies {
		files[1].objs = append(files[1].objs, np)
	}
	for _, ci := range o.ClientIntents {
		files[2].objs = append(files[2].objs, ci.Object)
	}
	for _, ns := range order {
		files = append(files, struct {
			name string
			objs []any
		}{filepath.Join("namespaces", ns+".yaml"), byNS[ns]})
	}
	if err := os.MkdirAll(filepath.Join(dir, "namespaces"), 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeYAML(filepath.Join(dir, f.name), f.objs); err != nil {
			return err
		}
	}
	return nil
}

func writeYAML(path string, objs []any) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	bw := bufio.NewWriterSize(f, 1<<20)
	for i, obj := range objs {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("%s: object %d: %w", path, i+1, err)
		}
		if _, err := bw.WriteString("---\n"); err != nil {
			return err
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}
