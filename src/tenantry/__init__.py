"""Tenantry: a self-hosted multi-tenant control plane."""

__version__ = "0.1.0"
