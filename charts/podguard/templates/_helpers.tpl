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
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* commonAnnotations, merged with the object's own (given as "own"). */}}
{{- define "podguard.annotations" -}}
{{- $all := merge (dict) (.own | default dict) (.root.Values.commonAnnotations | default dict) }}
{{- with $all }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
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
{{- $repo := .Values.image.repository }}
{{- with .Values.image.registry }}
{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
podguard's own pods follow its default policy. Values that break it are
refused, unless the release namespace carries the opt-out label (looked up
in the cluster at install; helm template has no cluster and always checks).
*/}}
{{- define "podguard.checkSecurity" -}}
{{- $ns := lookup "v1" "Namespace" "" .Release.Namespace }}
{{- $optedOut := eq (dig "metadata" "labels" .Values.webhook.optOutLabel "" ($ns | default dict)) "true" }}
{{- if not $optedOut }}
{{- $p := .Values.podSecurityContext }}
{{- $c := .Values.securityContext }}
{{- $problems := list }}
{{- if ne (int (default 0 $p.runAsUser)) 1000 }}{{ $problems = append $problems "podSecurityContext.runAsUser must be 1000 (runAsUser)" }}{{ end }}
{{- if ne (int (default 0 $p.runAsGroup)) 1000 }}{{ $problems = append $problems "podSecurityContext.runAsGroup must be 1000 (runAsGroup)" }}{{ end }}
{{- if not $p.runAsNonRoot }}{{ $problems = append $problems "podSecurityContext.runAsNonRoot must be true (runAsNonRoot)" }}{{ end }}
{{- if $c.privileged }}{{ $problems = append $problems "securityContext.privileged must not be true (privileged)" }}{{ end }}
{{- if ne (toString $c.allowPrivilegeEscalation) "false" }}{{ $problems = append $problems "securityContext.allowPrivilegeEscalation must be false (allowPrivilegeEscalation)" }}{{ end }}
{{- if not (has "ALL" (dig "capabilities" "drop" list $c)) }}{{ $problems = append $problems "securityContext.capabilities.drop must hold ALL (capabilities)" }}{{ end }}
{{- if dig "capabilities" "add" list $c }}{{ $problems = append $problems "securityContext.capabilities.add must be empty (capabilities)" }}{{ end }}
{{- if .Values.hostNetwork }}{{ $problems = append $problems "hostNetwork: true (hostNamespaces)" }}{{ end }}
{{- with $problems }}
{{- fail (printf "these values break podguard's own default policy: %s. Keep the defaults, or label the release namespace %s=true (kubectl label namespace %s %s=true) if you mean it" (join "; " .) $.Values.webhook.optOutLabel $.Release.Namespace $.Values.webhook.optOutLabel) }}
{{- end }}
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

{{/* Settings both webhooks share; "which" is mutating or validating,
whose own settings override. */}}
{{- define "podguard.webhookCommon" -}}
{{- $own := index .root.Values.webhook .which | default dict -}}
admissionReviewVersions: ["v1"]
{{- /* Events are a side effect, never made for dry-run requests. */}}
sideEffects: {{ if .root.Values.events.enabled }}NoneOnDryRun{{ else }}None{{ end }}
{{- /* As a backstop, the native policies enforce; the webhook adds its
       richer answers when it is up and is passed over when it is down. */}}
failurePolicy: {{ if .root.Values.nativePolicies.backstop }}Ignore{{ else }}{{ $own.failurePolicy | default .root.Values.webhook.failurePolicy }}{{ end }}
timeoutSeconds: {{ $own.timeoutSeconds | default .root.Values.webhook.timeoutSeconds }}
matchPolicy: Equivalent
namespaceSelector:
  {{- include "podguard.namespaceSelector" .root | nindent 2 }}
  {{- with $own.namespaceSelectorExpressions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .root.Values.webhook.objectSelector }}
objectSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.webhook.exemptUsers }}
matchConditions:
- name: exempt-users
  expression: {{ printf "!(request.userInfo.username in [%s])" (include "podguard.celStrings" .) | quote }}
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
{{- $own := dict }}
{{- if eq .Values.certificates.mode "cert-manager" }}
{{- $_ := set $own "cert-manager.io/inject-ca-from" (printf "%s/%s-webhook" .Release.Namespace (include "podguard.fullname" .)) }}
{{- end }}
{{- include "podguard.annotations" (dict "root" . "own" $own) }}
{{- end }}

{{/* seconds turns a Go duration of hours, minutes and seconds ("1h30m") into seconds. */}}
{{- define "podguard.seconds" -}}
{{- $s := 0 }}
{{- range $m := regexFindAll "[0-9]+[hms]" . -1 }}
{{- $n := int (trimSuffix "h" (trimSuffix "m" (trimSuffix "s" $m))) }}
{{- if hasSuffix "h" $m }}{{ $s = add $s (mul $n 3600) }}{{ else if hasSuffix "m" $m }}{{ $s = add $s (mul $n 60) }}{{ else }}{{ $s = add $s $n }}{{ end }}
{{- end }}
{{- $s }}
{{- end }}

