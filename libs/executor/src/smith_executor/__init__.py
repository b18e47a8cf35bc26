"""What every Smith executor shares. An executor family (core, Service Catalog, dynamic) is this
servicer with its own readiness registry and kinds, registered as an `Executor` resource."""
