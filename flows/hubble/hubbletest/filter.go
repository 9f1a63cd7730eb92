package hubbletest

import (
	"fmt"
	"slices"
	"strings"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// supportedFilterFields are the FlowFilter fields the server evaluates. A request using
// any other is rejected with InvalidArgument rather than answered unfiltered, so a test
// can never pass because a filter was silently ignored.
var supportedFilterFields = map[protoreflect.Name]bool{
	"source_pod":      true,
	"destination_pod": true,
	"verdict":         true,
}

// podName is a parsed pod filter: a namespace ("" for any) and a pod name prefix.
type podName struct{ ns, prefix string }

// filter is one FlowFilter: every field set must match (AND), a field matches when any of
// its values does (OR). Hubble's semantics, from pkg/hubble/filters.
type filter struct {
	srcPods, dstPods []podName
	verdicts         []flowpb.Verdict
}

// matcher is a request's whitelist and blacklist: a flow passes when it matches one
// whitelist filter (or there is none) and no blacklist filter.
type matcher struct {
	white, black []filter
}

func newMatcher(white, black []*flowpb.FlowFilter) (matcher, error) {
	w, err := compileFilters("whitelist", white)
	if err != nil {
		return matcher{}, err
	}
	b, err := compileFilters("blacklist", black)
	if err != nil {
		return matcher{}, err
	}
	return matcher{white: w, black: b}, nil
}

func compileFilters(list string, ffs []*flowpb.FlowFilter) ([]filter, error) {
	out := make([]filter, 0, len(ffs))
	for i, ff := range ffs {
		var unsupported []string
		ff.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			if !supportedFilterFields[fd.Name()] {
				unsupported = append(unsupported, string(fd.Name()))
			}
			return true
		})
		if len(unsupported) > 0 {
			slices.Sort(unsupported)
			return nil, fmt.Errorf("%s[%d]: hubbletest does not evaluate %s (supported: destination_pod, source_pod, verdict)",
				list, i, strings.Join(unsupported, ", "))
		}
		src, err := parsePodNames(ff.GetSourcePod())
		if err != nil {
			return nil, fmt.Errorf("%s[%d].source_pod: %w", list, i, err)
		}
		dst, err := parsePodNames(ff.GetDestinationPod())
		if err != nil {
			return nil, fmt.Errorf("%s[%d].destination_pod: %w", list, i, err)
		}
		out = append(out, filter{srcPods: src, dstPods: dst, verdicts: ff.GetVerdict()})
	}
	return out, nil
}

// parsePodNames follows Hubble: "ns/" is every pod of ns, "ns/prefix" the pods of ns whose
// name starts with prefix, "/prefix" such pods in any namespace, and a bare "prefix" pods
// of the default namespace.
func parsePodNames(names []string) ([]podName, error) {
	out := make([]podName, 0, len(names))
	for _, name := range names {
		if name == "" {
			return nil, fmt.Errorf("invalid filter, name must not be empty")
		}
		ns, prefix, ok := strings.Cut(name, "/")
		if !ok {
			ns, prefix = "default", name
		}
		out = append(out, podName{ns: ns, prefix: prefix})
	}
	return out, nil
}

func (m matcher) keep(f *flowpb.Flow) bool {
	if len(m.white) > 0 && !slices.ContainsFunc(m.white, func(fl filter) bool { return fl.match(f) }) {
		return false
	}
	return !slices.ContainsFunc(m.black, func(fl filter) bool { return fl.match(f) })
}

func (fl filter) match(f *flowpb.Flow) bool {
	if len(fl.srcPods) > 0 && !matchPod(fl.srcPods, f.GetSource()) {
		return false
	}
	if len(fl.dstPods) > 0 && !matchPod(fl.dstPods, f.GetDestination()) {
		return false
	}
	if len(fl.verdicts) > 0 && !slices.Contains(fl.verdicts, f.GetVerdict()) {
		return false
	}
	return true
}

func matchPod(names []podName, ep *flowpb.Endpoint) bool {
	ns, pod := ep.GetNamespace(), ep.GetPodName()
	if ns == "" && pod == "" {
		return false
	}
	return slices.ContainsFunc(names, func(n podName) bool {
		return (n.prefix == "" || strings.HasPrefix(pod, n.prefix)) && (n.ns == "" || n.ns == ns)
	})
}
