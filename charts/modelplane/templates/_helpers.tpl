{{/*
The chart's name, or nameOverride.
*/}}
{{- define "modelplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release-qualified name of the operator's objects (63 characters at most, a DNS label).
A release whose name already holds the chart name is not repeated ("modelplane", not
"modelplane-modelplane").
*/}}
{{- define "modelplane.fullname" -}}
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

{{/*
chart label value: name-version.
*/}}
{{- define "modelplane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object of the release.
*/}}
{{- define "modelplane.labels" -}}
helm.sh/chart: {{ include "modelplane.chart" . }}
{{ include "modelplane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelplane
{{- end }}

{{/*
Labels that select the operator's pod (immutable in a Deployment: keep them few and stable).
*/}}
{{- define "modelplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "modelplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelplane.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image: repository:tag, the tag defaulting to the chart's appVersion.
*/}}
{{- define "modelplane.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The operator's configuration file (the YAML form of modelplane.config.OperatorConfig).
Unset optional values are left out so the operator's own defaults apply; prices are
rendered as decimal strings whatever type --set gave them.
*/}}
{{- define "modelplane.configYaml" -}}
{{- $c := .Values.config }}
{{- $out := dict }}
{{- $engines := dict }}
{{- range $name, $engine := $c.engines }}
{{- $_ := set $engines $name (dict "image" $engine.image "pullPolicy" (default "IfNotPresent" $engine.pullPolicy)) }}
{{- end }}
{{- $_ := set $out "engines" $engines }}
{{- $prices := dict }}
{{- range $accelerator, $price := $c.prices }}
{{- $_ := set $prices $accelerator (toString $price) }}
{{- end }}
{{- $_ := set $out "prices" $prices }}
{{- $_ := set $out "gpuMemoryUtilization" $c.gpuMemoryUtilization }}
{{- $_ := set $out "minKvCacheShare" $c.minKvCacheShare }}
{{- $_ := set $out "runtimeReserveGib" $c.runtimeReserveGib }}
{{- if $c.defaultResidencyPolicy }}
{{- $_ := set $out "defaultResidencyPolicy" $c.defaultResidencyPolicy }}
{{- end }}
{{- $cache := dict "sizeLimit" $c.modelCache.sizeLimit }}
{{- if $c.modelCache.persistentVolumeClaim }}
{{- $_ := set $cache "persistentVolumeClaim" $c.modelCache.persistentVolumeClaim }}
{{- end }}
{{- $_ := set $out "modelCache" $cache }}
{{- $_ := set $out "gpuTolerationKey" $c.gpuTolerationKey }}
{{- toYaml $out }}
{{- end }}

{{/*
A CRD from files/crds/ (a byte-identical copy of the repository's crds/, see
hack/sync-chart-crds) with the chart's labels and, when crds.keep, the keep policy so
`helm uninstall` never deletes the custom resources of every team.
*/}}
{{- define "modelplane.crd" -}}
{{- $crd := .root.Files.Get .file | fromYaml }}
{{- if not $crd.metadata }}
{{- fail (printf "%s is missing or not a CRD: run hack/sync-chart-crds" .file) }}
{{- end }}
{{- $meta := $crd.metadata }}
{{- $labels := merge (default dict $meta.labels) (dict "app.kubernetes.io/component" "crds") (include "modelplane.labels" .root | fromYaml) }}
{{- $_ := set $meta "labels" $labels }}
{{- if .root.Values.crds.keep }}
{{- $annotations := merge (default dict $meta.annotations) (dict "helm.sh/resource-policy" "keep") }}
{{- $_ := set $meta "annotations" $annotations }}
{{- end }}
{{- toYaml $crd }}
{{- end }}
