package evaluator

import (
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// selectorTable holds the distinct label selectors of a policy set and answers "which of
// them select this label set" without trying every one: each selector is filed under one
// requirement every matching label set must meet (an anchor: key=value, or the presence
// of a key), so a label set is only checked against the selectors filed under its own
// labels, plus the few that no label can anchor (empty selectors, NotIn or DoesNotExist
// alone). Matching an identity costs about its number of labels, not the number of
// policies, which is what keeps engine construction and updates fast at cluster scale.
//
// Indexes are never reused: a selector stays in the table when its last policy goes, so
// indexes held by identities stay meaningful.
type selectorTable struct {
	sels []labels.Selector
	// byString dedupes converted selectors: converted selectors print canonically
	// (requirements sorted by key, values validated so they cannot contain the
	// separators), so equal strings mean equal selectors.
	byString map[string]int
	// byContent memoizes conversion by the LabelSelector's content, which is cheaper
	// to key than to convert; -1 records a selector that does not convert.
	byContent map[string]int

	byLabel map[labelKV][]int32
	byKey   map[string][]int32
	always  []int32

	// stamp and epoch dedupe candidates during matching without clearing a set.
	stamp []uint32
	epoch uint32
}

type labelKV struct{ key, value string }

func newSelectorTable() selectorTable {
	return selectorTable{
		byString:  map[string]int{},
		byContent: map[string]int{},
		byLabel:   map[labelKV][]int32{},
		byKey:     map[string][]int32{},
	}
}

// add returns the index of sel, adding it when no equivalent selector is there yet, or
// -1 when it does not convert (it then selects nothing, as in the Oracle). added reports
// a new index, which existing identities have not been matched against.
func (t *selectorTable) add(sel *metav1.LabelSelector) (index int, added bool) {
	content := contentKey(sel)
	if i, ok := t.byContent[content]; ok {
		return i, false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.byContent[content] = -1
		return -1, false
	}
	key := s.String()
	if i, ok := t.byString[key]; ok {
		t.byContent[content] = i
		return i, false
	}
	i := len(t.sels)
	t.sels = append(t.sels, s)
	t.byString[key] = i
	t.byContent[content] = i
	t.stamp = append(t.stamp, 0)
	t.file(int32(i), s)
	return i, true
}

// anchor is the requirement a selector is filed under: every label set it selects has
// key=one of values (values set) or has key (values nil); none for a selector that no
// label can anchor.
type anchor struct {
	none   bool
	key    string
	values []string
}

// anchorOf returns the anchor of selector i.
func (t *selectorTable) anchorOf(i int) anchor {
	a := pickAnchor(t.sels[i])
	if a == nil {
		return anchor{none: true}
	}
	if a.Operator() == selection.Exists {
		return anchor{key: a.Key()}
	}
	return anchor{key: a.Key(), values: a.Values().UnsortedList()}
}

// file records selector i under its anchor.
func (t *selectorTable) file(i int32, s labels.Selector) {
	anchor := pickAnchor(s)
	switch {
	case anchor == nil:
		t.always = append(t.always, i)
	case anchor.Operator() == selection.Exists:
		t.byKey[anchor.Key()] = append(t.byKey[anchor.Key()], i)
	default:
		for _, v := range anchor.Values().UnsortedList() {
			kv := labelKV{anchor.Key(), v}
			t.byLabel[kv] = append(t.byLabel[kv], i)
		}
	}
}

// pickAnchor chooses the requirement with the fewest values among those every selected
// label set must meet (equality and In, else Exists), so that the selector is filed
// under the fewest labels; nil when there is none.
func pickAnchor(s labels.Selector) *labels.Requirement {
	reqs, _ := s.Requirements()
	var anchor *labels.Requirement
	for j := range reqs {
		r := &reqs[j]
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			// The requirement with the fewest values files the selector under the
			// fewest labels.
			if anchor == nil || anchor.Operator() == selection.Exists || r.Values().Len() < anchor.Values().Len() {
				anchor = r
			}
		case selection.Exists:
			if anchor == nil {
				anchor = r
			}
		}
	}
	if anchor == nil {
		return nil
	}
	// A copy: the requirement lives in reqs, which the loop variable pointed into.
	a := *anchor
	return &a
}

// matching appends to out the indexes of the selectors that select l, sorted.
func (t *selectorTable) matching(l labels.Set, out []int32) []int32 {
	t.epoch++
	if t.epoch == 0 { // wrapped: old stamps could collide
		clear(t.stamp)
		t.epoch = 1
	}
	start := len(out)
	try := func(cands []int32) {
		for _, i := range cands {
			if t.stamp[i] == t.epoch {
				continue
			}
			t.stamp[i] = t.epoch
			if t.sels[i].Matches(l) {
				out = append(out, i)
			}
		}
	}
	try(t.always)
	for k, v := range l {
		try(t.byKey[k])
		try(t.byLabel[labelKV{k, v}])
	}
	slices.Sort(out[start:])
	return out
}

// contentKey renders a LabelSelector injectively: every string is length-prefixed.
// Expressions keep their order and duplicates, since conversion validates them as given.
func contentKey(sel *metav1.LabelSelector) string {
	var b strings.Builder
	field := func(s string) {
		b.WriteString(itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	keys := make([]string, 0, len(sel.MatchLabels))
	for k := range sel.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString(itoa(len(keys)))
	for _, k := range keys {
		field(k)
		field(sel.MatchLabels[k])
	}
	b.WriteString(itoa(len(sel.MatchExpressions)))
	for _, e := range sel.MatchExpressions {
		field(e.Key)
		field(string(e.Operator))
		b.WriteString(itoa(len(e.Values)))
		for _, v := range e.Values {
			field(v)
		}
	}
	return b.String()
}

// sortedHas reports whether the sorted set s holds i.
func sortedHas(s []int32, i int) bool {
	_, found := slices.BinarySearch(s, int32(i))
	return found
}
