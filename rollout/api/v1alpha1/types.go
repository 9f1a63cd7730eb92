package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode is how shadowgate treats a namespace.
// +kubebuilder:validation:Enum=Shadow;Enforce
type Mode string

const (
	// Shadow: nothing is applied; flows into the namespace are judged against the policies
	// enforcement would apply and accumulate in the soak window.
	Shadow Mode = "Shadow"
	// Enforce: the compiled policies are applied and kept in sync.
	Enforce Mode = "Enforce"
)

// PromotionPolicy says who moves a namespace from Shadow to Enforce.
// +kubebuilder:validation:Enum=Manual;Automatic
type PromotionPolicy string

const (
	// PromoteManually: only an operator promotes (`shadowgate promote`).
	PromoteManually PromotionPolicy = "Manual"
	// PromoteAutomatically: the controller promotes when the gate passes and the current
	// time is inside one of the promotion windows.
	PromoteAutomatically PromotionPolicy = "Automatic"
)

// RollbackPolicy says whether enforcement that drops traffic is undone by the controller.
// +kubebuilder:validation:Enum=Manual;Automatic
type RollbackPolicy string

const (
	// RollBackManually: only an operator rolls back (`shadowgate rollback`).
	RollBackManually RollbackPolicy = "Manual"
	// RollBackAutomatically: crossing the drop threshold rolls the namespace back.
	RollBackAutomatically RollbackPolicy = "Automatic"
)

// Phase summarizes where a namespace is in its rollout.
// +kubebuilder:validation:Enum=Shadow;Ready;Enforcing;RolledBack;Blocked
type Phase string

const (
	// PhaseShadow: soaking; the gate does not pass yet.
	PhaseShadow Phase = "Shadow"
	// PhaseReady: the gate passes; waiting for an operator (manual promotion) or for a
	// promotion window (automatic promotion).
	PhaseReady Phase = "Ready"
	// PhaseEnforcing: the compiled policies are applied.
	PhaseEnforcing Phase = "Enforcing"
	// PhaseRolledBack: the last transition was a rollback and the gate does not pass again
	// yet.
	PhaseRolledBack Phase = "RolledBack"
	// PhaseBlocked: enforcement was asked for but cannot happen: the gate does not pass and
	// the request was not forced, the policies cannot be compiled, or the namespace does
	// not exist.
	PhaseBlocked Phase = "Blocked"
)

// Condition types of a NamespaceRollout.
const (
	// ConditionGatePassed: the soak gate passes for the namespace.
	ConditionGatePassed = "GatePassed"
	// ConditionEnforced: the compiled policies are applied and match the cluster's state.
	ConditionEnforced = "Enforced"
	// ConditionSpecValid: the spec parses (promotion windows, time zone).
	ConditionSpecValid = "SpecValid"
)

// Limits on the bounded status lists; the CRD schema enforces them as maxItems.
const (
	MaxReasons         = 16
	MaxUncoveredEdges  = 10
	MaxGaps            = 10
	MaxAppliedPolicies = 512
	MaxWindows         = 16
)

