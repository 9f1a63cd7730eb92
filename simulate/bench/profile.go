// Package bench generates deterministic cluster-scale workloads (a snapshot, ClientIntents
// and Hubble jsonpb flows) and measures shadowgate against them: the Go benchmarks, the
// `shadowgate bench gen` generator and the `shadowgate bench run` harness all read the
// same generated world, so a figure in BENCHMARKS.md can be reproduced from a profile
// name and a seed.
package bench

import (
	"fmt"
	"strings"
)

// Profile is the size of a generated cluster.
type Profile struct {
	Name       string
	Namespaces int
	Workloads  int
	Pods       int
	// IntentTargets is the number of targets over all ClientIntents.
	IntentTargets int
	// Policies is the number of NetworkPolicies the cluster already has.
	Policies int
	// Flows is the default number of flow lines `bench gen` writes.
	Flows int
}

// The profiles of issue 7. Namespaces include kube-system and monitoring, workloads
// include their DNS and monitoring workloads.
var (
	ProfileS = Profile{Name: "S", Namespaces: 5, Workloads: 50, Pods: 500, IntentTargets: 200, Policies: 20, Flows: 100_000}
	ProfileM = Profile{Name: "M", Namespaces: 100, Workloads: 2_000, Pods: 20_000, IntentTargets: 10_000, Policies: 500, Flows: 10_000_000}
	ProfileL = Profile{Name: "L", Namespaces: 500, Workloads: 10_000, Pods: 100_000, IntentTargets: 50_000, Policies: 2_000, Flows: 10_000_000}
)

// Profiles lists the named profiles, smallest first.
func Profiles() []Profile { return []Profile{ProfileS, ProfileM, ProfileL} }

// ProfileByName returns the profile called name (S, M or L, any case).
func ProfileByName(name string) (Profile, error) {
	for _, p := range Profiles() {
		if strings.EqualFold(p.Name, name) {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("profile %q: must be S, M or L", name)
}

// Validate reports every field that cannot make a cluster.
func (p Profile) Validate() error {
	var bad []string
	if p.Namespaces < 3 {
		bad = append(bad, fmt.Sprintf("namespaces %d: need at least 3 (kube-system, monitoring and one application namespace)", p.Namespaces))
	}
	// Every application namespace needs two workloads (a client and a server), and
	// kube-system and monitoring one each.
	if minW := 2 + 2*(p.Namespaces-2); p.Workloads < minW {
		bad = append(bad, fmt.Sprintf("workloads %d: need at least %d for %d namespaces", p.Workloads, minW, p.Namespaces))
	}
	if p.Pods < p.Workloads {
		bad = append(bad, fmt.Sprintf("pods %d: need at least one per workload (%d)", p.Pods, p.Workloads))
	}
	if p.Pods > maxPods {
		bad = append(bad, fmt.Sprintf("pods %d: at most %d fit the generator's pod address range", p.Pods, maxPods))
	}
	if p.IntentTargets < 0 || p.Policies < 0 || p.Flows < 0 {
		bad = append(bad, "intent targets, policies and flows must not be negative")
	}
	if len(bad) > 0 {
		return fmt.Errorf("profile %s: %s", p.Name, strings.Join(bad, "; "))
	}
	return nil
}
