"""The load scenarios users run: certctl's k6 scripts, one test per scenario."""
