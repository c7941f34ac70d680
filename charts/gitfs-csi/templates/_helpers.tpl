{{/* The release's resource name prefix. */}}
{{- define "gitfs-csi.name" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "gitfs-csi.labels" -}}
app.kubernetes.io/name: gitfs-csi
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gitfs-csi.selector" -}}
app.kubernetes.io/name: gitfs-csi
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gitfs-csi.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* A sidecar image: <registry>/<repository>:<tag>. Call with (list $ .Values.sidecars.x). */}}
{{- define "gitfs-csi.sidecarImage" -}}
{{- $root := index . 0 -}}
{{- $image := (index . 1).image -}}
{{- if $root.Values.sidecars.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" $root.Values.sidecars.registry) $image.repository $image.tag -}}
{{- else -}}
{{- printf "%s:%s" $image.repository $image.tag -}}
{{- end -}}
{{- end -}}

{{/* Where kubelet finds the node plugin's socket. */}}
{{- define "gitfs-csi.pluginDir" -}}
{{- printf "%s/plugins/%s" .Values.node.kubeletDir .Values.driverName -}}
{{- end -}}

{{/* The FUSE holder's socket on the host, where the node plugin reaches it. */}}
{{- define "gitfs-csi.holderDir" -}}
{{- printf "%s/fuse-holder" .Values.node.stateDir -}}
{{- end -}}
