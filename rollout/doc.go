// Package rollout is the controller that moves namespaces from shadow mode to enforcement
// and back, one NamespaceRollout (shadowgate.dev/v1alpha1, cluster-scoped, named after its
// namespace) per governed namespace, and the client operations behind `shadowgate promote`,
// `rollback`, `status` and `init`.
//
// # Data flow
//
// Informers on namespaces, pods, workloads, Services, Ingresses, NetworkPolicies and
// ClientIntents feed the Snapshotter, which rebuilds the cluster model with cluster.Build
// after each burst of changes. Ingest reads the flow sources (Hubble, the network-mapper, a
// file), judges each flow as if its namespace were enforced (simulate.Simulator over the
// model without shadowgate's own policies there, plus the namespace's compiled policies),
// and records it in that namespace's soak.Store; after each model change it re-judges the
// stored edges. It also counts Hubble's policy drops into enforced namespaces. The
// Reconciler evaluates each namespace's gate, applies or removes its policies, and reports.
//
// # Requests and state
//
// spec.mode is the request and status.mode what is in effect. `shadowgate promote` and
// `rollback` set spec.mode together with the shadowgate.dev/mode-request annotation (who,
// why, forced), in one optimistic-locked patch; the controller does the same for automatic
// promotions and rollbacks, so the object always reads as the current request. Phases:
//
//	Shadow     soaking; the gate does not pass
//	Ready      the gate passes; waiting for an operator or a promotion window
//	Enforcing  the compiled policies are applied and kept in sync
//	RolledBack the last transition was a rollback and the gate does not pass again yet
//	Blocked    Enforce was asked for but cannot happen: the gate fails and the request
//	           was not forced, the policies do not compile, a policy name is taken by
//	           someone else's policy, or the namespace does not exist
//
// A promotion applies the allow policies before the default deny; a rollback deletes the
// default deny first. Policies are written with server-side apply under the field manager
// "shadowgate", carry the managed-by label and an owner reference to the rollout, and only
// policies with both are ever changed or deleted. After an automatic rollback the
// controller does not promote by itself until a full soak window has passed.
//
// # Persistence
//
// Each namespace's soak store is saved, compressed, to the Secret shadowgate-soak-<ns> in
// the controller's namespace every SaveInterval and on shutdown; a new leader loads it and
// records the time since the last save as a shadowgate-down gap. An unreadable snapshot is
// kept aside as shadowgate-soak-<ns>-corrupt-<unix> and the soak starts over.
//
// # Permissions
//
// The +kubebuilder:rbac markers in manager.go generate deploy/rbac/role.yaml; the envtest
// suite runs the controller as its ServiceAccount with exactly those roles and fails on any
// request the API server refuses.
package rollout