{{/* The audit's own Deployment (audit.separateDeployment): its name, its
selector (another app.kubernetes.io/name, so neither the webhook Service nor
the PodDisruptionBudget selects its pod) and its ServiceAccount. */}}
{{- define "podguard.auditSeparate" -}}
{{- if and .Values.audit.enabled .Values.audit.separateDeployment }}true{{ end }}
{{- end }}

{{- define "podguard.auditName" -}}
{{- printf "%s-audit" (include "podguard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "podguard.auditSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-audit" (include "podguard.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: audit
{{- end }}

{{- define "podguard.auditLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "podguard.auditSelectorLabels" . }}
app.kubernetes.io/part-of: {{ include "podguard.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The ServiceAccount the audit runs as: its own in a separate Deployment. */}}
{{- define "podguard.auditServiceAccountName" -}}
{{- if include "podguard.auditSeparate" . }}
{{- include "podguard.auditName" . }}
{{- else }}
{{- include "podguard.serviceAccountName" . }}
{{- end }}
{{- end }}

{{/* One scrape endpoint of a ServiceMonitor (root: the chart, auth: the
authorization), for the webhook's metrics and the audit's alike. */}}
{{- define "podguard.metricsEndpoint" }}
  - port: metrics
    scheme: https
    interval: {{ .root.Values.metrics.serviceMonitor.interval }}
    scrapeTimeout: {{ .root.Values.metrics.serviceMonitor.scrapeTimeout }}
    authorization:
      {{- toYaml .auth | nindent 6 }}
    tlsConfig:
      {{- with .root.Values.metrics.serviceMonitor.tlsConfig }}
      {{- toYaml . | nindent 6 }}
      {{- else }}
      # The metrics endpoint serves the webhook's certificate: verify it with
      # the CA that signed it, for the webhook Service's name.
      serverName: {{ include "podguard.serviceName" .root }}.{{ .root.Release.Namespace }}.svc
      ca:
        {{- if eq .root.Values.certificates.mode "secret" }}
        configMap:
          name: {{ include "podguard.fullname" .root }}-metrics-ca
          key: ca.crt
        {{- else }}
        secret:
          name: {{ include "podguard.secretName" .root }}
          key: ca.crt
        {{- end }}
      {{- end }}
{{- end }}

{{/* RBAC rules the background audit needs, wherever it runs. */}}
{{- define "podguard.auditRules" }}
# The background audit watches what podguard judges, and NetworkPolicies
# for the network isolation item; it reads nothing else.
- apiGroups: [""]
  resources: ["pods", "podtemplates", "replicationcontrollers"]
  verbs: ["list", "watch"]
- apiGroups: ["apps"]
  resources: ["deployments", "replicasets", "statefulsets", "daemonsets"]
  verbs: ["list", "watch"]
- apiGroups: ["batch"]
  resources: ["jobs", "cronjobs"]
  verbs: ["list", "watch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "watch"]
# Namespaces' labels: an opted-out namespace (webhook.optOutLabel) is not
# audited, as podguard's webhooks never see it.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- if .Values.exceptions.enabled }}
{{- include "podguard.exceptionReadRules" . }}
{{- end }}
# It writes one report per namespace, of whichever kind is installed.
- apiGroups: ["openreports.io"]
  resources: ["reports"]
  verbs: ["get", "list", "create", "update", "delete"]
- apiGroups: ["wgpolicyk8s.io"]
  resources: ["policyreports"]
  verbs: ["get", "list", "create", "update", "delete"]
{{- end }}
{{- define "podguard.metricsAuthRules" }}
# Authenticated metrics: the metrics endpoint checks scrapers' tokens.
- apiGroups: ["authentication.k8s.io"]
  resources: ["tokenreviews"]
  verbs: ["create"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
{{- end }}
{{- define "podguard.leaseRules" }}
# One replica runs the background audit: the holder of this Lease (create
# cannot be limited to a name; get and update are). Leader changes are
# recorded as Events.
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: ["podguard-audit"]
  verbs: ["get", "update"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
{{/*
The namespaces the webhooks never see, for the background audit: it leaves
them out of its reports as admission does.
*/}}
{{- define "podguard.auditOptOutArgs" -}}
{{- if .Values.webhook.optOutLabel }}
- --audit-opt-out-label={{ .Values.webhook.optOutLabel }}
{{- end }}
{{- range (concat (list .Release.Namespace) .Values.webhook.excludeNamespaces | uniq) }}
- --audit-exclude-namespace={{ . }}
{{- end }}
{{- end }}
{{- define "podguard.exceptionReadRules" }}
# PodGuardExceptions, cluster-wide: each applies in its own namespace.
- apiGroups: ["podguard.dev"]
  resources: ["podguardexceptions"]
  verbs: ["list", "watch"]
{{- end }}

{{- /* The policy file as podguard reads it: values.policy with apiVersion and kind. */ -}}
{{- define "podguard.policyYAML" -}}
{{- $policy := merge (dict "apiVersion" "podguard.dev/v1alpha1" "kind" "Policy") (deepCopy .Values.policy) }}
{{- toYaml $policy }}
{{- end }}

{{- /* Recording Events (events.k8s.io/v1: create, and patch for a series). */ -}}
{{- define "podguard.eventRules" }}
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{- /* A list of strings as CEL string literals, comma-separated: each one
single-quoted with its backslashes, quotes and line breaks escaped, so a
value can never end its literal and become CEL. */ -}}
{{- define "podguard.celStrings" -}}
{{- $out := list }}
{{- range . }}
{{- $s := toString . | replace "\\" "\\\\" | replace "'" "\\'" | replace "\n" "\\n" | replace "\r" "\\r" }}
{{- $out = append $out (printf "'%s'" $s) }}
{{- end }}
{{- join ", " $out }}
{{- end }}

{{- /*
The ConfigMaps and Secrets values.policy's image rules read (pemFrom,
trustedRootFrom, tuf.rootFrom, certificatesFrom), as a JSON map from their directory under
/etc/podguard-trust (configmaps/NAME, secrets/NAME) to their kind and name.
*/ -}}
{{- define "podguard.trustSources" -}}
{{- $srcs := dict -}}
{{- $rules := (.Values.policy).rules | default dict -}}
{{- $entries := list -}}
{{- with (get $rules "imageSignatures") }}{{ $entries = concat $entries (.trust | default list) }}{{ end -}}
{{- with (get $rules "imageVulnerabilities") }}{{ $entries = concat $entries (.scans | default list) }}{{ end -}}
{{- range $e := $entries -}}
{{- range $a := ($e.authorities | default list) -}}
{{- range $from := list (($a.key | default dict).pemFrom) (($a.keyless | default dict).trustedRootFrom) ((($a.keyless | default dict).tuf | default dict).rootFrom) (($a.notation | default dict).certificatesFrom) -}}
{{- with $from -}}
{{- with .configMapKeyRef }}{{ $_ := set $srcs (printf "configmaps/%s" .name) (dict "kind" "configMap" "name" .name) }}{{ end -}}
{{- with .secretKeyRef }}{{ $_ := set $srcs (printf "secrets/%s" .name) (dict "kind" "secret" "name" .name) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $srcs -}}
{{- end -}}

{{- /*
Volumes for the trust sources and the registries' credentials and CA. Optional: a missing ConfigMap must not keep
podguard from starting (with failurePolicy Fail that would block every
pod); podguard then denies only the images its authority was to vouch
for, saying which object is missing. Names are written as JSON strings.
*/ -}}
{{- define "podguard.trustVolumes" -}}
{{- range $i, $name := .Values.registries.authSecrets }}
- name: registry-auth-{{ $i }}
  secret:
    secretName: {{ $name | toJson }}
    optional: true
{{- end }}
{{- with .Values.registries.caConfigMap }}
- name: registry-ca
  configMap:
    name: {{ . | toJson }}
    optional: true
{{- end }}
{{- range $i, $path := keys (include "podguard.trustSources" . | fromJson) | sortAlpha }}
{{- $s := get (include "podguard.trustSources" $ | fromJson) $path }}
- name: trust-{{ $i }}
  {{- if eq $s.kind "secret" }}
  secret:
    secretName: {{ $s.name | toJson }}
    optional: true
  {{- else }}
  configMap:
    name: {{ $s.name | toJson }}
    optional: true
  {{- end }}
{{- end }}
{{- end -}}

{{- define "podguard.trustVolumeMounts" -}}
{{- range $i, $name := .Values.registries.authSecrets }}
- name: registry-auth-{{ $i }}
  mountPath: /etc/podguard-registries/auth/{{ $i }}
  readOnly: true
{{- end }}
{{- if .Values.registries.caConfigMap }}
- name: registry-ca
  mountPath: /etc/podguard-registries/ca
  readOnly: true
{{- end }}
{{- range $i, $path := keys (include "podguard.trustSources" . | fromJson) | sortAlpha }}
- name: trust-{{ $i }}
  mountPath: {{ printf "/etc/podguard-trust/%s" $path | toJson }}
  readOnly: true
{{- end }}
{{- end -}}

{{- /* serve's flags for the registries' credentials and CA (see podguard.trustVolumes). */ -}}
{{- define "podguard.registryArgs" -}}
{{- range $i, $name := .Values.registries.authSecrets }}
- --registry-auth-file=/etc/podguard-registries/auth/{{ $i }}/.dockerconfigjson
{{- end }}
{{- if .Values.registries.caConfigMap }}
- --registry-ca-file=/etc/podguard-registries/ca/ca.crt
{{- end }}
{{- if .Values.registries.podPullSecrets }}
- --pod-pull-secrets
{{- end }}
{{- end -}}

{{- /* registries.podPullSecrets: the Secrets pods name as imagePullSecrets, read one by one (get, never list or watch: podguard holds no Secret it was not pointed at). */ -}}
{{- define "podguard.pullSecretRules" }}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
