{{/*
shadowgate.fullname names every object of the release. A release named after the chart
(the documented `helm install shadowgate`) is not repeated, so the defaults render the
names deploy/rbac uses.
*/}}
{{- define "shadowgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* shadowgate.controller names the controller's ServiceAccount, roles, Deployment and Lease. */}}
{{- define "shadowgate.controller" -}}
{{- printf "%s-controller" (include "shadowgate.fullname" .) -}}
{{- end -}}

{{/* shadowgate.selectorLabels never change after install: a Deployment's selector is immutable. */}}
{{- define "shadowgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "shadowgate.labels" -}}
{{ include "shadowgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "shadowgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The directory the Hubble TLS Secret is mounted at. */}}
{{- define "shadowgate.hubbleTLSDir" -}}/etc/shadowgate/hubble-tls{{- end -}}

{{/*
shadowgate.syncedFile returns a file `make chart-sync` copies into the chart, and fails
the render when it is missing: a chart packaged without it would install something other
than what the repository tests.
*/}}
{{- define "shadowgate.syncedFile" -}}
{{- $content := .root.Files.Get .path -}}
{{- if not $content -}}
{{- fail (printf "%s is missing from the chart: run `make chart-sync`" .path) -}}
{{- end -}}
{{- $content -}}
{{- end -}}
