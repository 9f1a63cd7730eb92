// Package deploy holds what installs shadowgate: the CRDs, the controller's generated RBAC,
// the Helm chart (chart/shadowgate), its rendering with defaults (install.yaml) and
// examples for the demo shop. It has no code; its tests lint and render the chart, check
// it against the generated RBAC and the shipped alert rules, and install it on a real API
// server with the controller running under exactly the chart's permissions.
package deploy
