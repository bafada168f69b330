"""One module per protocol phase, each registered in `registry` when imported.

Importing this package registers the built-in phases, in the order of a run.
"""

# isort: off  (the order of registration is the order the wire lists the phases)
from fedseg.common.phases import dedup  # noqa: F401
from fedseg.common.phases import prepare  # noqa: F401
from fedseg.common.phases import bucket_counts  # noqa: F401
from fedseg.common.phases import bucket_sums  # noqa: F401
from fedseg.common.phases import lloyd  # noqa: F401
from fedseg.common.phases import segment_spread  # noqa: F401
from fedseg.common.phases import profile  # noqa: F401
from fedseg.common.phases import histogram  # noqa: F401
from fedseg.common.phases import transitions  # noqa: F401
from fedseg.common.phases import coverage  # noqa: F401
from fedseg.common.vertical import phases as _vertical  # noqa: F401,E402  (vertical runs)
from fedseg.common.vertical import coverage as _vertical_coverage  # noqa: F401,E402
