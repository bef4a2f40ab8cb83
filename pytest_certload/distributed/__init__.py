"""One run's load from several processes or machines (``--certload-tx``), merged exactly.

Split as pytest-xdist splits its own: :mod:`.tx` (the gateway-spec grammar, all that
settings import), :mod:`.controller` (gateways, the start instant, collecting results),
:mod:`.worker` (what runs in each gateway) and :mod:`.merge` (one judged result from the
workers' shares). Imports no pytest; execnet only when a run starts.
"""

from .controller import run_distributed
from .merge import DistributedRun, WorkerReport
from .tx import TX_GRAMMAR, parse_tx

__all__ = ["TX_GRAMMAR", "DistributedRun", "WorkerReport", "parse_tx", "run_distributed"]
