{{/* The chart's name, or nameOverride. */}}
{{- define "leasehold.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's name for its namespaced objects (Deployment, ServiceAccount, Service): fullnameOverride, else the
release name when it already contains the chart's name (release "leasehold" gives "leasehold"), else
"<release>-<chart>" (release "lh" gives "lh-leasehold").
*/}}
{{- define "leasehold.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "leasehold.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "leasehold.labels" -}}
helm.sh/chart: {{ include "leasehold.chart" . }}
{{ include "leasehold.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator's Pods. */}}
{{- define "leasehold.selectorLabels" -}}
app.kubernetes.io/name: {{ include "leasehold.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's ServiceAccount: serviceAccount.name, else the release's full name. */}}
{{- define "leasehold.serviceAccountName" -}}
{{- if .Values.serviceAccount.name }}
{{- .Values.serviceAccount.name }}
{{- else if .Values.serviceAccount.create }}
{{- include "leasehold.fullname" . }}
{{- else }}
{{- fail "serviceAccount.create is false: set serviceAccount.name to the ServiceAccount the operator runs as" }}
{{- end }}
{{- end }}

{{/*
The operator's username as the API server sees it. The admission policies exempt it (it writes status all the time
and approves only what a role's autoApprove allows), so it must be the ServiceAccount the operator really runs as.
*/}}
{{- define "leasehold.operatorUsername" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "leasehold.serviceAccountName" . }}
{{- end }}

{{/*
The apiVersion of MutatingAdmissionPolicy to install the requester policy with, or "" for none.
admission.requesterMutatingPolicy: "auto" installs it with the newest version the cluster serves (v1, v1beta1 from
Kubernetes 1.34, v1alpha1 in 1.32-1.33 where enabled) and leaves it out where none is served; "true" requires it
(the install fails naming what to enable); "false" leaves it out. `helm template` sees no cluster: pass
--api-versions admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy (or the version yours serves).
*/}}
{{- define "leasehold.mutatingAdmissionPolicy.apiVersion" -}}
{{- $mode := toString .Values.admission.requesterMutatingPolicy }}
{{- if and .Values.admission.enabled (ne $mode "false") }}
{{- $found := "" }}
{{- range list "v1" "v1beta1" "v1alpha1" }}
{{- $v := printf "admissionregistration.k8s.io/%s" . }}
{{- if and (not $found) ($.Capabilities.APIVersions.Has (printf "%s/MutatingAdmissionPolicy" $v)) }}
{{- $found = $v }}
{{- end }}
{{- end }}
{{- if and (not $found) (eq $mode "true") }}
{{- fail "admission.requesterMutatingPolicy is true but the cluster serves no MutatingAdmissionPolicy API: enable it (Kubernetes 1.32+, feature gate MutatingAdmissionPolicy and --runtime-config for its version) or set it to auto or false (see docs/approval.md)" }}
{{- end }}
{{- $found }}
{{- end }}
{{- end }}

{{/* The operator's image. */}}
{{- define "leasehold.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The port of a bind address (":8080", "127.0.0.1:8080"), or "" when it is "0" (disabled). */}}
{{- define "leasehold.port" -}}
{{- if ne (toString .) "0" }}
{{- splitList ":" (toString .) | last }}
{{- end }}
{{- end }}
