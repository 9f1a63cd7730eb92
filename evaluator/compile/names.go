package compile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// Policy name prefixes. Every policy the compiler writes starts with "shadowgate-".
const (
	DefaultDenyName       = "shadowgate-default-deny"
	allowPrefix           = "shadowgate-allow-"
	externalPrefix        = "shadowgate-allow-external-"
	egressPrefix          = "shadowgate-egress-"
	hashLen               = 8
	maxNameLen            = validation.DNS1123SubdomainMaxLength
	truncatedNameKeepsLen = maxNameLen - hashLen - 1
)

// shortHash is a stable suffix that keeps altered names distinct.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:hashLen]
}

// policyName turns prefix+text into a valid DNS-1123 subdomain of at most 253
// characters. Kubernetes object names pass through lowercased and unchanged; free text
// (workload-name annotations) has invalid characters replaced; names too long are cut
// and end in a hash of the whole, so two long names that share a prefix stay distinct.
func policyName(prefix, text string) string {
	raw := prefix + text
	name := strings.ToLower(raw)
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		name = sanitize(name)
	}
	if len(name) > maxNameLen {
		name = trimEnds(name[:truncatedNameKeepsLen]) + "-" + shortHash(raw)
	}
	return name
}

// withSuffix appends "-suffix" to a valid name, cutting it to stay within the limit.
func withSuffix(name, suffix string) string {
	if keep := maxNameLen - len(suffix) - 1; len(name) > keep {
		name = trimEnds(name[:keep])
	}
	return name + "-" + suffix
}

// sanitize maps name onto the DNS-1123 subdomain alphabet: every other character
// becomes '-', and each dot-separated label is trimmed to start and end alphanumeric.
func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '-' {
			b[i] = '-'
		}
	}
	var labels []string
	for _, l := range strings.Split(string(b), ".") {
		if l = strings.Trim(l, "-"); l != "" {
			labels = append(labels, l)
		}
	}
	return strings.Join(labels, ".")
}

func trimEnds(s string) string { return strings.TrimRight(s, "-.") }

// workloadPart is the part of a policy name that stands for an identity: its name, and
// its kind when another identity in the namespace shares the name.
func (ix *index) workloadPart(id cluster.WorkloadID) string {
	if id.Kind != "" && ix.sharesName(id) {
		return id.Name + "-" + strings.ToLower(id.Kind)
	}
	return id.Name
}

// plan is a policy on its way out, before its name is final.
type plan struct {
	p *networkingv1.NetworkPolicy
	// base is the name the policy wants.
	base string
	// purpose is unique among the plans of a namespace; it seeds the suffix that tells
	// apart plans that want the same name.
	purpose string
	// subject describes the plan for the collision warning.
	subject string
}

// resolveNames names every plan. Plans of one namespace that want the same name (a
// workload-name annotation "external-web" and an exposed Service "web", say) all take a
// suffix derived from their own purpose, so no plan's name depends on which others exist
// beyond the collision itself.
func resolveNames(plans []*plan) []Warning {
	groups := map[string][]*plan{}
	for _, pl := range plans {
		k := pl.p.Namespace + "/" + pl.base
		groups[k] = append(groups[k], pl)
	}
	var warnings []Warning
	for k, g := range groups {
		if len(g) == 1 {
			g[0].p.Name = g[0].base
			continue
		}
		subjects := make([]string, len(g))
		for i, pl := range g {
			pl.p.Name = withSuffix(pl.base, shortHash(pl.purpose))
			subjects[i] = pl.subject
		}
		sort.Strings(subjects)
		warnings = append(warnings, Warning{
			Object:  "NetworkPolicy " + k,
			Message: fmt.Sprintf("name wanted by %s; each takes a hash suffix", strings.Join(subjects, " and ")),
		})
	}
	return warnings
}
