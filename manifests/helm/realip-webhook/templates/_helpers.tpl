{{/* The chart name: app.kubernetes.io/name and part-of. */}}
{{- define "realip-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of every object the chart makes (the webhook configuration adds the 00- prefix). */}}
{{- define "realip-webhook.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Selector labels: the same single label as the kustomize base, so the Deployment's immutable
selector and the Service/PDB selectors never change with the chart's version.
*/}}
{{- define "realip-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "realip-webhook.name" . }}
{{- end -}}

{{/* Metadata labels: the kustomize base's two, plus Helm's standard ones. */}}
{{- define "realip-webhook.labels" -}}
{{ include "realip-webhook.selectorLabels" . }}
app.kubernetes.io/part-of: {{ include "realip-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "realip-webhook.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "realip-webhook.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- .Values.tls.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "realip-webhook.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "realip-webhook.priorityClassName" -}}
{{- .Values.priorityClassName | default (include "realip-webhook.fullname" .) -}}
{{- end -}}

{{/* The names the API server dials for clientConfig.service (and the serving certificate holds). */}}
{{- define "realip-webhook.serviceDnsNames" -}}
{{- $svc := printf "%s.%s.svc" (include "realip-webhook.fullname" .) .Release.Namespace -}}
{{- list $svc (printf "%s.cluster.local" $svc) | toJson -}}
{{- end -}}

{{/*
The helm-mode serving pair as a dict of base64 Secret data (ca.crt, tls.crt, tls.key).
An existing Secret with all three keys is reused, so helm upgrade never rotates the caBundle or
the pair. Generated at most once per render: the Secret and the webhook configuration are
separate templates, and both must carry the same CA, so the result is kept on the root context.
*/}}
{{- define "realip-webhook.helmTlsData" -}}
{{- if not (hasKey $ "realipWebhookTlsData") -}}
{{- $name := include "realip-webhook.tlsSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- $data := dict -}}
{{- if and $existing $existing.data (hasKey $existing.data "ca.crt") (hasKey $existing.data "tls.crt") (hasKey $existing.data "tls.key") -}}
{{- $data = pick $existing.data "ca.crt" "tls.crt" "tls.key" -}}
{{- else -}}
{{- $fullname := include "realip-webhook.fullname" . -}}
{{- $dnsNames := concat (include "realip-webhook.serviceDnsNames" . | fromJsonArray) .Values.tls.helm.extraDnsNames -}}
{{- $days := int .Values.tls.helm.validityDays -}}
{{- /* ECDSA P-256, as certs/generate.sh: a cheaper handshake for the API server's many new connections. */ -}}
{{- $ca := genCAWithKey (printf "%s-ca" $fullname) $days (genPrivateKey "ecdsa") -}}
{{- $cert := genSignedCertWithKey (first $dnsNames) .Values.tls.helm.extraIpAddresses $dnsNames $days $ca (genPrivateKey "ecdsa") -}}
{{- $data = dict "ca.crt" ($ca.Cert | b64enc) "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- $_ := set $ "realipWebhookTlsData" $data -}}
{{- end -}}
{{- get $ "realipWebhookTlsData" | toJson -}}
{{- end -}}

{{/*
Refuses settings that would break the cluster rather than render them. Helm's schema cannot see
the cluster or compare two values, so these checks live here.
*/}}
{{- define "realip-webhook.validate" -}}
{{- $inject := printf "%s/inject" .Values.labelPrefix -}}
{{- $ns := lookup "v1" "Namespace" "" .Release.Namespace -}}
{{- if and $ns $ns.metadata.labels (eq (index $ns.metadata.labels $inject | default "") "enabled") -}}
{{- fail (printf "namespace %s is labelled %s=enabled: the webhook must never sit in the admission path of its own pods (with failClosed it could not start again). Install into a namespace that is not opted in." .Release.Namespace $inject) -}}
{{- end -}}
{{- if eq (int .Values.metrics.port) 8443 -}}
{{- fail "metrics.port must differ from 8443, the webhook's HTTPS port" -}}
{{- end -}}
{{- if .Values.podDisruptionBudget.enabled -}}
{{- $lowest := ternary .Values.autoscaling.minReplicas .Values.replicas .Values.autoscaling.enabled | int -}}
{{- if ge (int .Values.podDisruptionBudget.minAvailable) $lowest -}}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below the replicas (%d), or a node drain could never evict a webhook pod; raise replicas or disable the PDB" (int .Values.podDisruptionBudget.minAvailable) $lowest) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- end -}}
