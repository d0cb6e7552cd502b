{{/*
Helpers. The chart uses only Go template built-ins and these Helm/Sprig functions, which
tests/chart.rs implements to render it without helm: include, toYaml, nindent, indent, quote,
default, required, fail, int, kindIs, list, sha256sum. Keep it to that set (see README.md).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "veer.name" -}}
{{- default .Chart.Name .Values.nameOverride -}}
{{- end -}}

{{/* Object name prefix: fullnameOverride, the release name when it is the chart name, else <release>-<chart>. */}}
{{- define "veer.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride -}}
{{- else if eq .Release.Name (include "veer.name" .) -}}
{{- .Release.Name -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "veer.name" .) -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "veer.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "veer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels the Deployment selects its pods by (never change them: selectors are immutable). */}}
{{- define "veer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "veer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The ServiceAccount veer runs as. */}}
{{- define "veer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "veer.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Namespace of veer's state ConfigMap. */}}
{{- define "veer.stateNamespace" -}}
{{- default .Release.Namespace .Values.config.cluster.stateNamespace -}}
{{- end -}}

{{/* "true" when leader election is on: as set, or (null) when replicaCount > 1. */}}
{{- define "veer.leaderElection" -}}
{{- if kindIs "bool" .Values.leaderElection.enabled -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicaCount) 1) -}}
{{- fail "leaderElection.enabled=false with replicaCount > 1: every replica would write to the cluster; enable leader election or use one replica" -}}
{{- end -}}
{{- if .Values.leaderElection.enabled -}}true{{- else -}}false{{- end -}}
{{- else if gt (int .Values.replicaCount) 1 -}}
true
{{- else -}}
false
{{- end -}}
{{- end -}}

{{/* The Lease leader election uses. */}}
{{- define "veer.leaseName" -}}
{{- default (printf "%s-leader" (include "veer.fullname" .)) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* Where each Secret is mounted. */}}
{{- define "veer.secretDir" -}}
/etc/veer/secrets
{{- end -}}

{{/* veer.yaml's source.auth, from secrets.git. */}}
{{- define "veer.gitAuth" -}}
{{- $git := .Values.secrets.git -}}
{{- $dir := printf "%s/git" (include "veer.secretDir" .) -}}
{{- if $git.existingSecret -}}
auth:
{{- if eq $git.type "token" }}
  token: {file: {{ printf "%s/%s" $dir $git.tokenKey | quote }}}
{{- else if eq $git.type "basic" }}
  basic:
    username: {{ required "secrets.git.username is required with secrets.git.type=basic" $git.username | quote }}
    password: {file: {{ printf "%s/%s" $dir $git.passwordKey | quote }}}
{{- else if eq $git.type "ssh" }}
  ssh:
    privateKey: {{ printf "%s/%s" $dir $git.sshPrivateKeyKey | quote }}
    knownHosts: {{ printf "%s/%s" $dir $git.sshKnownHostsKey | quote }}
{{- if $git.sshPassphraseKey }}
    passphrase: {file: {{ printf "%s/%s" $dir $git.sshPassphraseKey | quote }}}
{{- end }}
{{- else -}}
{{- fail "secrets.git.type must be token, basic or ssh" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The RBAC rules veer needs: only the kinds it manages, verbs listed. */}}
{{- define "veer.rules" -}}
- apiGroups: [networking.istio.io]
  resources: [virtualservices, destinationrules, gateways, serviceentries, sidecars]
  verbs:
{{- toYaml .Values.rbac.verbs | nindent 4 }}
- apiGroups: [apps]
  resources: [deployments]
  verbs:
{{- toYaml .Values.rbac.verbs | nindent 4 }}
- apiGroups: [""]
  resources: [services, configmaps]
  verbs:
{{- toYaml .Values.rbac.verbs | nindent 4 }}
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- with .Values.rbac.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* A Role and RoleBinding for namespaced mode. Called with (list $root "namespace"). */}}
{{- define "veer.namespacedRbac" -}}
{{- $root := index . 0 -}}
{{- $ns := index . 1 -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "veer.fullname" $root }}
  namespace: {{ $ns }}
  labels:
    {{- include "veer.labels" $root | nindent 4 }}
rules:
  {{- include "veer.rules" $root | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "veer.fullname" $root }}
  namespace: {{ $ns }}
  labels:
    {{- include "veer.labels" $root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ include "veer.fullname" $root }}
subjects:
  - kind: ServiceAccount
    name: {{ include "veer.serviceAccountName" $root }}
    namespace: {{ $root.Release.Namespace }}
{{- end -}}
