"""Smith's executor for built-in kinds (ConfigMap, Secret, Service, ServiceAccount, Deployment,
Ingress, HorizontalPodAutoscaler, PodDisruptionBudget, PodPreset)."""
