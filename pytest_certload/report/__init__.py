"""Reports of a run: statistics, terminal table, junit properties, JSON summary, HTML."""