// NamespaceRollout governs the enforcement of one namespace. It is cluster-scoped and
// named after the namespace it governs.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=nsr,categories=shadowgate
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.namespace`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Gate",type=string,JSONPath=`.status.conditions[?(@.type=="GatePassed")].status`
// +kubebuilder:printcolumn:name="Uncovered",type=integer,JSONPath=`.status.uncoveredEdges`
// +kubebuilder:printcolumn:name="Connections",type=integer,JSONPath=`.status.observedConnections`,priority=1
// +kubebuilder:printcolumn:name="Soak-Start",type=date,JSONPath=`.status.soakStart`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == self.spec.namespace",message="a NamespaceRollout is named after its namespace (metadata.name must equal spec.namespace), so there is one per namespace"
type NamespaceRollout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NamespaceRolloutSpec   `json:"spec"`
	Status NamespaceRolloutStatus `json:"status,omitempty"`
}

// NamespaceRolloutList is a list of NamespaceRollouts.
//
// +kubebuilder:object:root=true
type NamespaceRolloutList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NamespaceRollout `json:"items"`
}

// NamespaceRolloutSpec is what the operator wants.
//
// +kubebuilder:validation:XValidation:rule="self.promotion.policy != 'Automatic' || (has(self.promotion.windows) && size(self.promotion.windows) > 0)",message="automatic promotion needs at least one window"
type NamespaceRolloutSpec struct {
	// Namespace is the governed namespace. It cannot change: a rollout's soak history
	// belongs to one namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="namespace is immutable"
	Namespace string `json:"namespace"`

	// Mode is the requested mode. `shadowgate promote` and `shadowgate rollback` set it,
	// and so does the controller for automatic promotions and rollbacks, so it always reads
	// as the current request.
	// +kubebuilder:default=Shadow
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// Soak says how long and how cleanly the namespace must be observed before the gate
	// passes.
	// +kubebuilder:default={}
	// +optional
	Soak SoakSpec `json:"soak,omitempty"`

	// Egress also enforces egress: a default deny for egress and one allowance per called
	// server, plus DNS.
	// +optional
	Egress bool `json:"egress,omitempty"`

	// Promotion says who promotes the namespace.
	// +kubebuilder:default={}
	// +optional
	Promotion PromotionSpec `json:"promotion,omitempty"`

	// Rollback says whether drops after promotion roll the namespace back.
	// +kubebuilder:default={}
	// +optional
	Rollback RollbackSpec `json:"rollback,omitempty"`
}

// SoakSpec configures the gate.
type SoakSpec struct {
	// Window is how far back the gate looks, and how long the namespace must have been
	// tracked before it can pass: a whole number of hours, at most the controller's
	// --soak-history.
	// +kubebuilder:default="168h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h') && duration(self).getSeconds() % 3600 == 0",message="window must be a whole number of hours, at least 1h"
	// +optional
	Window *metav1.Duration `json:"window,omitempty"`

	// MinConnections is how many connections into the namespace the window must hold.
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=0
	// +optional
	MinConnections *int64 `json:"minConnections,omitempty"`

	// MaxGap bounds the ingestion gaps in the window: their total must stay under it and
	// no single gap may exceed it.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="maxGap must be positive"
	// +optional
	MaxGap *metav1.Duration `json:"maxGap,omitempty"`

	// LostEventsThreshold is how many flows the producers may report lost for the
	// namespace in the window.
	// +kubebuilder:validation:Minimum=0
	// +optional
	LostEventsThreshold int64 `json:"lostEventsThreshold,omitempty"`
}

// PromotionSpec configures promotion.
type PromotionSpec struct {
	// Policy is Manual (the default) or Automatic.
	// +kubebuilder:default=Manual
	// +optional
	Policy PromotionPolicy `json:"policy,omitempty"`

	// Windows are the times automatic promotion may happen.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Windows []PromotionWindow `json:"windows,omitempty"`

	// TimeZone is the IANA time zone the window schedules are read in.
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MaxLength=64
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
}

// PromotionWindow opens at each time its schedule names and stays open for Duration.
type PromotionWindow struct {
	// Schedule is a cron specification as github.com/robfig/cron/v3 reads it: five fields
	// (minute hour day-of-month month day-of-week) or a descriptor such as @daily.
	// "0 9 * * 1-5" opens the window at 09:00 on weekdays.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Schedule string `json:"schedule"`

	// Duration is how long the window stays open after each opening, at most a week.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('168h')",message="duration must be positive and at most 168h"
	Duration metav1.Duration `json:"duration"`
}

// RollbackSpec configures automatic rollback.
type RollbackSpec struct {
	// Policy is Automatic (the default) or Manual.
	// +kubebuilder:default=Automatic
	// +optional
	Policy RollbackPolicy `json:"policy,omitempty"`

	// Drops is how many flows Hubble reports DROPPED by policy (POLICY_DENIED,
	// POLICY_DENY) into the namespace within Period that roll it back.
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +optional
	Drops int32 `json:"drops,omitempty"`

	// Period is the sliding window the drops are counted over.
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="period must be positive"
	// +optional
	Period *metav1.Duration `json:"period,omitempty"`
}

// NamespaceRolloutStatus is what the controller observed and did.
type NamespaceRolloutStatus struct {
	// ObservedGeneration is the generation of the spec the status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase summarizes the rollout.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// Mode is the mode in effect: Enforce once the policies are applied, Shadow once they
	// are removed.
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// SoakStart is when tracking of the namespace began.
	// +optional
	SoakStart *metav1.Time `json:"soakStart,omitempty"`

	// Gate is the last gate result.
	// +optional
	Gate *GateStatus `json:"gate,omitempty"`

	// ObservedConnections is the number of connections into the namespace in the window.
	// +optional
	ObservedConnections int64 `json:"observedConnections,omitempty"`

	// UncoveredEdges is the number of distinct edges in the window that enforcement
	// would drop.
	// +optional
	UncoveredEdges int32 `json:"uncoveredEdges,omitempty"`

	// TopUncoveredEdges lists the most frequent uncovered edges.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	TopUncoveredEdges []UncoveredEdge `json:"topUncoveredEdges,omitempty"`

	// Gaps lists the most recent ingestion gaps in the window.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	Gaps []Gap `json:"gaps,omitempty"`

	// GapTotal is the total time of the gaps in the window.
	// +optional
	GapTotal *metav1.Duration `json:"gapTotal,omitempty"`

	// Applied describes the policies in force.
	// +optional
	Applied *AppliedPolicies `json:"applied,omitempty"`

	// NextPromotionWindow is when the next promotion window opens (automatic promotion).
	// +optional
	NextPromotionWindow *metav1.Time `json:"nextPromotionWindow,omitempty"`

	// LastPromotion is the last move to Enforce.
	// +optional
	LastPromotion *Transition `json:"lastPromotion,omitempty"`

	// LastRollback is the last move back to Shadow.
	// +optional
	LastRollback *Transition `json:"lastRollback,omitempty"`

	// Conditions: GatePassed, Enforced, SpecValid.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// GateStatus is a gate result.
type GateStatus struct {
	// Passed is true when enforcing now would drop nothing observed and the observation is
	// complete enough to say so.
	Passed bool `json:"passed"`

	// Reasons the gate does not pass, each specific.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Reasons []GateReason `json:"reasons,omitempty"`

	// EvaluatedAt is when the gate was asked.
	EvaluatedAt metav1.Time `json:"evaluatedAt"`
}

// GateReason is one reason a gate does not pass.
type GateReason struct {
	// Code is a stable token: uncovered, min-connections, gap, lost-events, overflow,
	// tracking, untracked, ...
	// +kubebuilder:validation:MaxLength=64
	Code string `json:"code"`
	// Message says it for people.
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
}

// UncoveredEdge is an observed connection enforcement would drop.
type UncoveredEdge struct {
	// Source is "namespace/workload", "node NAME" or "external CIDR".
	Source string `json:"source"`
	// Destination is "namespace/workload".
	Destination string `json:"destination"`
	// Protocol and Port are empty for workload-level observations (the network-mapper).
	// +optional
	Protocol string `json:"protocol,omitempty"`
	// +optional
	Port int32 `json:"port,omitempty"`
	// Count is the number of connections in the window.
	Count int64 `json:"count"`
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`
	// Reason is the verdict's explanation.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`
}

