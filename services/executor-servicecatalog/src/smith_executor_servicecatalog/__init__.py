"""Smith's executor for Service Catalog (servicecatalog.k8s.io/v1beta1): ServiceInstance, ServiceBinding."""
