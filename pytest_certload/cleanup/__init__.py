"""``python -m pytest_certload.cleanup``: remove what the harness wrote into certctl's database.

A load run leaves rows behind in the certctl it measured: the scale tier's seeded
certificates and agents, the jobs bulk renewal queued, the API tier's certificates, the
ACME tier's accounts, orders and certificates, the seed ledger. This package removes
them, found by the names the harness gives them (:mod:`.plan`), in one transaction in an
order that respects every foreign key (:mod:`.run`), and says what it cannot remove:
certctl's audit rows (its audit table is append-only), ACME nonces (they name no
client). :mod:`.cli` is the command line; ``--dry-run`` shows the same counts and
changes nothing. See docs/external-deployment.md. Imports no pytest.
"""

from .plan import STEPS, Leftover, Step
from .run import CleanupReport, Left, Linked, Removed, cleanup

__all__ = ["STEPS", "CleanupReport", "Left", "Leftover", "Linked", "Removed", "Step", "cleanup"]