// Gap is an interval during which flows for the namespace may have been missed.
type Gap struct {
	Start metav1.Time `json:"start"`
	// End is unset for a gap still open.
	// +optional
	End *metav1.Time `json:"end,omitempty"`
	// Reason is a stable token: source-disconnected, stalled, node-unavailable,
	// shadowgate-down, snapshot-lost, ...
	Reason string `json:"reason"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// AppliedPolicies are the NetworkPolicies shadowgate applied.
type AppliedPolicies struct {
	// Names of the policies, sorted.
	// +kubebuilder:validation:MaxItems=512
	// +listType=atomic
	// +optional
	Names []string `json:"names,omitempty"`
	// Generation of the NamespaceRollout they were compiled for.
	Generation int64 `json:"generation"`
	// Hash identifies the compiled set (sha256 of the policies, hex, first 16 digits), so a
	// change of intents or workloads shows as a new hash.
	Hash string `json:"hash"`
	// Time of the last apply.
	Time metav1.Time `json:"time"`
}

// Transition records a promotion or rollback.
type Transition struct {
	Time metav1.Time `json:"time"`
	// By is who asked: a user as the API server authenticated them, or the controller's
	// service account for automatic transitions.
	// +optional
	By string `json:"by,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`
	// Automatic is true when the controller decided.
	// +optional
	Automatic bool `json:"automatic,omitempty"`
	// Forced is true for a promotion made while the gate did not pass.
	// +optional
	Forced bool `json:"forced,omitempty"`
}

// Annotations through which a client states who changes spec.mode and why. The controller
// copies them into LastPromotion / LastRollback when it carries out the change.
const (
	// AnnotationModeRequest holds a JSON ModeRequest.
	AnnotationModeRequest = "shadowgate.dev/mode-request"
)

// ModeRequest is the value of AnnotationModeRequest. It applies only while its Mode equals
// spec.mode, so a stale request never describes a later change made by other means.
type ModeRequest struct {
	Mode   Mode        `json:"mode"`
	By     string      `json:"by,omitempty"`
	Reason string      `json:"reason,omitempty"`
	Force  bool        `json:"force,omitempty"`
	Time   metav1.Time `json:"time"`
	// Automatic marks a request the controller made itself.
	Automatic bool `json:"automatic,omitempty"`
}
