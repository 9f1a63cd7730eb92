// Package v1alpha1 is the shadowgate.dev/v1alpha1 API: NamespaceRollout, one cluster-scoped
// object per namespace that shadowgate governs, saying how it moves from shadow mode to
// enforcement and back.
//
// +kubebuilder:object:generate=true
// +groupName=shadowgate.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of this package.
var GroupVersion = schema.GroupVersion{Group: "shadowgate.dev", Version: "v1alpha1"}

var (
	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &NamespaceRollout{}, &NamespaceRolloutList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
