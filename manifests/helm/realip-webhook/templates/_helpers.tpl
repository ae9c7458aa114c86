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

{{/*
"true" when the webhook configuration carries matchConditions: matchConditions "auto" decides
from the cluster's version (GA in 1.30; older API servers refuse the field).
*/}}
{{- define "realip-webhook.matchConditions" -}}
{{- if eq (toString .Values.matchConditions) "auto" -}}
{{- semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version -}}
{{- else -}}
{{- .Values.matchConditions -}}
{{- end -}}
{{- end }}

{{/*
The webhook configuration's entries: rules and matchConditions per kind of object. Kept equal to
manifests/base/mutatingwebhookconfiguration.yaml (test/helm/chart.test.ts compares them).
*/}}
{{- define "realip-webhook.webhookEntries" -}}
- name: services.realip.io
  rules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      resources: ["services"]
      operations: ["CREATE", "UPDATE"]
      scope: Namespaced
  matchConditions:
    # ClusterIP, headless and ExternalName Services need nothing.
    - name: node-port-or-load-balancer
      expression: "has(object.spec.type) && object.spec.type in ['NodePort', 'LoadBalancer']"
- name: workloads.realip.io
  rules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      resources: ["deployments", "statefulsets", "replicasets", "daemonsets"]
      operations: ["CREATE", "UPDATE"]
      scope: Namespaced
    - apiGroups: ["batch"]
      apiVersions: ["v1"]
      resources: ["jobs"]
      operations: ["CREATE", "UPDATE"]
      scope: Namespaced
  matchConditions:
    # An UPDATE is mutated only when it changes the pod template; a change of replicas or of
    # the rollout strategy can still earn a warning (Pending pods, a deadlocked rollout).
    - name: create-or-template-replicas-or-strategy-changed
      expression: >-
        request.operation == 'CREATE'
        || object.spec.template != oldObject.spec.template
        || (has(object.spec.replicas) && (!has(oldObject.spec.replicas) || object.spec.replicas != oldObject.spec.replicas))
        || (has(object.spec.strategy) && (!has(oldObject.spec.strategy) || object.spec.strategy != oldObject.spec.strategy))
- name: cronjobs.realip.io
  rules:
    # Any version: CronJob was served as batch/v1beta1 before Kubernetes 1.21.
    - apiGroups: ["batch"]
      apiVersions: ["*"]
      resources: ["cronjobs"]
      operations: ["CREATE", "UPDATE"]
      scope: Namespaced
  matchConditions:
    - name: create-or-template-changed
      expression: >-
        request.operation == 'CREATE'
        || object.spec.jobTemplate.spec.template != oldObject.spec.jobTemplate.spec.template
- name: pods.realip.io
  rules:
    # Pods on CREATE only: Istio reads the annotation only when the Pod is created.
    - apiGroups: [""]
      apiVersions: ["v1"]
      resources: ["pods"]
      operations: ["CREATE"]
      scope: Namespaced
{{- end }}
