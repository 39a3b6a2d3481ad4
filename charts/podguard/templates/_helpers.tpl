{{- define "podguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "podguard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "podguard.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "podguard.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "podguard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "podguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "podguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "podguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "podguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "podguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "podguard.serviceName" -}}
{{- printf "%s-webhook" (include "podguard.fullname" .) }}
{{- end }}

{{- define "podguard.secretName" -}}
{{- default (printf "%s-webhook-cert" (include "podguard.fullname" .)) .Values.certificates.secretName }}
{{- end }}

{{- define "podguard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The namespaceSelector both webhooks share. */}}
{{- define "podguard.namespaceSelector" -}}
matchExpressions:
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: {{ append (.Values.webhook.excludeNamespaces | default list) .Release.Namespace | uniq | toJson }}
- key: {{ .Values.webhook.optOutLabel }}
  operator: NotIn
  values: ["true"]
{{- with .Values.webhook.namespaceSelectorExpressions }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Settings both webhooks share. */}}
{{- define "podguard.webhookCommon" -}}
admissionReviewVersions: ["v1"]
sideEffects: None
{{- /* As a backstop, the native policies enforce; the webhook adds its
       richer answers when it is up and is passed over when it is down. */}}
failurePolicy: {{ if .Values.nativePolicies.backstop }}Ignore{{ else }}{{ .Values.webhook.failurePolicy }}{{ end }}
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
matchPolicy: Equivalent
namespaceSelector:
  {{- include "podguard.namespaceSelector" . | nindent 2 }}
{{- with .Values.webhook.objectSelector }}
objectSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.webhook.exemptUsers }}
matchConditions:
- name: exempt-users
  expression: {{ printf "!(request.userInfo.username in %s)" (toJson . | replace "\"" "'") | quote }}
{{- end }}
{{- end }}

{{- define "podguard.clientConfig" -}}
clientConfig:
  service:
    name: {{ include "podguard.serviceName" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- if and (eq .root.Values.certificates.mode "secret") .root.Values.certificates.caBundle }}
  caBundle: {{ .root.Values.certificates.caBundle | b64enc }}
  {{- end }}
{{- end }}

{{- define "podguard.webhookAnnotations" -}}
{{- if eq .Values.certificates.mode "cert-manager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "podguard.fullname" . }}-webhook
{{- end }}
{{- end }}
