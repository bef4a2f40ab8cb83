"""Helpers for the plugin's own tests: local servers in their own processes, TLS material,
and a lab of network namespaces with certctl and execnet worker hosts in it (``netlab``,
``lab_certctl``; root only).

Importable without pytest except :func:`servers.nginx_server` (which skips).
"""
