"""Repository-level test configuration (the plugin itself is loaded by its entry point)."""

pytest_plugins = ["pytester"]
