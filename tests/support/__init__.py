"""Helpers for the plugin's own tests: local servers in their own processes, TLS material.

Importable without pytest except :func:`servers.nginx_server` (which skips).
"""
